"""A report document ("agentmesh-report/1", docs/operations.md) for renderer tests, with `text` in every
string a forge or a journal could have written."""

from __future__ import annotations

from datetime import date, timedelta
from html.parser import HTMLParser

SECTIONS = ["fleet", "work", "throughput", "budgets", "incidents"]  # the page's <section id=...>, in order
HOSTILE = ("<script>alert(1)</script><img src=x onerror=alert(2)>\u202eevil\u2066 \x1b[2J\x07"
           "\"' onmouseover=alert(3) javascript:alert(4)")


def sample_report(days: int = 7, text: str = "", *, web_url: str | None = "https://forge.example/org/repo",
                  agents: tuple[str, ...] = ("ada", "bob")) -> dict:
    dates = [(date(2026, 11, 27) - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]

    def card(issue: int, title: str, agent: str | None = None, pr: int | None = None) -> dict:
        return {"issue": issue, "title": title + text, "agent": agent and agent + text,
                "url": f"{web_url}/issues/{issue}" if web_url else None, "pr": pr,
                "pr_url": f"{web_url}/pulls/{pr}" if web_url and pr else None}

    def counts(scale: int) -> dict:
        return {"completed": [(i * scale) % 5 for i in range(days)], "failed": [i % 2 for i in range(days)],
                "reworked": [(i % 3 == 0) * scale for i in range(days)]}

    def spend(scale: float) -> dict:
        return {"tasks": [i % 4 for i in range(days)], "minutes": [scale * (i % 5) for i in range(days)],
                "cost_usd": [scale * 0.3 * (i % 3) for i in range(days)]}

    usage = {"usage": {"tasks": 3, "minutes": 41.5, "cost_usd": 1.25},
             "caps": {"tasks_per_day": 10, "executor_minutes_per_day": 120, "cost_usd_per_day": None},
             "exhausted": []}
    return {
        "schema": "agentmesh-report/1", "generated_at": "2026-11-27T08:00:00Z", "observer": "ada" + text,
        "remote": "git@forge.example:org/repo.git" + text, "days": days,
        "forge": {"kind": "gitea", "web_url": web_url},
        "halted": None, "paused": "over budget" + text if text else None,
        "agents": [{"agent": name + text, "host": f"host-{name}" + text, "version": "0.9.0" + text,
                    "executor": "claude" + text, "capabilities": ["python" + text, "docs"], "alive": i == 0,
                    "verified": True, "key": "SHA256:abc" + text, "seen_seconds": 12.0 + 600 * i,
                    "heartbeat_at": "2026-11-27T07:59:48Z" + text,
                    "claims": [{"issue": 3 + i, "lease_left_seconds": 540.0, "expired": i == 1}]}
                   for i, name in enumerate(agents)],
        "board": {"eligible": [card(1, "Add a greeting")], "claimed": [card(3, "Fix the parser", "ada")],
                  "working": [card(4, "Write docs", "bob")], "review": [card(5, "Speed up", "ada", 9)],
                  "needs_human": [card(6, "Touch CI", "bob", 10)], "failed": [card(7, "Flaky", "ada")],
                  "dead_letter": [card(8, "Impossible", None)]},
        "pulls": [{"number": 9, "title": "Speed up" + text, "author": "ada" + text, "issue": 5,
                   "url": f"{web_url}/pulls/9" if web_url else None, "age_seconds": 3700.0,
                   "approved_by": ["bob" + text], "changes_requested_by": ["cy" + text], "ci": "success" + text,
                   "approved_head": "0123456789abcdef" + text, "head_sha": "0123456789abcdef" + text}],
        "throughput": {"dates": dates, "agents": {name + text: counts(i + 1) for i, name in enumerate(agents)},
                       "fleet": counts(3)},
        "latency": {"claim_to_pr": {"count": 12, "median_seconds": 420.0, "p90_seconds": 1300.0},
                    "pr_to_merge": {"count": 10, "median_seconds": 95.0, "p90_seconds": 7300.0}},
        "budget": {"dates": dates,
                   "caps": {"agent": {"tasks": 10, "minutes": 120, "cost_usd": None},
                            "fleet": {"tasks": 30, "minutes": None, "cost_usd": 25.0}},
                   "agents": {name + text: spend(i + 1) for i, name in enumerate(agents)}, "fleet": spend(3),
                   "current": {"day": dates[-1], "window": {"kind": "day", "label": dates[-1]}, "paused": None,
                               "agents": {name + text: usage for name in agents}, "fleet": usage}},
        "incidents": [{"at": "2026-11-26T10:00:00Z", "kind": "reap", "issue": 3, "agent": "bob" + text,
                       "reason": "lease expired" + text},
                      {"at": "2026-11-27T07:00:00Z", "kind": "needs-human", "issue": 6, "agent": "bob",
                       "reason": "protected path .ci/run" + text},
                      {"at": "2026-11-25T07:00:00Z", "kind": "dead-letter" + text, "issue": 8, "agent": None,
                       "reason": text or "failed 3 times"}],
        "incident_limit": 100,
        "ignored_journal_lines": 3, "ignored_journal_reasons": {"unreadable": 2, "unsigned": 1, text or "x": 7},
    }


class Page(HTMLParser):
    """The page as parsed: every start tag with its attributes, the text, and the charts' points."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []
        self.sections: list[str] = []
        self.charts: list[list[str]] = []  # per chart, the data-date of each point
        self.values: list[list[float]] = []  # per chart, the data-value of each point
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, tuple(name for name, _ in attrs)))
        self.attrs += [(tag, name, value) for name, value in attrs]
        values = dict(attrs)
        if tag == "section":
            self.sections.append(values.get("id"))
        if tag == "svg" and "chart" in (values.get("class") or "").split():
            self.charts.append([])
            self.values.append([])
        if tag == "g" and "pt" in (values.get("class") or "").split():
            self.charts[-1].append(values.get("data-date"))
            self.values[-1].append(float(values.get("data-value") or "nan"))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        self.text.append(data)

    @property
    def content(self) -> str:
        return "".join(self.text)
