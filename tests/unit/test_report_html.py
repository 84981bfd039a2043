"""The report page (ops/report_html.py) from documents with hostile text in every string: the structure is
the page's own whatever the text, nothing from the data becomes a tag, an attribute or a link, charts
have one point per day, and a missing or malformed part shows as "no data" instead of a crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmesh.core.html import Markup, clean, el, escape, http_url, link_url, void
from agentmesh.ops.report_html import nice_top, render_html, stylesheet
from tests.support.report import HOSTILE, SECTIONS, Page, sample_report

BASE = "https://forge.example/org/repo"
INVISIBLE = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u200b\ufeff"
CONTROLS = "".join(map(chr, [*range(0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]))


def assert_inert(html: str, plain: str) -> Page:
    """`html` has the tags and attribute names of `plain` (the same document with harmless text), in order:
    nothing in the data became markup. No handler, script or link out of the forge, no hidden character."""
    page, reference = Page(html), Page(plain)
    assert page.tags == reference.tags
    assert not [a for a in page.attrs if a[1].startswith("on")]
    assert not [t for t, _ in page.tags if t in ("script", "iframe", "object", "embed", "link", "img", "base")]
    hrefs = [v for t, n, v in page.attrs if n in ("href", "src", "action", "xlink:href", "formaction")]
    assert all(v.startswith(("#", BASE + "/")) for v in hrefs), hrefs
    assert not set(html) & set(INVISIBLE + CONTROLS.replace("\n", ""))
    assert page.sections == SECTIONS
    return page


def test_a_hostile_text_everywhere_shows_as_text_and_nothing_else():
    days = 7
    html = render_html(sample_report(days, HOSTILE))
    page = assert_inert(html, render_html(sample_report(days, "x")))
    assert html.count("<script") == 0 and "<img" not in html
    # the title shows, readable and cleaned: the markup as text, the bidi override and controls gone
    shown = clean(HOSTILE)
    assert shown == ("<script>alert(1)</script><img src=x onerror=alert(2)>evil \"' onmouseover=alert(3) "
                     "javascript:alert(4)")
    assert "Add a greeting" + shown[:100] in page.content
    assert "javascript:alert(4)" in page.content
    # the journal lines left out: counted and said why, only in the page's own words
    assert "3 journal lines ignored: 2 unreadable, 1 not signed by their agent" in page.content
    assert "ignored" not in render_html({**sample_report(days), "ignored_journal_lines": 0})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([*"<>&\"'=/ ;:`\\\u202e\u2066\u200f\x1b\x00\x9b\r\n\t\u2028a1é\ud800",
                                 "<script>", "</section>", "-->", "<!--", "javascript:", "&amp;", "<svg onload=x>",
                                 "]]>"]), max_size=20).map("".join))
def test_any_text_leaves_the_structure_alone(text):
    html = render_html(sample_report(3, text))
    assert_inert(html, render_html(sample_report(3, "x")))
    html.encode("utf-8")  # no lone surrogate reached the page


@pytest.mark.parametrize("days", [1, 7, 30])
def test_every_chart_has_one_point_per_day_in_order(days):
    document = sample_report(days, agents=("ada", "bob", "cy"))
    page = Page(render_html(document))
    # throughput: fleet and each agent; budgets: tasks, minutes and cost for the fleet and each agent
    assert len(page.charts) == 1 + 3 + 3 * (1 + 3)
    assert all(points == document["throughput"]["dates"] for points in page.charts)


def test_a_chart_shows_its_values_and_the_cap():
    document = sample_report(4)
    document["budget"]["fleet"]["tasks"] = [1, 0, 7, 2]
    html = render_html(document)
    chart = html.split("Fleet · tasks", 1)[1].split("</svg>", 1)[0]
    values = [part.split('"', 1)[0] for part in chart.split('data-value="')[1:]]
    assert values == ["1", "0", "7", "2"]
    assert chart.count('class="cap"') == 1  # the fleet's cap of 30 tasks a day


def test_a_cap_per_week_draws_no_line_on_charts_per_day():
    document = sample_report(4)
    document["budget"]["current"]["window"] = {"kind": "week", "label": "week of 2026-11-23"}
    html = render_html(document)
    assert 'class="cap"' not in html and "Caps count per week" in html


def test_links_come_only_from_the_forge_web_url():
    document = sample_report(3)
    card = document["board"]["eligible"][0]
    card["url"] = "javascript:alert(1)//" + BASE + "/issues/1"
    document["board"]["review"][0]["pr_url"] = "https://evil.example/org/repo/pulls/9"
    document["pulls"][0]["url"] = BASE + "/pulls/9\" onclick=\"x"
    page = Page(render_html(document))
    hrefs = [v for _, name, v in page.attrs if name == "href" and not v.startswith("#")]
    assert BASE + "/issues/1" in hrefs and BASE + "/pulls/9" in hrefs  # built from web_url instead
    assert all(h.startswith(BASE + "/") and '"' not in h for h in hrefs)
    assert not any("evil" in h or "javascript" in h for h in hrefs)


def test_a_github_forge_links_pull_requests_its_way():
    document = sample_report(3)
    document["forge"] = {"kind": "github", "web_url": "https://github.com/org/repo"}
    document["pulls"][0]["url"] = None
    html = render_html(document)
    assert 'href="https://github.com/org/repo/pull/9"' in html


def test_the_local_forge_has_no_links_but_the_page_own():
    html = render_html(sample_report(3, web_url=None))
    page = Page(html)
    assert {v for _, name, v in page.attrs if name == "href"} == {f"#{s}" for s in SECTIONS}
    assert "#5" in page.content and "PR #9" in page.content


def test_the_page_loads_nothing_and_runs_nothing():
    html = render_html(sample_report(3))
    head = html.split("</head>", 1)[0]
    assert ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
            "img-src data:;") in head
    assert "<script" not in html and "<link" not in html
    css = stylesheet()
    assert "url(" not in css and "@import" not in css and "prefers-color-scheme: dark" in css


@pytest.mark.parametrize("document", [
    {}, {"schema": "agentmesh-report/1"}, {"agents": None, "board": [], "pulls": "x", "throughput": {"dates": 3},
                                           "budget": {"dates": ["2026-11-27"], "fleet": {"tasks": ["a", None]}},
                                           "incidents": [None, 1, {"at": 5}], "latency": {"claim_to_pr": []}},
], ids=["empty", "schema-only", "wrong-types"])
def test_missing_or_malformed_parts_show_as_no_data(document):
    page = Page(render_html(document))
    assert page.sections == SECTIONS
    assert "no data" in page.content


def test_huge_figures_draw_a_page_with_the_other_days_on_it():
    # each finite, but their sum (or the axis above one) was inf: an OverflowError instead of a page
    document = sample_report(2)
    document["throughput"]["fleet"] = {"completed": [1e308, 1], "failed": [1e308, 1], "reworked": [1.7e308, 0]}
    document["budget"]["fleet"]["cost_usd"] = [1.7e308, 0.5]
    page = Page(render_html(document))
    assert page.sections == SECTIONS
    assert "inf" not in page.content.lower().replace("info", "")


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
KEYS = list(sample_report(2))


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from([*KEYS, "extra"]), JSON, max_size=4))
def test_any_value_in_any_field_renders_a_page(changes):
    document = {**sample_report(2), **changes}
    page = Page(render_html(document))
    assert page.sections == SECTIONS


@pytest.mark.parametrize(("url", "base", "expected"), [
    (BASE + "/issues/3", BASE, BASE + "/issues/3"),
    (BASE + "/issues/3", BASE + "/", BASE + "/issues/3"),
    ("http://forge.example:3000/o/r/pulls/2", "http://forge.example:3000/o/r", "http://forge.example:3000/o/r/pulls/2"),
    ("javascript:alert(1)", BASE, None),
    ("JAVASCRIPT:alert(1)", BASE, None),
    ("data:text/html,<script>", BASE, None),
    (" " + BASE + "/issues/3", BASE, None),
    (BASE + "/issues/3\"onclick=x", BASE, None),
    (BASE + "/issues/<b>", BASE, None),
    (BASE + "/../../evil", BASE, None),
    # a browser reads %2e%2e as `..`: these resolve to another repository of the forge
    (BASE + "/%2e%2e/%2E%2E/evil/repo", BASE, None),
    (BASE + "/.%2e/.%2e/evil/repo", BASE, None),
    (BASE + "/%2e./%2e./evil/repo", BASE, None),
    ("https://forge.example.evil/org/repo/issues/3", "https://forge.example", None),
    ("https://evil.example/issues/3", BASE, None),
    (BASE, BASE, None),
    (BASE + "/issues/3", None, None),
    (BASE + "/issues/3", "javascript:x", None),
    (3, BASE, None),
])
def test_link_url(url, base, expected):
    assert link_url(url, base) == expected


def test_http_url_takes_only_plain_http_urls():
    assert http_url("https://forge.example/a?b=c#d") == "https://forge.example/a?b=c#d"
    assert [http_url(u) for u in ("ftp://x/y", "https:/x", "https://", "https://a b/", "//x/y", None)] == [None] * 6


def test_markup_is_made_only_by_the_builder():
    assert escape("<b>&\"'") == "&lt;b&gt;&amp;&quot;&#x27;"
    assert el("p", {"class": "a\"b", "hidden": True, "title": None}, "<i>", el("i", None, "x")) == \
        '<p class="a&quot;b" hidden>&lt;i&gt;<i>x</i></p>'
    assert void("rect", {"x": 1}) == '<rect x="1"/>'
    assert el("b", {"title": Markup("<x>")}) == '<b title="&lt;x&gt;"></b>'  # an attribute is never markup
    for tag, attrs in (("script", {}), ("a", {"onclick": "x"}), ("a", {"ONload": "x"}), ("a b", {}),
                       ("a", {"x y": "1"}), ("style", {})):
        with pytest.raises(ValueError):
            el(tag, attrs)


def test_clean_folds_caps_and_strips():
    assert clean("a\u202eb\x1b[31mc\n\td  e\x00") == "abc d e"
    assert clean("x" * 300, 10) == "x" * 9 + "…"
    assert clean(None) == "" and clean(12) == "12"


@pytest.mark.parametrize("invisible", ["\u17b4", "\u17b5", "\U0001d173", "\U0001d17a", "\U0001bca0", "\U0001bca3"])
def test_clean_removes_invisible_format_characters_that_could_pad_a_name(invisible):
    # default-ignorable: shown as nothing, so "ada" and "a<it>da" would look the same
    assert clean(f"a{invisible}da") == "ada"


@pytest.mark.parametrize(("value", "top"), [(0, 1), (0.3, 0.5), (1, 1), (7, 10), (12, 20), (24, 25), (30, 50),
                                            (101, 200)])
def test_nice_top(value, top):
    assert nice_top(value) == pytest.approx(top)


@pytest.mark.parametrize(("value", "top"), [(0, 2), (1, 2), (3, 4), (5, 10), (10, 10), (11, 20), (39, 40), (41, 100)])
def test_nice_top_of_counts_has_a_whole_middle(value, top):
    assert nice_top(value, counts=True) == top


def test_long_lists_are_cut_with_a_count_of_the_rest():
    document = sample_report(2)
    document["board"]["eligible"] = [{"issue": n, "title": f"task {n}"} for n in range(1, 31)]
    document["incidents"] = [{"at": f"2026-11-27T07:{n // 60:02d}:{n % 60:02d}Z", "kind": "reap", "reason": str(n)}
                             for n in range(250)]
    page = Page(render_html(document))
    assert "task 12" in page.content and "task 13" not in page.content and "and 18 more" in page.content
    assert "and 50 more" in page.content and "07:04:09Z" in page.content  # the newest 200 incidents
    assert "07:00:49Z" not in page.content
