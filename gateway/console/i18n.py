"""The console's words, Chinese first, English beside (the ``lang`` cookie switches)."""

from __future__ import annotations

LANGS = ("zh", "en")

TEXTS: dict[str, tuple[str, str]] = {
    "title": ("城市书柜运维台", "City Bookcase console"),
    "fleet": ("书柜", "Fleet"), "review": ("待处理", "Review"), "alarms": ("告警", "Alarms"),
    "figures": ("统计", "Figures"), "logout": ("退出", "Log out"), "login": ("登录", "Log in"),
    "user": ("账号", "User"), "password": ("密码", "Password"),
    "login_failed": ("账号或密码不对。", "Wrong user name or password."),
    "login_paused": ("登录失败次数过多，请 {s} 秒后再试。", "Too many failed logins: try again in {s} s."),
    "bookcase": ("书柜", "Bookcase"), "site": ("地点", "Site"), "status": ("状态", "Status"),
    "online": ("在线", "online"), "offline": ("离线", "offline"), "last_seen": ("最后消息", "Last seen"),
    "version": ("软件", "Software"), "content": ("屏幕内容", "Content"), "outbox": ("待发送", "Outbox"),
    "oldest": ("最早未发", "Oldest unsent"), "doors": ("柜门", "Doors"), "out_of_service": ("停用", "out of service"),
    "books": ("在柜图书", "Books held"), "loans_today": ("今日借", "Loans today"),
    "returns_today": ("今日还", "Returns today"), "open_alarms": ("未解除告警", "Open alarms"),
    "filter": ("筛选", "Filter"), "live": ("实时更新", "live"), "reconnecting": ("重新连接…", "reconnecting…"),
    "backlog": ("网关积压", "Gateway backlog"), "oldest_wait": ("最久等待", "oldest waiting"),
    "acks_due": ("待回执", "acks due"), "review_open": ("待处理", "to review"),
    "sessions": ("最近借还", "Recent sessions"), "health": ("健康", "Health"), "holdings": ("各门图书", "Holdings"),
    "door": ("门", "Door"), "kind": ("类型", "Kind"), "patron": ("读者", "Patron"), "loans": ("借", "Loans"),
    "returns": ("还", "Returns"), "missing": ("缺失", "Missing"), "when": ("时间", "When"),
    "alarm": ("告警", "Alarm"), "open": ("未解除", "open"), "cleared": ("已解除", "cleared"),
    "acknowledge": ("确认", "Acknowledge"), "acked_by": ("已确认：{who}", "acknowledged by {who}"),
    "evidence": ("依据", "Evidence"), "item": ("图书", "Item"), "ils_said": ("图书馆系统答复", "The ILS said"),
    "retry": ("重新提交", "Retry at the ILS"), "resolve": ("标记已处理", "Mark resolved"),
    "note": ("处理说明", "Note"), "nothing_to_review": ("没有待处理事项。", "Nothing waits for a person."),
    "no_alarms": ("没有告警。", "No alarms."), "per_day": ("每日借还", "Loans and returns per day"),
    "per_bookcase": ("各书柜借还（近 30 天）", "Per bookcase, last 30 days"),
    "busiest_hours": ("最忙时段", "Busiest hours"), "unknown_bookcase": ("没有这个书柜。", "No such bookcase."),
    "forbidden": ("此操作需要运维权限。", "This needs the operator role."),
    "bad_csrf": ("表单已过期，请刷新页面再试。", "The form has expired: reload the page and try again."),
    "done": ("已完成。", "Done."), "counters": ("计数", "Counters"), "reason": ("原因", "Reason"),
    "type_loan": ("借书", "loan"), "type_return": ("还书", "return"),
    "type_uncertain_tag": ("标签不确定", "uncertain tag"),
    "type_item_missing": ("图书缺失", "item missing"), "type_foreign_object": ("非馆藏物品", "foreign object"),
    "type_alarm": ("告警", "alarm"), "role": ("角色", "Role"),
}


def t(key: str, lang: str, **values: object) -> str:
    zh, en = TEXTS.get(key, (key, key))
    text = en if lang == "en" else zh
    return text.format(**values) if values else text
