"""The console's web application (Starlette): pages, actions, the live event stream, /metrics and /healthz.

Pages are rendered on the server (Jinja2, autoescaped); a little plain JavaScript (static/console.js) listens to
``/events`` (server-sent events) and swaps in the fleet table when the fleet changes. Every page needs a login;
``/metrics`` (Prometheus text) and ``/healthz`` do not: they hold no patron data and monitoring scrapes them.
Every POST checks the session's CSRF token and, for actions, the operator role; every action is audited.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response,
                                 StreamingResponse)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.config import ConsoleConfig
from gateway.console import auth, metrics
from gateway.console.i18n import LANGS, t
from gateway.console.views import Views
from gateway.journal import ReviewError

LOGGER = logging.getLogger(__name__)
HERE = Path(__file__).parent
COOKIE, LANG_COOKIE = "citybook_console", "citybook_lang"
MAX_NOTE = 1000
SSE_POLL_S = 0.25
SSE_KEEPALIVE_S = 15.0


class Console:
    """The console's application state: views, accounts, the login limiter, the templates."""

    def __init__(self, views: Views, cfg: ConsoleConfig) -> None:
        self.views = views
        self.journal = views.journal
        self.cfg = cfg
        self.limiter = auth.LoginLimiter(cfg.login_attempts)
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(),
                               trim_blocks=True, lstrip_blocks=True)
        self.app = Starlette(routes=[
            Route("/", self.fleet), Route("/fleet/table", self.fleet_table), Route("/events", self.events),
            Route("/login", self.login, methods=["GET", "POST"]), Route("/logout", self.logout, methods=["POST"]),
            Route("/bookcase/{bookcase}", self.bookcase), Route("/review", self.review),
            Route("/review/{event}/{action}", self.review_action, methods=["POST"]), Route("/alarms", self.alarms),
            Route("/alarms/{event}/ack", self.alarm_ack, methods=["POST"]), Route("/figures", self.figures),
            Route("/lang/{lang}", self.language), Route("/metrics", self.metrics), Route("/healthz", self.healthz),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static")])

    # --- sessions ---------------------------------------------------------------------------------------

    def user(self, request: Request) -> dict | None:
        token = request.cookies.get(COOKIE)
        return self.journal.session(auth.token_hash(token)) if token else None

    def lang(self, request: Request) -> str:
        lang = request.cookies.get(LANG_COOKIE, "zh")
        return lang if lang in LANGS else "zh"

    def page(self, request: Request, template: str, user: dict | None, status: int = 200, **ctx) -> HTMLResponse:
        lang = self.lang(request)
        html = self.env.get_template(template).render(t=lambda k, **v: t(k, lang, **v), lang=lang, user=user,
                                                      path=request.url.path, **ctx)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def _login_first(self, request: Request) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    async def _action(self, request: Request) -> tuple[dict | None, dict, Response | None]:
        """The user and the form of a POST; or the response refusing it (no session, no CSRF, not an operator)."""
        user = self.user(request)
        if user is None:
            return None, {}, self._login_first(request)
        form = dict(await request.form())
        if not auth.same(str(form.get("csrf", "")), user["csrf"]):
            return user, form, self.page(request, "message.html", user, status=403, message=t("bad_csrf",
                                                                                                self.lang(request)))
        if user["role"] != "operator":
            return user, form, self.page(request, "message.html", user, status=403,
                                         message=t("forbidden", self.lang(request)))
        return user, form, None

    # --- login ------------------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        nxt = request.query_params.get("next", "/")
        nxt = nxt if nxt.startswith("/") and not nxt.startswith("//") and not urlsplit(nxt).netloc else "/"
        if request.method == "GET":
            return self.page(request, "login.html", None, next=nxt)
        form = await request.form()
        name, password = str(form.get("user", ""))[:64], str(form.get("password", ""))[:256]
        address = request.client.host if request.client else "?"
        wait = self.limiter.blocked("user:" + name, "addr:" + address)
        if wait:
            return self.page(request, "login.html", None, status=429, next=nxt,
                             error=t("login_paused", self.lang(request), s=int(wait) + 1))
        account = self.journal.user(name)
        ok = auth.check_password(password, account["password_hash"] if account else None)
        if not ok or account is None or account["disabled"]:
            self.limiter.failed("user:" + name, "addr:" + address)
            LOGGER.warning("console: failed login for %r from %s", name, address)
            return self.page(request, "login.html", None, status=401, next=nxt,
                             error=t("login_failed", self.lang(request)))
        self.limiter.succeeded("user:" + name, "addr:" + address)
        token = auth.new_token()
        self.journal.session_open(auth.token_hash(token), name, auth.new_token(), self.cfg.session_hours * 3600)
        self.journal.audit(name, "login", detail=address)
        response = RedirectResponse(nxt, status_code=303)
        response.set_cookie(COOKIE, token, max_age=int(self.cfg.session_hours * 3600), httponly=True,
                            secure=self.cfg.secure_cookies, samesite="strict")
        return response

    async def logout(self, request: Request) -> Response:
        user = self.user(request)
        form = await request.form()
        if user is not None and auth.same(str(form.get("csrf", "")), user["csrf"]):
            self.journal.session_close(auth.token_hash(request.cookies.get(COOKIE, "")))
            self.journal.audit(user["name"], "logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def language(self, request: Request) -> Response:
        lang = request.path_params["lang"]
        back = request.headers.get("referer", "/")
        response = RedirectResponse(urlsplit(back).path or "/", status_code=303)
        if lang in LANGS:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict")
        return response

    # --- pages ------------------------------------------------------------------------------------------

    async def fleet(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return self._login_first(request)
        sort, query = request.query_params.get("sort", ""), request.query_params.get("q", "")[:100]
        rows = self.views.fleet_rows(sort, query)
        return self.page(request, "fleet.html", user, rows=rows, totals=self.views.totals(rows), sort=sort, q=query)

    async def fleet_table(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return Response(status_code=401)
        sort, query = request.query_params.get("sort", ""), request.query_params.get("q", "")[:100]
        rows = self.views.fleet_rows(sort, query)
        return self.page(request, "fleet_table.html", user, rows=rows, totals=self.views.totals(rows), sort=sort,
                         q=query)

    async def events(self, request: Request) -> Response:
        """Server-sent events: ``fleet`` whenever a bookcase's state changes, a comment now and then."""
        if self.user(request) is None:
            return Response(status_code=401)
        fleet = self.views.fleet

        async def stream():
            seen, quiet = -1, time.monotonic()
            while not await request.is_disconnected():
                if fleet.version != seen:
                    seen = fleet.version
                    yield f"event: fleet\ndata: {seen}\n\n"
                    quiet = time.monotonic()
                elif time.monotonic() - quiet > SSE_KEEPALIVE_S:
                    yield ": keep-alive\n\n"
                    quiet = time.monotonic()
                await asyncio.sleep(SSE_POLL_S)
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def bookcase(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return self._login_first(request)
        detail = self.views.bookcase(request.path_params["bookcase"])
        if detail is None:
            return self.page(request, "message.html", user, status=404,
                             message=t("unknown_bookcase", self.lang(request)))
        return self.page(request, "bookcase.html", user, d=detail, bookcase=request.path_params["bookcase"])

    async def review(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return self._login_first(request)
        return self.page(request, "review.html", user, items=self.views.review(), done=request.query_params.get("done"))

    async def review_action(self, request: Request) -> Response:
        user, form, refused = await self._action(request)
        if refused is not None:
            return refused
        event, action = request.path_params["event"], request.path_params["action"]
        note = str(form.get("note", "")).strip()[:MAX_NOTE]
        try:
            if action == "retry":
                full = self.journal.review_retry(event, user["name"], note)
            elif action == "resolve":
                full = self.journal.review_resolve(event, user["name"], note)
            else:
                return Response(status_code=404)
        except ReviewError as exc:
            return self.page(request, "message.html", user, status=400, message=str(exc))
        self.journal.audit(user["name"], f"review {action}", full, note)
        return RedirectResponse("/review?done=1", status_code=303)

    async def alarms(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return self._login_first(request)
        return self.page(request, "alarms.html", user, alarms=self.journal.alarms(limit=300))

    async def alarm_ack(self, request: Request) -> Response:
        user, form, refused = await self._action(request)
        if refused is not None:
            return refused
        event = request.path_params["event"]
        note = str(form.get("note", "")).strip()[:MAX_NOTE]
        if not self.journal.alarm_ack(event, user["name"], note):
            return self.page(request, "message.html", user, status=404, message=f"no alarm {event}")
        self.journal.audit(user["name"], "alarm acknowledge", event, note)
        return RedirectResponse("/alarms", status_code=303)

    async def figures(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return self._login_first(request)
        return self.page(request, "figures.html", user, f=self.views.figures())

    # --- for machines -----------------------------------------------------------------------------------

    async def metrics(self, request: Request) -> Response:
        return PlainTextResponse(metrics.render(self.views), media_type="text/plain; version=0.0.4")

    async def healthz(self, request: Request) -> Response:
        try:
            backlog = self.journal.backlog()
        except Exception as exc:                                  # the journal is down: say so, 503
            return JSONResponse({"ok": False, "journal": str(exc)[:200]}, status_code=503)
        return JSONResponse({"ok": True, "backlog": backlog["depth"], "bookcases": len(self.views.fleet.states)})
