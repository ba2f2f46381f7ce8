"""``/metrics`` in the Prometheus text format (0.0.4): bookcases online, outbox depths, the gateway's backlog,
open alarms and the review queue, so the library's existing monitoring can scrape and alert on them."""

from __future__ import annotations

from gateway.console.views import Views


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(views: Views) -> str:
    rows = views.fleet_rows()
    backlog = views.journal.backlog()
    out = [
        "# HELP citybook_bookcases Bookcases known to the console.", "# TYPE citybook_bookcases gauge",
        f"citybook_bookcases {len(rows)}",
        "# HELP citybook_bookcases_online Bookcases whose retained state says online and is fresh.",
        "# TYPE citybook_bookcases_online gauge", f"citybook_bookcases_online {sum(r['online'] for r in rows)}",
        "# HELP citybook_bookcase_up 1 if the bookcase is online.", "# TYPE citybook_bookcase_up gauge",
        *(f'citybook_bookcase_up{{bookcase="{_label(r["bookcase"])}"}} {int(r["online"])}' for r in rows),
        "# HELP citybook_outbox_depth Events a bookcase has not yet had acknowledged by the broker.",
        "# TYPE citybook_outbox_depth gauge",
        *(f'citybook_outbox_depth{{bookcase="{_label(r["bookcase"])}"}} {r["outbox"]}' for r in rows
          if r["outbox"] is not None),
        "# HELP citybook_open_alarms Alarms raised and not yet cleared, per bookcase.",
        "# TYPE citybook_open_alarms gauge",
        *(f'citybook_open_alarms{{bookcase="{_label(r["bookcase"])}"}} {r["alarms"]}' for r in rows),
        "# HELP citybook_gateway_backlog Loans and returns journaled and not yet applied at the ILS.",
        "# TYPE citybook_gateway_backlog gauge", f"citybook_gateway_backlog {backlog['depth']}",
        "# HELP citybook_gateway_backlog_oldest_seconds How long the oldest of them has waited.",
        "# TYPE citybook_gateway_backlog_oldest_seconds gauge",
        f"citybook_gateway_backlog_oldest_seconds {backlog['oldest_age_s'] or 0}",
        "# HELP citybook_gateway_acks_due Results not yet acknowledged to their bookcase.",
        "# TYPE citybook_gateway_acks_due gauge", f"citybook_gateway_acks_due {backlog['acks_due']}",
        "# HELP citybook_review_open Items waiting for a person in the review queue.",
        "# TYPE citybook_review_open gauge", f"citybook_review_open {backlog['review_open']}",
    ]
    return "\n".join(out) + "\n"
