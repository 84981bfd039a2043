"""A forge answering garbage or errors: one-line typed errors, right exit codes, no token anywhere."""

from __future__ import annotations

import logging

import pytest
import requests

from agentmesh.core.errors import ConfigError
from agentmesh.forge.base import Exists, Forbidden, NotFound, RateLimited, Unavailable
from agentmesh.forge.gitea import GiteaForge
from agentmesh.forge.github import GitHubForge
from tests.contract.spec import ENV, GITEA_URL, GITHUB_URL, TOKEN, bare

KINDS = ["gitea", "github"]


def assert_clean(exc: BaseException, forge, caplog) -> None:
    text = str(exc)
    assert "\n" not in text and text.strip() == text
    seen = [text, repr(exc), repr(forge), str(forge), repr(forge.http), caplog.text]
    seen += [str(r.args) for r in caplog.records]
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        seen.append(repr(cause))
        cause = cause.__cause__ or cause.__context__
    assert not [s for s in seen if TOKEN in s]


CASES = [
    # status, body, content type, error, exit code, words the message must hold
    (200, "<html><body>Sign in</body></html>", "text/html", Unavailable, 75, ["non-JSON", "text/html"]),
    (200, '{"truncated": ', "application/json", Unavailable, 75, ["non-JSON"]),
    (500, '{"message": "internal error"}', "application/json", Unavailable, 75, ["HTTP 500", "internal error"]),
    (502, "<html>Bad Gateway</html>", "text/html", Unavailable, 75, ["HTTP 502", "HTML"]),
    (401, '{"message": "Bad credentials"}', "application/json", Forbidden, 1, ["HTTP 401", f"${ENV}"]),
    (403, '{"message": "Resource not accessible by integration"}', "application/json", Forbidden, 1,
     ["HTTP 403", "not accessible"]),
    (404, '{"message": "Not Found"}', "application/json", NotFound, 1, ["HTTP 404"]),
    (429, '{"message": "slow down"}', "application/json", RateLimited, 75, ["HTTP 429", "rate limited"]),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status, body, ctype, error, code, words", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_error_answers_map_to_one_line_typed_errors(kind, status, body, ctype, error, code, words, caplog):
    caplog.set_level(logging.DEBUG)
    with bare(kind) as (forge, mock, api):
        headers = {"Retry-After": "0"} if status == 429 else {}
        mock.add("GET", api + "/repos/mesh/work/pulls", status=status, body=body, content_type=ctype, headers=headers)
        with pytest.raises(error) as info:
            forge.list_pulls()
    exc = info.value
    assert exc.exit_code == code
    assert "GET" in str(exc) and "/repos/mesh/work/pulls" in str(exc)
    for word in words:
        assert word in str(exc)
    assert_clean(exc, forge, caplog)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("failure, words", [
    (requests.ConnectionError("connection refused"), ["connection failed"]),
    (requests.ReadTimeout("read timed out"), ["timed out"]),
])
def test_network_failures_are_unavailable(kind, failure, words, caplog):
    caplog.set_level(logging.DEBUG)
    with bare(kind) as (forge, mock, api):
        mock.add("GET", api + "/user", body=failure)
        with pytest.raises(Unavailable) as info:
            forge.current_user()
        assert len(mock.calls) == 3  # GET is retried twice
    assert info.value.exit_code == 75
    assert all(w in str(info.value) for w in words) and "GET" in str(info.value)
    assert_clean(info.value, forge, caplog)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_token_names_the_variable(kind, caplog):
    with bare(kind, token=None) as (forge, mock, api):
        mock.add("GET", api + "/user", status=401, json={"message": "Unauthorized"})
        with pytest.raises(Forbidden, match=rf"no token; set \${ENV}"):
            forge.current_user()
        assert "Authorization" not in mock.calls[0].request.headers


@pytest.mark.parametrize("kind", KINDS)
def test_a_forge_echoing_the_token_is_redacted(kind, caplog):
    caplog.set_level(logging.DEBUG)
    with bare(kind) as (forge, mock, api):
        mock.add("GET", api + "/user", status=403, json={"message": f"token {TOKEN} lacks scope read:user"})
        with pytest.raises(Forbidden) as info:
            forge.current_user()
    assert "***" in str(info.value)
    assert_clean(info.value, forge, caplog)


@pytest.mark.parametrize("kind", KINDS)
def test_token_whitespace(kind, caplog):
    caplog.set_level(logging.DEBUG)
    with bare(kind, token=TOKEN + "\n") as (forge, mock, api):  # as read from a file: trimmed
        mock.add("GET", api + "/user", json={"login": "x"})
        assert forge.current_user() == "x"
        assert mock.calls[0].request.headers["Authorization"].endswith(" " + TOKEN)
    with pytest.raises(ConfigError, match=rf"\${ENV}") as info:  # never reaches requests, which would quote it
        bare(kind, token=TOKEN[:4] + "\r\n" + TOKEN[4:]).__enter__()
    assert_clean(info.value, forge, caplog)


@pytest.mark.parametrize("kind", KINDS)
def test_duplicate_label_is_exists_and_a_lost_race_is_adopted(kind):
    status = 409 if kind == "gitea" else 422
    exists = {"message": "Validation Failed", "errors": [{"resource": "Label", "code": "already_exists"}]}
    with bare(kind) as (forge, mock, api):
        labels = api + "/repos/mesh/work/labels"
        mock.add("POST", labels, status=status, json=exists)
        with pytest.raises(Exists) as info:
            forge.http.request("POST", forge.repo_path + "/labels", json_body={"name": "x", "color": "ededed"})
        assert info.value.exit_code == 1 and f"HTTP {status}" in str(info.value)

        # another agent created the label between our listing and our creation
        mock.add("GET", labels, json=[])
        mock.add("POST", labels, status=status, json=exists)
        mock.add("GET", labels, json=[{"id": 7, "name": "x", "color": "ededed"}])
        mock.add("POST", api + "/repos/mesh/work/issues/5/labels", json=[])
        forge.add_labels(5, ["x"])
        assert mock.calls[-1].request.body == (b'{"labels": [7]}' if kind == "gitea" else b'{"labels": ["x"]}')


def test_reprs_name_the_variable_not_the_token():
    gitea = GiteaForge(GITEA_URL, "mesh/work", TOKEN, token_env=ENV)
    github = GitHubForge(GITHUB_URL, "mesh/work", TOKEN, token_env=ENV)
    for obj in (gitea, github, gitea.http, github.http):
        assert TOKEN not in repr(obj) and ENV in repr(obj)
    assert TOKEN not in repr(vars(gitea))  # the transport holds it privately and its repr hides it


@pytest.mark.parametrize("kind", KINDS)
def test_json_of_the_wrong_shape_is_unavailable(kind):
    with bare(kind) as (forge, mock, api):
        mock.add("GET", api + "/repos/mesh/work/pulls", json={"message": "not a list"})
        mock.add("GET", api + "/repos/mesh/work/issues/3", json={"title": "no number"})
        with pytest.raises(Unavailable, match=r"GET /.*/pulls: expected a JSON list, got dict"):
            forge.list_pulls()
        with pytest.raises(Unavailable, match="malformed issue") as info:
            forge.get_issue(3)
    assert info.value.exit_code == 75 and "\n" not in str(info.value)
