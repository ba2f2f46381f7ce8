"""ContentUpdater: fetches the library's signed screen content on a thread of its own, resumes, installs atomically.

One attempt (``update``): GET ``manifest.json`` and ``manifest.sig`` from the content URL, verify the
signature (nothing else is downloaded before it checks out; a pair that does not is read once more, in case it
was caught mid-publish), refuse a version not newer than the one installed, then download every asset not
already in ``objects/`` into ``objects/<sha256>.part`` — resuming from the part's length with
``Range: bytes=<len>-`` — under a bandwidth cap, check each file's hash, and make the new version current in one
rename (kiosk.content.store). Whatever goes wrong — a bad signature, a tampered file, an HTTP error, a dropped
connection, a full disk, a malformed manifest — the content on screen stays, one log line says what was
refused and why, the parts downloaded so far stay for the next attempt, and the thread tries again after 30 s,
60 s, … up to ``check_interval_s``.

Attempts come from the periodic check of ``[content] url`` and from the library's retained announcement on
``<root>central/content`` (``announce``, called on the core loop: it only hands the news to this thread).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

from kiosk import __version__
from kiosk.config import Config
from kiosk.content import ContentError
from kiosk.content import manifest as mf
from kiosk.content.store import ContentStore

LOGGER = logging.getLogger(__name__)

INSTALLED, CURRENT, STALE, REFUSED, FAILED = "installed", "current", "stale", "refused", "failed"
RETRY_MIN_S = 30.0
SETTLE_S = 2.0       # a manifest whose signature does not check out is fetched again after this, once
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 10.0
MAX_SIGNATURE_BYTES = 4096
CHUNK = 64 * 1024
PROGRESS_MIN_BYTES = 1 << 20       # smaller downloads get no progress lines
PROGRESS_EVERY_S = 10.0
PROGRESS_STEP_PCT = 10
STATUS_FILE = "status.json"
LOCK_FILE = ".update.lock"
MB = 1024 * 1024


class TokenBucket:
    """A bandwidth cap: ``rate`` bytes per second on average, bursts of at most ``burst`` bytes."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.at = clock()

    def take(self, n: int) -> float:
        """Spend ``n`` bytes; the seconds to wait before reading more (0: go on)."""
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate) - n
        self.at = now
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class _Stopped(Exception):
    """close() was called during an attempt."""


