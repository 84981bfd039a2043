"""The shared HTTP layer: which failures are retried, and how long it waits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from agentmesh.forge.base import RateLimited, Unavailable
from agentmesh.forge.http import EtagCache, Rejected
from tests.contract.spec import bare


@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_retry_after_as_an_http_date(kind):
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=10), usegmt=True)
    with bare(kind) as (forge, mock, api):
        mock.add("GET", api + "/user", status=429, json={"message": "slow down"}, headers={"Retry-After": later})
        with pytest.raises(RateLimited) as info:
            forge.current_user()
        assert len(mock.calls) == 1  # 10 minutes is past the wait this tick accepts
    assert 500 < info.value.retry_after <= 600


def test_put_is_retried_after_a_5xx():
    with bare("github") as (forge, mock, api):
        url = api + "/repos/mesh/work/pulls/7/merge"
        mock.add("PUT", url, status=502, body="<html>bad gateway</html>", content_type="text/html")
        mock.add("PUT", url, json={"merged": True, "sha": "b" * 40})
        forge.merge_pull(7, sha="a" * 40)
        assert [c.response.status_code for c in mock.calls] == [502, 200]


def test_patch_is_retried_only_where_marked_idempotent():
    with bare("gitea") as (forge, mock, api):
        url = api + "/repos/mesh/work/issues/7"
        mock.add("PATCH", url, status=503, json={"message": "busy"})
        mock.add("PATCH", url, status=201, json={"number": 7, "title": "t", "state": "closed"})
        forge.close_issue(7)  # closing is safe to replay
        assert len(mock.calls) == 2
        mock.add("PATCH", url, status=503, json={"message": "busy"})
        with pytest.raises(Unavailable):
            forge.http.request("PATCH", forge.repo_path + "/issues/7", json_body={"title": "x"})
        assert len(mock.calls) == 3


@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_a_422_that_is_not_exists_is_rejected(kind):
    with bare(kind) as (forge, mock, api):
        mock.add("POST", api + "/repos/mesh/work/pulls", status=422,
                 json={"message": "Validation Failed", "errors": [{"message": "No commits between main and x"}]})
        with pytest.raises(Rejected, match="No commits between") as info:
            forge.create_pull(head="x", base="main", title="t")
    assert info.value.exit_code == 1


def test_a_damaged_etag_cache_entry_is_a_miss(tmp_path):
    # a 304 is answered from the entry: one without its link (or with any other shape) must be a miss, not a
    # KeyError when the forge says "not modified"
    cache, url = EtagCache(tmp_path), "https://forge.example/api/v1/repos/o/r/issues"
    cache.put(url, '"e1"', "[]", "")
    assert cache.get(url) == {"url": url, "etag": '"e1"', "body": "[]", "link": ""}
    path = next(tmp_path.iterdir())
    for damaged in ({"url": url, "etag": '"e1"', "body": "[]"}, {"url": url, "etag": 1, "body": "[]", "link": ""},
                    {"url": url, "etag": '"e1"', "body": "[]", "link": None}, [url], "x"):
        path.write_text(json.dumps(damaged))
        assert cache.get(url) is None
