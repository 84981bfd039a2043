"""Dates written by others (core/moments.py): journal stamps, local-forge items, the Gitea issue cache and the
forge's Date header. Any text is no moment or an aware UTC one, and never an exception in its reader."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from agentmesh.core.moments import parse_ts
from agentmesh.forge.http import utc_iso
from agentmesh.forge.issue_cache import IssueCache, IssueSnapshot

HOSTILE = ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
           "0001-01-01T00:00:05Z", "9999-12-31T23:59:59Z", "1e20", "NaN", "nan", "inf", "-1", "",
           "2026-11-22T10:00:00", "2026-13-01T00:00:00Z", "\x00", "99999-01-01T00:00:00Z"]
# any moment datetime can write, at any offset a forge or a hand could give it: the ends overflow in UTC
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
WRITTEN = st.builds(lambda moment, zone: moment.replace(tzinfo=zone).isoformat(),
                    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)), OFFSETS)
STAMPS = st.one_of(st.sampled_from(HOSTILE), WRITTEN, st.text(max_size=40),
                   st.floats(allow_nan=True, allow_infinity=True).map(str))
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(STAMPS)
def test_a_stamp_is_an_aware_utc_moment_or_none(stamp):
    moment = parse_ts(stamp)
    assert moment is None or moment.utcoffset() == timedelta(0)
    if moment is not None:
        assert isinstance(moment < NOW, bool)  # comparable with the reader's own aware moments
        utc_iso(moment)


def test_out_of_range_stamps_are_none_and_a_stamp_without_an_offset_is_utc():
    assert [parse_ts(s) for s in ("0000-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                                  "1e20", "NaN")] == [None] * 5
    assert parse_ts("2026-11-22T10:00:00") == NOW == parse_ts("2026-11-22T12:00:00+02:00")


@settings(max_examples=300, deadline=None)
@given(polled=STAMPS, updated=st.lists(STAMPS, max_size=3), served=st.one_of(st.none(), WRITTEN.map(parse_ts)))
def test_the_issue_cache_takes_any_dates_without_a_crash(polled, updated, served):
    # `polled` comes from the cache file (anything a disk or a hand left), `updated` from the forge's items,
    # `served` from its Date header: whatever they say, the next poll starts at a date the forge can be sent
    snapshot = IssueSnapshot(0.0, polled, {})
    items = [{"number": n, "state": "open", "updated_at": stamp} for n, stamp in enumerate(updated, start=1)]
    for full_at in (None, 1.0):
        fresh = snapshot.merged(items, served=served, full_at=full_at)
        since = fresh.since()
        if since is not None:
            utc_iso(since)
        assert fresh.stale(2.0) or since is not None
    since = snapshot.since()
    if since is not None:
        utc_iso(since)


def test_a_cache_file_polled_at_the_ends_of_time_reads_everything_again(tmp_path):
    cache = IssueCache(tmp_path, "k")
    for polled in ("0001-01-01T00:00:05+00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        cache.path.write_text(json.dumps({"key": "k", "full_at": 1e20, "polled": polled, "issues": {}}))
        snapshot = cache.load()
        assert snapshot.since() is None and snapshot.stale(NOW.timestamp())  # a full read, not a crash
    for full_at in (float("nan"), float("inf"), float("-inf"), 1e20):  # when the last full read was: any number
        cache.path.write_text(json.dumps({"key": "k", "full_at": full_at, "polled": "2026-11-22T09:00:00Z",
                                          "issues": {}}))
        assert cache.load().stale(NOW.timestamp())