class _Progress:
    """Logs a long download: at most one line every PROGRESS_EVERY_S, each a PROGRESS_STEP_PCT step further."""

    def __init__(self, name: str, version: int, total: int, done: int, clock: Callable[[], float]) -> None:
        self.name, self.version, self.total, self.done, self.clock = name, version, total, done, clock
        self.step, self.at = PROGRESS_STEP_PCT, clock()

    def add(self, n: int, what: str) -> None:
        self.done += n
        pct, now = 100 * self.done // max(1, self.total), self.clock()
        if self.total >= PROGRESS_MIN_BYTES and pct >= self.step and now - self.at >= PROGRESS_EVERY_S:
            LOGGER.info("bookcase %s: content version %d: %d %% downloaded (%.1f of %.1f MB), now %s", self.name,
                        self.version, pct, self.done / MB, self.total / MB, what)
            self.step = (pct // PROGRESS_STEP_PCT + 1) * PROGRESS_STEP_PCT
            self.at = now


def asset_url(base: str, path: str) -> str:
    """The URL of an asset: the content URL (ending in "/") and the asset's path, each part URL-quoted."""
    return base + "/".join(urllib.parse.quote(part, safe="") for part in path.split("/"))


class ContentUpdater:
    """Keeps one bookcase's content up to date. ``start()``/``close()``; ``announce`` from the MQTT side;
    ``update()`` runs one attempt on the caller's thread (``kiosk content fetch``, tests)."""

    def __init__(self, config: Config, store: ContentStore, *, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], bool] | None = None,
                 retry_min_s: float = RETRY_MIN_S, settle_s: float = SETTLE_S) -> None:
        """``clock`` and ``sleep`` pace downloads (the bandwidth cap, progress); ``sleep(s)`` returns True when
        the updater is stopping. The schedule of attempts always runs on real time."""
        self.cfg, self.library, self.name, self.store = config.content, config.library, config.bookcase.id, store
        self.reserve_bytes = config.session.disk_low_mb * MB      # what the daemon's disk-low alarm wants free
        self._own_session, self.session = session is None, session or requests.Session()
        self.session.headers["User-Agent"] = f"citybook-kiosk/{__version__} ({self.name})"
        self.clock, self.retry_min_s, self.settle_s = clock, retry_min_s, settle_s
        self._stop, self._wake, self._lock = threading.Event(), threading.Event(), threading.Lock()
        self._sleep = sleep or self._stop.wait
        self.transfers: deque[tuple[float, int]] = deque(maxlen=4096)   # (clock, bytes) per chunk let through
        self._announced: tuple[str, int] | None = None
        self._said: set[tuple[str, int]] = set()
        self._thread: threading.Thread | None = None
        self._status: dict = {"installed_version": 0, "url": self.cfg.url, "last_check": None, "last_result": None,
                              "last_error": None, "bytes_downloaded": 0, "refused": 0, "downloading": None}

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="content-updater", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop now: an attempt in progress ends after the chunk it is reading (its .part stays)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(CLOSE_TIMEOUT_S)
            if self._thread.is_alive():
                LOGGER.warning("bookcase %s: the content download did not stop within %.0f s", self.name,
                               CLOSE_TIMEOUT_S)
                return
        if self._own_session:
            self.session.close()

    def announce(self, payload: dict) -> None:
        """The library's announcement ``{"v": 1, "version": N, "url": "..."}`` (already checked against its
        schema). Returns at once: the attempt runs on the updater's thread."""
        url = payload.get("url") or self.cfg.url
        if not url:
            LOGGER.warning("bookcase %s: content version %s announced without a url, and [content] url is not "
                           "set: ignored", self.name, payload.get("version"))
            return
        with self._lock:
            self._announced = (url if url.endswith("/") else url + "/", int(payload["version"]))
        self._wake.set()

    def status(self) -> dict:
        """For diagnostics: installed version, last check and its result, last error, bytes downloaded,
        refusals, and the download in progress (version, done, total bytes) if any."""
        with self._lock:
            return dict(self._status)

    # --- the thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        self._set(installed_version=self.store.current_version())
        backoff, retry = self.retry_min_s, None           # retry: (url, the version announced there, or None)
        next_at: float | None = time.monotonic() if self.cfg.url else None
        while not self._stop.is_set():
            timeout = None if next_at is None else max(0.0, next_at - time.monotonic())
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._lock:
                announced, self._announced = self._announced, None
            if announced is not None:
                url, want = announced
                installed = self.store.current_version()
                if want <= installed:
                    self._once("announced", want, "bookcase %s: content version %d announced; already have "
                               "version %d", self.name, want, installed)
                    continue
                LOGGER.info("bookcase %s: content version %d announced at %s", self.name, want, url)
            elif next_at is not None and time.monotonic() >= next_at:
                url, want = retry or (self.cfg.url, None)
            else:
                continue
            outcome = self.update(url)
            if self._stop.is_set():
                break
            behind = want is not None and self.status()["installed_version"] < want
            if behind and outcome in (CURRENT, STALE):
                self._once("behind", want, "bookcase %s: content version %d was announced but %s serves an older "
                           "one (a cache?); trying again later", self.name, want, url)
            if outcome in (REFUSED, FAILED) or behind:
                next_at, retry = time.monotonic() + backoff, (url, want)
                backoff = min(backoff * 2, max(self.retry_min_s, self.cfg.check_interval_s))
            else:
                backoff, retry = self.retry_min_s, None
                next_at = time.monotonic() + self.cfg.check_interval_s if self.cfg.url else None

    # --- one attempt -------------------------------------------------------------------------------

    def update(self, url: str | None = None) -> str:
        """One attempt from ``url`` (default ``[content] url``): INSTALLED, CURRENT (already have it), STALE
        (older than installed), REFUSED (bad signature, tampered file, malformed) or FAILED (network, disk,
        another attempt running; worth retrying). Never raises."""
        base = url or self.cfg.url
        if not base:
            return self._outcome(FAILED, "?", "no content url: set [content] url, or wait for an announcement")
        base = base if base.endswith("/") else base + "/"
        self._set(last_check=mf.created_now(), installed_version=self.store.current_version())
        try:
            with self._exclusive():
                outcome = self._update(base)
            self._set(last_result=outcome, last_error=None)
        except _Stopped:
            LOGGER.info("bookcase %s: content download stopped; it resumes on the next start", self.name)
            outcome = FAILED
            self._set(last_result=outcome)
        except ContentError as exc:
            outcome = self._outcome(REFUSED, base, str(exc))
        except OSError as exc:              # requests' errors too
            outcome = self._outcome(FAILED, base, _describe(exc))
        except Exception as exc:            # rule 8: the daemon survives whatever a download does
            LOGGER.exception("bookcase %s: content update from %s failed unexpectedly", self.name, base)
            outcome = self._outcome(FAILED, base, f"unexpected error: {exc!r}", log=False)
        finally:
            self._set(downloading=None)
            self._save_status()
        return outcome

    def _update(self, base: str) -> str:
        raw, signature, manifest = self._signed(base)
        if manifest.library != self.library:
            raise ContentError(f"version {manifest.version} is for library {manifest.library!r}; this bookcase "
                               f"belongs to {self.library!r}")
        installed = self.store.current_version()
        self._set(installed_version=installed)
        if manifest.version == installed:
            self._once("current", installed, "bookcase %s: content at %s: already have version %d", self.name,
                       base, installed)
            return CURRENT
        if manifest.version < installed:
            if self._once("stale", manifest.version, "bookcase %s: content version %d at %s is older than "
                          "installed version %d: refused", self.name, manifest.version, base, installed):
                self._set(refused=self.status()["refused"] + 1)
            return STALE
        self.store.prepare()
        todo = list({a.sha256: a for a in manifest.assets.values() if not self.store.has(a.sha256)}.values())
        total = sum(a.size for a in todo)
        have = sum(min(self._part_size(a), a.size) for a in todo)
        free = shutil.disk_usage(self.store.objects).free
        if free - (total - have) < self.reserve_bytes:
            raise OSError(errno.ENOSPC, f"not enough disk space: {(total - have) / MB:.1f} MB to download, "
                                        f"{free / MB:.1f} MB free and {self.reserve_bytes // MB} MB must stay free")
        if todo:
            LOGGER.info("bookcase %s: content version %d from %s: downloading %d file(s), %.1f MB%s%s", self.name,
                        manifest.version, base, len(todo), total / MB,
                        f" ({have / MB:.1f} MB already here, resuming)" if have else "",
                        f", at most {self.cfg.max_kbps} KB/s" if self.cfg.max_kbps else "")
        progress = _Progress(self.name, manifest.version, total, have, self.clock)
        bucket, chunk = None, CHUNK
        if self.cfg.max_kbps:
            rate = self.cfg.max_kbps * 1024
            chunk = min(CHUNK, max(4096, rate // 8))
            bucket = TokenBucket(rate, chunk, self.clock)
        for asset in todo:
            self._set(downloading={"version": manifest.version, "file": asset.path, "done": progress.done,
                                   "total": total})
            self._download(base, asset, progress, bucket, chunk)
        self.store.install(raw, signature)
        self._set(installed_version=manifest.version)
        LOGGER.info("bookcase %s: content version %d from %s installed and playing (%d items; %d of %d files "
                    "downloaded, %.1f MB)", self.name, manifest.version, base, len(manifest.items), len(todo),
                    len(manifest.assets), total / MB)
        return INSTALLED

    def _signed(self, base: str) -> tuple[bytes, bytes, mf.Manifest]:
        """The manifest, its signature, and the manifest they verify to; ContentError if they do not.

        `kiosk content sign` replaces the two files one after the other, so a check between the two renames
        sees the new manifest with the old signature. A pair that does not verify is fetched again after
        ``settle_s``: if either file changed meanwhile, the new pair decides; if not, the content is bad.
        """
        raw = self._get_small(base + mf.MANIFEST, mf.MAX_MANIFEST_BYTES)
        signature = self._get_small(base + mf.SIGNATURE, MAX_SIGNATURE_BYTES)
        try:
            return raw, signature, mf.verify(raw, signature, self.store.keys)
        except ContentError:
            if self._stop.wait(self.settle_s):
                raise _Stopped from None
            again = (self._get_small(base + mf.MANIFEST, mf.MAX_MANIFEST_BYTES),
                     self._get_small(base + mf.SIGNATURE, MAX_SIGNATURE_BYTES))
            if again == (raw, signature):
                raise
        LOGGER.info("bookcase %s: the content at %s changed while it was read (being published?); reading it "
                    "again", self.name, base)
        return *again, mf.verify(*again, self.store.keys)

    def _get_small(self, url: str, limit: int) -> bytes:
        with self.session.get(url, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                              headers={"Cache-Control": "no-cache"}) as resp:
            if resp.status_code != 200:
                raise requests.HTTPError(f"HTTP {resp.status_code} for {url}", response=resp)
            body = bytearray()
            for part in resp.iter_content(CHUNK):
                body += part
                if len(body) > limit:
                    raise ContentError(f"{url} is larger than {limit} bytes")
            return bytes(body)

    def _part_size(self, asset: mf.Asset) -> int:
        try:
            return self.store.part_path(asset.sha256).stat().st_size
        except OSError:
            return 0

    def _download(self, base: str, asset: mf.Asset, progress: _Progress, bucket: TokenBucket | None,
                  chunk_size: int) -> None:
        part = self.store.part_path(asset.sha256)
        url = asset_url(base, asset.path)
        have = self._part_size(asset)
        if have > asset.size:
            LOGGER.info("bookcase %s: the partial download of %s is longer than the manifest says; starting over",
                        self.name, asset.path)
            part.unlink()
            progress.done -= asset.size
            have = 0
        if have < asset.size:
            headers = {"Accept-Encoding": "identity"}
            if have:
                headers["Range"] = f"bytes={have}-"
            with self.session.get(url, headers=headers, stream=True,
                                  timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) as resp:
                resumed = resp.headers.get("Content-Range", "").startswith(f"bytes {have}-")
                if have and resp.status_code == 200:
                    LOGGER.info("bookcase %s: %s does not resume downloads (200, not 206); %s starts over",
                                self.name, base, asset.path)
                    progress.done -= have
                    have = 0
                elif have and (resp.status_code == 416 or resp.status_code == 206 and not resumed):
                    part.unlink()           # 416: the server's file is shorter than the manifest says
                    raise requests.HTTPError(f"{url} did not resume at byte {have} (HTTP {resp.status_code}, "
                                             f"Content-Range {resp.headers.get('Content-Range')!r}); starting over")
                elif resp.status_code != (206 if have else 200):
                    raise requests.HTTPError(f"HTTP {resp.status_code} for {url}", response=resp)
                try:
                    have = self._receive(resp, part, have, asset, progress, bucket, chunk_size)
                except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError,
                        requests.Timeout) as exc:
                    kept = self._part_size(asset)
                    raise requests.ConnectionError(
                        f"the connection broke after {kept} of {asset.size} bytes of {asset.path} "
                        f"({_cause(exc)}); the {kept} bytes are kept and the download resumes") from None
            if have < asset.size:
                raise requests.ConnectionError(f"the connection ended after {have} of {asset.size} bytes of "
                                               f"{asset.path}")
        try:
            self.store.admit(part, asset.sha256)
        except ContentError as exc:
            raise ContentError(f"{asset.path} from {url}: {exc} (the file was altered)") from None

    def _receive(self, resp: requests.Response, part: os.PathLike, have: int, asset: mf.Asset, progress: _Progress,
                 bucket: TokenBucket | None, chunk_size: int) -> int:
        with open(part, "ab" if have else "wb") as f:
            for data in resp.iter_content(chunk_size):
                if self._stop.is_set():
                    raise _Stopped
                if have + len(data) > asset.size:
                    os.unlink(part)
                    raise ContentError(f"{asset.path}: the server sent more than the manifest's {asset.size} bytes")
                try:
                    f.write(data)
                except OSError as exc:
                    raise OSError(exc.errno, exc.strerror, str(part)) from None
                have += len(data)
                progress.add(len(data), asset.path)
                with self._lock:
                    self._status["bytes_downloaded"] += len(data)
                    if self._status["downloading"]:
                        self._status["downloading"] = {**self._status["downloading"], "done": progress.done}
                self.transfers.append((self.clock(), len(data)))
                wait = bucket.take(len(data)) if bucket else 0.0
                if wait and self._sleep(wait):
                    raise _Stopped
        return have

    # --- bookkeeping -------------------------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One attempt at a time per content folder, across processes (the daemon and `kiosk content fetch`)."""
        self.store.root.mkdir(parents=True, exist_ok=True)
        with open(self.store.root / LOCK_FILE, "a") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OSError(errno.EBUSY, "another content update is running on this bookcase (the daemon, "
                                           "or `kiosk content fetch`)") from None
            yield                   # closing the file releases the lock, whatever happened

    def _once(self, what: str, version: int, message: str, *args: object) -> bool:
        """Log ``message`` the first time only for this ``what`` and version; True if it was logged."""
        with self._lock:
            if (what, version) in self._said:
                return False
            self._said.add((what, version))
        LOGGER.info(message, *args)
        return True

    def _outcome(self, outcome: str, base: str, why: str, log: bool = True) -> str:
        """Record a refused or failed attempt; ONE line for the operator says what, why, and what plays."""
        with self._lock:
            self._status.update(last_result=outcome, last_error=why)
            self._status["refused"] += outcome == REFUSED
            installed = self._status["installed_version"]
        keeps = f"version {installed} keeps playing" if installed else "the built-in cards keep showing"
        if log and outcome == REFUSED:
            LOGGER.warning("bookcase %s: content from %s refused: %s; %s", self.name, base, why, keeps)
        elif log:
            LOGGER.warning("bookcase %s: content update from %s failed: %s; %s; trying again later", self.name, base,
                           why, keeps)
        return outcome

    def _set(self, **changes: object) -> None:
        with self._lock:
            self._status.update(changes)

    def _save_status(self) -> None:
        """``status.json`` in the content folder, for `kiosk content status` while the daemon runs or not."""
        try:
            path = self.store.root / STATUS_FILE
            tmp = path.with_name(f".{STATUS_FILE}.tmp")
            tmp.write_text(json.dumps(self.status(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            LOGGER.debug("bookcase %s: content status not saved (%s)", self.name, exc)


def _describe(exc: OSError) -> str:
    """An operator's words for a network or disk error."""
    text = str(exc)
    if exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"no space left on the disk ({exc.strerror}{where}); what was downloaded so far is kept"
    if not isinstance(exc, requests.RequestException):
        return f"{exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}"
    if isinstance(exc, requests.ConnectionError) and not text.startswith("the connection"):
        return f"cannot reach the server ({_cause(exc)})"
    return f"no answer in time ({_cause(exc)})" if isinstance(exc, requests.Timeout) else text[:300]


def _cause(exc: BaseException) -> str:
    """The gist of a requests error: "Connection refused", "IncompleteRead", ..."""
    text = str(exc)
    markers = ("Connection refused", "timed out", "Name or service not known", "Connection reset", "IncompleteRead")
    return next((m for m in markers if m in text), text[:160])
