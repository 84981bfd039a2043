"""`agentmesh report --html`: the report document ("agentmesh-report/1") as one self-contained page.

The page needs no server and no network: the style is this package's `report.css`, inlined; the
charts are inline SVG drawn here; there is no script at all, and a Content-Security-Policy meta
forbids loading anything (only inline style and data: images). It opens from disk or any static
host (a scheduled CI job publishing it to Pages, say).

Every string of the document comes from forge text and journals, which are untrusted: the page
is built only with core/html.py's `el`, which escapes and cleans every text and attribute value,
and links only to http(s) URLs under the forge's web URL. The document may miss or add fields
(another version wrote it): whatever is missing or malformed shows as "no data", never a crash.

Each chart has exactly one `<g class="pt" data-date=...>` per day, so a test can count them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import resources

from agentmesh.core.html import Markup, clean, el, escape, http_url, join, link_url, void
from agentmesh.core.report import ignored_note

BOARD = (("eligible", "Eligible"), ("claimed", "Claimed"), ("working", "Working"), ("review", "In review"),
         ("needs_human", "Needs human"), ("failed", "Failed"), ("dead_letter", "Dead letter"))
THROUGHPUT = (("completed", "completed"), ("failed", "failed"), ("reworked", "reworked"))
BUDGET = (("tasks", "tasks", "{:g}", True), ("minutes", "executor minutes", "{:.0f}", False),
          ("cost_usd", "cost (USD)", "${:.2f}", False))  # (key, name, format, whole numbers)
INCIDENT_KINDS = {"halt": "bad", "reap": "warn", "dead-letter": "bad", "needs-human": "info"}
CI_STATES = {"success": "ok", "passed": "ok", "green": "ok", "failure": "bad", "failed": "bad", "error": "bad",
             "red": "bad", "pending": "warn", "running": "warn"}
MAX_ROWS = 200  # rows of one table: a wall screen, not an archive
MAX_CARDS = 12  # cards of one board column
MAX_DAYS = 366
NAME_MAX = 40
FIGURE_MAX = 1e15  # a chart's value at most
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'"
NO_DATA = "no data"
DASH = "\u2013"  # an en dash: no value


# --- reading the document: every accessor tolerates a missing or wrongly typed value ---

def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _series(value: object, length: int) -> list[float]:
    """`value` as `length` numbers from 0 to FIGURE_MAX: missing or bad entries are 0, so that no sum or axis
    of them is inf."""
    items = _list(value)[:length]
    return [min(FIGURE_MAX, max(0.0, _num(v) or 0.0)) for v in items] + [0.0] * (length - len(items))


def _dates(value: object) -> list[str]:
    return [clean(d, 20) for d in _list(value)[:MAX_DAYS]]


# --- formatting ---

def duration(seconds: object) -> str:
    value = _num(seconds)
    if value is None:
        return DASH
    value = abs(value)
    for size, unit, smaller, small_unit in ((86400, "d", 3600, "h"), (3600, "h", 60, "m"), (60, "m", 1, "s")):
        if value >= size:
            rest = int(value % size // smaller)
            return f"{int(value // size)}{unit}" + (f" {rest}{small_unit}" if rest else "")
    return f"{value:.0f}s"


def _amount(value: float | None, style: str) -> str:
    return DASH if value is None else style.format(value)


def _name(value: object) -> str:
    """An agent, host, author or version: short, whatever was written."""
    return clean(value, NAME_MAX) if value is not None else ""


def _short(sha: object) -> str:
    return clean(sha, 40)[:10]


def _nodata(text: str = NO_DATA) -> Markup:
    return el("p", {"class": "nodata"}, text)


def _table(headers: Sequence[str], rows: Sequence[Markup], numeric: Sequence[int] = ()) -> Markup:
    head = el("tr", None, (el("th", {"class": "num" if i in numeric else None}, h) for i, h in enumerate(headers)))
    return el("div", {"class": "table"}, el("table", None, el("thead", None, head), el("tbody", None, rows)))


def _more(total: int, shown: int = MAX_ROWS) -> Markup | None:
    return el("p", {"class": "note"}, f"and {total - shown} more") if total > shown else None


# --- links: only http(s) URLs under the forge's web URL ---

class Links:
    def __init__(self, forge: object):
        forge = _dict(forge)
        self.base = http_url(forge.get("web_url"))
        self.kind = clean(forge.get("kind"), 20)

    def url(self, given: object, path: str, number: int | None) -> str | None:
        """The document's URL when it is under the forge, else one built from the forge's web URL."""
        if self.base is None:
            return None
        if (url := link_url(given, self.base)) is not None:
            return url
        return f"{self.base.rstrip('/')}/{path}/{number}" if number is not None else None

    def issue(self, given: object, number: int | None) -> str | None:
        return self.url(given, "issues", number)

    def pull(self, given: object, number: int | None) -> str | None:
        return self.url(given, "pull" if self.kind == "github" else "pulls", number)


def _anchor(text: str, url: str | None, css: str | None = None) -> Markup:
    if url is None:
        return el("span", {"class": css}, text)
    return el("a", {"href": url, "class": css, "rel": "noopener noreferrer"}, text)


def _number(prefix: str, value: int | None) -> str:
    return f"{prefix}{value}" if value is not None else "?"


# --- charts ---

SMALL, LARGE = (420, 150), (960, 230)  # viewBox sizes: the text keeps one size on the screen either way
PAD_L, PAD_B, PAD_T = 40, 18, 8


def _tick_label(date: str) -> str:
    return date[5:] if len(date) == 10 else date


def nice_top(value: float, *, counts: bool = False) -> float:
    """An axis maximum: the smallest 1, 2, 2.5 or 5 times a power of ten that is at least `value`; for
    `counts`, 2, 4 or 10 times a power of ten, so that the middle grid line is a whole number too."""
    steps, floor = ((2, 4, 10), 2.0) if counts else ((1, 2, 2.5, 5, 10), 0.0)
    value = max(value, floor)
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    if counts and power > 1 and value <= power * 1.0:
        power /= 10
    return next(power * m for m in steps if power * m >= value * (1 - 1e-9))


def bar_chart(dates: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]], *,
              cap: float | None = None, label: str, style: str = "{:g}", size: tuple[int, int] = SMALL,
              counts: bool = False) -> Markup:
    """Stacked bars, one `<g class="pt" data-date>` per day; `series` is (css class, name, values);
    `cap`: a dashed line (a limit per day); `counts`: whole numbers, so whole grid lines."""
    width_, height_ = size
    totals = [sum(values[i] for _, _, values in series) for i in range(len(dates))]
    top = nice_top(max([*totals, cap or 0.0]), counts=counts)
    plot_w, plot_h = width_ - PAD_L - 4, height_ - PAD_B - PAD_T
    step = plot_w / max(1, len(dates))
    width = max(1.0, step * 0.72)

    def y(value: float) -> float:
        return PAD_T + plot_h - plot_h * value / top

    parts: list[Markup] = []
    for tick in (0.0, top / 2, top):
        parts.append(void("line", {"class": "grid", "x1": PAD_L, "x2": width_ - 4, "y1": f"{y(tick):.1f}",
                                   "y2": f"{y(tick):.1f}"}))
        parts.append(el("text", {"x": PAD_L - 5, "y": f"{y(tick) + 3:.1f}", "text-anchor": "end"},
                        _amount(tick, style) if tick else "0"))
    for i, date in enumerate(dates):
        x = PAD_L + i * step + (step - width) / 2
        base, rects = 0.0, []
        for css, _name, values in series:
            if values[i] > 0:
                rects.append(void("rect", {"class": css, "x": f"{x:.1f}", "y": f"{y(base + values[i]):.1f}",
                                           "width": f"{width:.1f}", "height": f"{y(base) - y(base + values[i]):.1f}",
                                           "rx": 1.5}))
                base += values[i]
        tip = f"{date}: " + ", ".join(f"{_amount(values[i], style)} {name}" for _, name, values in series)
        # a transparent full-height rect: every day is hoverable, even an empty one
        hit = void("rect", {"x": f"{x:.1f}", "y": PAD_T, "width": f"{width:.1f}", "height": f"{plot_h:.1f}",
                            "fill": "transparent"})
        parts.append(el("g", {"class": "pt", "data-date": date, "data-value": f"{totals[i]:g}"},
                        el("title", None, tip), hit, rects))
    for i in sorted({0, len(dates) // 2, len(dates) - 1}) if dates else ():
        parts.append(el("text", {"x": f"{PAD_L + (i + 0.5) * step:.1f}", "y": height_ - 4, "text-anchor": "middle"},
                        _tick_label(dates[i])))
    if cap is not None:
        parts.append(void("line", {"class": "cap", "x1": PAD_L, "x2": width_ - 4, "y1": f"{y(cap):.1f}",
                                   "y2": f"{y(cap):.1f}"}))
    return el("svg", {"class": "chart", "viewBox": f"0 0 {width_} {height_}", "role": "img", "aria-label": label,
                      "xmlns": "http://www.w3.org/2000/svg"}, parts)


def _figure(title: str, aside: str, chart: Markup) -> Markup:
    return el("figure", None, el("figcaption", None, title, el("span", None, aside)), chart)


def _legend(items: Sequence[tuple[str, str]]) -> Markup:
    return el("div", {"class": "legend"}, (el("span", None, el("i", {"class": css}), name) for css, name in items))


# --- sections ---

def _section(ident: str, title: str, aside: str, *body: object) -> Markup:
    return el("section", {"id": ident}, el("h2", None, title, el("small", None, aside)), body)


def _claims(agent: dict) -> Markup:
    claims = [_dict(c) for c in _list(agent.get("claims"))][:MAX_ROWS]
    if not claims:
        return el("span", {"class": "muted"}, DASH)
    return join(el("span", {"class": "chip"}, _number("#", _int(c.get("issue"))), " · ",
                   el("span", {"class": "bad-t"}, "expired") if c.get("expired") is True
                   else f"{duration(c.get('lease_left_seconds'))} left") for c in claims)


def _agent_row(agent: dict, observer: str) -> Markup:
    alive = agent.get("alive")
    state = "alive" if alive is True else "dead" if alive is False else "unknown"
    key = agent.get("key")
    verified = agent.get("verified") is True
    seen = duration(agent.get("seen_seconds"))
    return el("tr", None,
              el("td", None, el("span", {"class": f"dot {state}"}), el("b", None, _name(agent.get("agent"))),
                 el("div", {"class": "muted", "title": f"{state} as {observer} sees it: its presence unchanged for "
                                                      f"{seen} by {observer}'s clock"}, f"{state} · unchanged {seen}")),
              el("td", None, _name(agent.get("host"))), el("td", None, _name(agent.get("version"))),
              el("td", None, _name(agent.get("executor"))),
              el("td", None, [el("span", {"class": "chip"}, _name(c)) for c in _list(agent.get("capabilities"))[:20]]
                 or DASH),
              el("td", {"class": "mono", "title": key if isinstance(key, str) else None},
                 clean(key, 20) if isinstance(key, str) else DASH,
                 el("div", {"class": "ok-t" if verified else "warn-t"}, "✓ verified" if verified else "not verified")),
              el("td", {"class": "mono"}, _name(agent.get("heartbeat_at")) or DASH),
              el("td", None, _claims(agent)))


def fleet(doc: dict) -> Markup:
    agents = [_dict(a) for a in _list(doc.get("agents"))]
    observer = _name(doc.get("observer")) or "this observer"
    if not agents:
        return _section("fleet", "Fleet", "", _nodata())
    alive = sum(1 for a in agents if a.get("alive") is True)
    rows = [_agent_row(a, observer) for a in agents[:MAX_ROWS]]
    headers = ("agent (alive or dead by this observer)", "host", "version", "executor", "capabilities",
               "key fingerprint", "last heartbeat (its own clock)", "claims (lease left)")
    return _section("fleet", "Fleet", f"{alive} of {len(agents)} alive, as seen by {observer}",
                    _table(headers, rows), _more(len(agents)))


def _card(card: dict, links: Links) -> Markup:
    number, pr = _int(card.get("issue")), _int(card.get("pr"))
    agent = card.get("agent")
    return el("div", {"class": "card"},
              el("div", {"class": "t"}, _anchor(_number("#", number), links.issue(card.get("url"), number)), " ",
                 clean(card.get("title"), 120)),
              el("div", {"class": "f"}, el("span", None, _name(agent) if agent else ""),
                 _anchor(f"PR #{pr}", links.pull(card.get("pr_url"), pr)) if pr is not None else None))


def _column(key: str, title: str, cards: list, links: Links) -> Markup:
    shown = [_card(_dict(c), links) for c in cards[:MAX_CARDS]]
    return el("div", {"class": f"col {key}"}, el("h4", None, title, el("span", None, str(len(cards)))),
              shown or el("div", {"class": "muted"}, DASH), _more(len(cards), MAX_CARDS))


def _reviewers(names: object, css: str, mark: str) -> Markup:
    return join(el("span", {"class": f"chip {css}"}, mark, _name(name)) for name in _list(names)[:10])


def _pull_row(pull: dict, links: Links) -> Markup:
    number, issue = _int(pull.get("number")), _int(pull.get("issue"))
    ci = clean(pull.get("ci"), 30) or DASH
    approved, head = pull.get("approved_head"), pull.get("head_sha")
    at_head = isinstance(approved, str) and approved and approved == head
    return el("tr", None,
              el("td", None, _anchor(_number("#", number), links.pull(pull.get("url"), number))),
              el("td", {"class": "title"}, clean(pull.get("title"), 140)),
              el("td", None, _name(pull.get("author"))),
              el("td", None, _anchor(_number("#", issue), links.issue(None, issue)) if issue is not None else DASH),
              el("td", {"class": "num"}, duration(pull.get("age_seconds"))),
              el("td", None, _reviewers(pull.get("approved_by"), "ok-t", "✓ "),
                 _reviewers(pull.get("changes_requested_by"), "bad-t", "✗ ")),
              el("td", None, el("span", {"class": f"pill {CI_STATES.get(ci.lower(), '')}"}, ci)),
              el("td", {"class": "mono"}, _short(approved) if isinstance(approved, str) and approved else DASH,
                 el("span", {"class": "ok-t" if at_head else "warn-t"},
                    (" = head" if at_head else f" (head {_short(head)})") if approved else "")))


def work(doc: dict, links: Links) -> Markup:
    board = doc.get("board")
    columns = [_column(key, title, _list(_dict(board).get(key)), links) for key, title in BOARD]
    pulls = [_dict(p) for p in _list(doc.get("pulls"))]
    table = (_table(("PR", "title", "author", "issue", "age", "reviews", "CI", "approved at"),
                    [_pull_row(p, links) for p in pulls[:MAX_ROWS]], numeric=(4,)) if pulls
             else _nodata("no open pull requests"))
    return _section("work", "Work", "issues by stage, pull requests",
                    el("div", {"class": "board"}, columns) if isinstance(board, dict) else _nodata(),
                    el("h3", None, "Pull requests"), table, _more(len(pulls)))


def _throughput_chart(dates: list[str], counts: dict, label: str, size: tuple[int, int] = SMALL) -> Markup:
    series = [(f"s-{key}", name, _series(counts.get(key), len(dates))) for key, name in THROUGHPUT]
    done, failed = sum(series[0][2]), sum(series[1][2])
    rate = f" · {100 * done / (done + failed):.0f}% success" if done + failed else ""
    chart = bar_chart(dates, series, label=f"{label}: per day", size=size, counts=True)
    return _figure(label, f"{done:g} completed{rate}", chart)


def _latency(name: str, value: object) -> Markup:
    value = _dict(value)
    count = _int(value.get("count"))
    return el("div", {"class": "kpi"}, el("div", {"class": "l"}, name),
              el("div", {"class": "v"}, duration(value.get("median_seconds"))),
              el("div", {"class": "s"}, f"median · p90 {duration(value.get('p90_seconds'))} · "
                                        f"{count if count is not None else 0} measured"))


def throughput(doc: dict) -> Markup:
    data = _dict(doc.get("throughput"))
    dates = _dates(data.get("dates"))
    latency = _dict(doc.get("latency"))
    tiles = el("div", {"class": "kpis"}, _latency("claim → PR", latency.get("claim_to_pr")),
               _latency("PR → merge", latency.get("pr_to_merge")))
    if not dates:
        return _section("throughput", "Throughput", "", tiles, _nodata())
    agents = _dict(data.get("agents"))
    per_agent = [_throughput_chart(dates, _dict(counts), _name(name)) for name, counts in
                 sorted(agents.items())[:MAX_ROWS]]
    return _section("throughput", "Throughput", f"per day, last {len(dates)} days",
                    tiles, _legend([(key, name) for key, name in THROUGHPUT]),
                    el("div", {"class": "charts big"},
                       _throughput_chart(dates, _dict(data.get("fleet")), "Fleet", LARGE)),
                    el("h3", None, "Per agent"),
                    el("div", {"class": "charts"}, per_agent) if per_agent else _nodata())


def _cap(caps: dict, key: str) -> float | None:
    value = _num(caps.get(key))
    return min(value, FIGURE_MAX) if value is not None and value >= 0 else None


def _budget_charts(dates: list[str], spend: dict, caps: dict, who: str, daily: bool) -> list[Markup]:
    charts = []
    for key, name, style, whole in BUDGET:
        values = _series(spend.get(key), len(dates))
        cap = _cap(caps, key)
        aside = f"{_amount(sum(values), style)} in {len(dates)} days" + (f" · cap {_amount(cap, style)}" if cap else "")
        chart = bar_chart(dates, [(f"s-{key}", name, values)], cap=cap if daily else None, label=f"{who}: {name}",
                          style=style, counts=whole)
        charts.append(_figure(f"{who} · {name}", aside, chart))
    return charts


def _meter(used: object, cap: object, style: str) -> Markup:
    used_n, cap_n = _num(used), _num(cap)
    text = _amount(used_n or 0.0, style) + (f" / {_amount(cap_n, style)}" if cap_n is not None else "")
    if cap_n is None or cap_n <= 0:
        return el("td", {"class": "num"}, text)
    share = min(1.0, (used_n or 0.0) / cap_n)
    level = "bad" if share >= 1 else "warn" if share >= 0.8 else ""
    return el("td", {"class": "num"}, text, el("div", {"class": f"meter {level}"},
                                              el("b", {"style": f"width:{100 * share:.0f}%"})))


def _current_row(who: str, row: dict) -> Markup:
    usage, caps = _dict(row.get("usage")), _dict(row.get("caps"))

    def cap(key: str) -> object:
        return next((v for k, v in caps.items() if isinstance(k, str) and k.startswith(key)), None)

    exhausted = [clean(_dict(b).get("cap") or _dict(b).get("what") or b, 60) for b in _list(row.get("exhausted"))]
    return el("tr", None, el("td", None, el("b", None, who)),
              _meter(usage.get("tasks"), cap("tasks"), "{:g}"), _meter(usage.get("minutes"), cap("executor_minutes"),
                                                                        "{:.0f}"),
              _meter(usage.get("cost_usd"), cap("cost_usd"), "${:.2f}"),
              el("td", None, (el("span", {"class": "pill bad"}, e) for e in exhausted) if exhausted else DASH))


def _current(current: dict) -> Markup:
    rows = [_current_row(_name(name), _dict(row)) for name, row in sorted(_dict(current.get("agents")).items())]
    if "fleet" in current:
        rows.append(_current_row("fleet", _dict(current.get("fleet"))))
    window = _dict(current.get("window"))
    label = clean(window.get("label") or current.get("day"), 40)
    return join((el("h3", None, f"Current window{': ' + label if label else ''}"),
                 _table(("", "tasks", "executor minutes", "cost", "exhausted"), rows[:MAX_ROWS], numeric=(1, 2, 3))
                 if rows else _nodata()))


def budgets(doc: dict) -> Markup:
    data = _dict(doc.get("budget"))
    dates = _dates(data.get("dates"))
    current = _dict(data.get("current"))
    window = clean(_dict(current.get("window")).get("kind") or data.get("window") or "day", 10)
    daily = window == "day"  # a cap per week or month is no line on a chart per day
    caps = _dict(data.get("caps"))
    body: list[Markup] = [_current(current)] if current else []
    if dates:
        body.append(el("h3", None, "Fleet, per day"))
        body.append(el("div", {"class": "charts"},
                       _budget_charts(dates, _dict(data.get("fleet")), _dict(caps.get("fleet")), "Fleet", daily)))
        agent_caps = _dict(caps.get("agent"))
        for name, spend in sorted(_dict(data.get("agents")).items())[:MAX_ROWS]:
            who = _name(name)
            body.append(el("h3", None, who))
            body.append(el("div", {"class": "charts"}, _budget_charts(dates, _dict(spend), agent_caps, who, daily)))
        if not daily:
            body.append(el("p", {"class": "note"}, f"Caps count per {window}: the charts per day show no cap line."))
    return _section("budgets", "Budgets", "spend against caps", body or _nodata())


def _incident_row(incident: dict, links: Links) -> Markup:
    kind = clean(incident.get("kind"), 30)
    issue = _int(incident.get("issue"))
    return el("tr", None, el("td", {"class": "mono"}, _name(incident.get("at"))),
              el("td", None, el("span", {"class": f"pill {INCIDENT_KINDS.get(kind, '')}"}, kind or "?")),
              el("td", None, _anchor(_number("#", issue), links.issue(None, issue)) if issue is not None else DASH),
              el("td", None, _name(incident.get("agent")) or DASH),
              el("td", {"class": "title"}, clean(incident.get("reason"), 300)))


def _switch(doc: dict) -> Markup:
    halted, paused = doc.get("halted"), doc.get("paused")
    if halted:
        return el("div", {"class": "banner halted"}, "HALTED ", el("span", None, "· ", clean(halted, 300)))
    if paused:
        return el("div", {"class": "banner paused"}, "PAUSED ", el("span", None, "· ", clean(paused, 300)))
    return el("div", {"class": "banner running"}, "Running ", el("span", None, "· no halt, no budget pause"))


def incidents(doc: dict, links: Links) -> Markup:
    found = [_dict(i) for i in _list(doc.get("incidents"))]
    found.sort(key=lambda i: clean(i.get("at"), 40), reverse=True)
    table = (_table(("when", "kind", "issue", "agent", "reason"), [_incident_row(i, links) for i in found[:MAX_ROWS]])
             if found else _nodata("no incidents"))
    return _section("incidents", "Kill switch & incidents", "halts, reaps, dead letters, needs human",
                    _switch(doc), table, _more(len(found)))


# --- the page ---

def _kpi(label: str, value: object, sub: str = "", tone: str = "") -> Markup:
    return el("div", {"class": f"kpi {tone}"}, el("div", {"class": "l"}, label), el("div", {"class": "v"}, value),
              el("div", {"class": "s"}, sub))


def _kpis(doc: dict) -> Markup:
    agents = [_dict(a) for a in _list(doc.get("agents"))]
    alive = sum(1 for a in agents if a.get("alive") is True)
    board = _dict(doc.get("board"))

    def count(*keys: str) -> int:
        return sum(len(_list(board.get(k))) for k in keys)

    fleet_counts = _dict(_dict(doc.get("throughput")).get("fleet"))
    done, failed = (sum(_series(fleet_counts.get(k), MAX_DAYS)) for k in ("completed", "failed"))
    rate = f"{100 * done / (done + failed):.0f}% success" if done + failed else ""
    stuck = count("needs_human", "failed", "dead_letter")
    return el("div", {"class": "kpis"},
              _kpi("agents alive", f"{alive}/{len(agents)}", "", "good" if agents and alive == len(agents) else "warn"),
              _kpi("eligible", count("eligible")), _kpi("in progress", count("claimed", "working"), "claimed, working"),
              _kpi("in review", count("review")),
              _kpi("need attention", stuck, "needs human, failed, dead letter", "bad" if stuck else "good"),
              _kpi("completed", f"{done:g}", rate, "good"))


def _header(doc: dict) -> Markup:
    halted, paused = doc.get("halted"), doc.get("paused")
    state = ("halted", "Halted") if halted else ("paused", "Paused") if paused else ("", "Running")
    days = _int(doc.get("days"))
    return el("header", {"class": "top"},
              el("div", {"class": "brand"}, "agent", el("span", None, "mesh"), " report"),
              el("div", {"class": "meta"},
                 el("span", None, "remote ", el("b", None, clean(doc.get("remote"), 80) or "?")),
                 el("span", None, "generated ", el("b", None, _name(doc.get("generated_at")) or "?")),
                 el("span", None, "by ", el("b", None, _name(doc.get("observer")) or "?")),
                 el("span", None, "last ", el("b", None, str(days) if days is not None else "?"), " days")),
              el("div", {"class": f"state {state[0]}"}, state[1]))


def _toc() -> Markup:
    return el("nav", {"class": "toc"}, (el("a", {"href": f"#{ident}"}, name) for ident, name in (
        ("fleet", "Fleet"), ("work", "Work"), ("throughput", "Throughput"), ("budgets", "Budgets"),
        ("incidents", "Kill switch & incidents"))))


def stylesheet() -> str:
    return resources.files("agentmesh.ops").joinpath("report.css").read_text(encoding="utf-8")


def render_html(doc: dict) -> str:
    """The report page of `doc` (schema agentmesh-report/1), as one self-contained HTML document."""
    doc = _dict(doc)
    links = Links(doc.get("forge"))
    schema = doc.get("schema")
    known = schema == "agentmesh-report/1"
    note = ignored_note(doc.get("ignored_journal_lines"), doc.get("ignored_journal_reasons"))
    ignored = el("p", {"class": "note ignored"}, note, ": their figures are in no chart or table") if note else None
    body = el("div", {"class": "wrap"}, _header(doc), _toc(), _kpis(doc), ignored, fleet(doc), work(doc, links),
              throughput(doc), budgets(doc), incidents(doc, links),
              el("footer", None, "agentmesh report · built from the git remote alone, no server · ",
                 "schema agentmesh-report/1" if known
                 else f"unknown schema {clean(schema, 40)!r}: shown as far as read"))
    title = escape(f"agentmesh report · {clean(doc.get('remote'), 80) or 'mesh'}")
    # the head is this module's constant text; the title and the stylesheet are the only insertions
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<meta name=\"referrer\" content=\"no-referrer\">\n<meta name=\"color-scheme\" content=\"light dark\">\n"
            f"<title>{title}</title>\n<style>\n{stylesheet()}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
