"""Secret scanning and redaction of text and diffs.

Fake tokens are assembled at run time so this file itself holds nothing a
push-protection scanner would stop.
"""

import base64
import contextlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmesh.core.secrets import (
    REDACTED,
    Finding,
    added_lines,
    is_placeholder,
    redact,
    scan,
    scan_diff,
    shannon_entropy,
)

ALNUM36 = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
GHP = "ghp" + "_" + ALNUM36
FINE_GRAINED = (
    "github" + "_pat_" + "11ABCDEFG0a1B2c3D4e5F6g7_"
    + "H8i9J0k1L2m3N4o5P6q7R8s9T0u1V2w3X4y5Z6a7B8c9D0e1F2g3H4i5J6k7L8m9N0"
)
GLPAT = "glpat" + "-" + "xY9zA8bC7dE6fG5hI4jK"
HEX40 = "0f1e2d3c4b5a69788796a5b4c3d2e1f00a1b2c3d"
AWS_ID = "AKIA" + "Q3EGRTYUIOPLKJHG"
AWS_SECRET = "Zq8+Wm3/Rt5Yp7Lk9Jh2Gf4Ds6Aa1Ss3Dd5Ff7Gg"
SLACK = "xoxb" + "-" + "1234567890-0987654321-AbCdEfGhIjKlMnOp"
PRIVATE_KEY = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nQ2x9\n-----END RSA " + "PRIVATE KEY-----"
OPENSSH_KEY = "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3Blbn"
RANDOM = "Zx9kQ2mP7vL4nR8wT3"
ANTHROPIC = "sk-ant-" + "api03-" + "Zx9kQ2mP7vL4nR8wT3_b5Hj1Kd6Fs0Ga2Lp4Qw8Er7Ty-AA"
OPENAI = "sk-" + "proj-" + "Zx9kQ2mP7vL4nR8wT3b5Hj1Kd6Fs0Ga2Lp4Qw8Er7Ty"


def rules(text, **kwargs):
    return [f.rule for f in scan(text, **kwargs)]


# Each rule: (rule, positive text, secret, negative text).
CASES = [
    ("github-token", f"token: {GHP}", GHP, "ghp" + "_" + "tooshort123"),
    ("github-token", f"GH={'ghs' + '_' + ALNUM36}", "ghs" + "_" + ALNUM36, "ghx" + "_" + ALNUM36),
    ("github-fine-grained-token", f"export GH_PAT={FINE_GRAINED}", FINE_GRAINED, "github" + "_pat_short"),
    ("gitlab-token", f"GITLAB={GLPAT}", GLPAT, "glpat" + "-short"),
    ("gitea-token", f"token = {HEX40}", HEX40, f"commit = {HEX40}"),
    ("gitea-token", f"Authorization: token {HEX40}", HEX40, f"sha: {HEX40}"),
    ("gitea-token", f'GITEA_TOKEN="{HEX40}"', HEX40, "token = " + "0" * 40),
    ("aws-access-key-id", f"key id {AWS_ID}", AWS_ID, "AKIA" + "IOSFODNN7EXAMPLE"),
    ("aws-access-key-id", f"{'ASIA' + 'Q3EGRTYUIOPLKJHX'}", "ASIA" + "Q3EGRTYUIOPLKJHX", "AKIA" + "lowercase1234567"),
    ("aws-secret-access-key", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, f"some_value = {AWS_SECRET}"),
    ("aws-secret-access-key", f'"SecretAccessKey": "{AWS_SECRET}"', AWS_SECRET,
     "aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}"),
    ("anthropic-api-key", f"export ANTHROPIC_API_KEY={ANTHROPIC}", ANTHROPIC, "sk-" + "ant-api03-short"),
    ("openai-api-key", f"Using key {OPENAI} now", OPENAI, "sk-" + "learn-classification-tutorial-notes"),
    ("slack-token", f"SLACK={SLACK}", SLACK, "xoxq" + "-1234567890-abcdef"),
    ("private-key", f"key:\n{PRIVATE_KEY}\nafter", PRIVATE_KEY,
     "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"),
    ("private-key", OPENSSH_KEY, OPENSSH_KEY, "-----BEGIN CERTIFICATE-----\nMIIC"),
    ("generic-secret", f'password = "{RANDOM}"', RANDOM, 'password = "changeme-changeme-1"'),
    ("generic-secret", f"DB_PASSWORD={RANDOM}", RANDOM, "DB_PASSWORD=${DB_PASSWORD_FROM_ENV}"),
    ("generic-secret", f'"api_key": "{RANDOM}",', RANDOM, '"api_key": "<your-api-key-here>",'),
    ("generic-secret", f"client_secret: '{RANDOM}'", RANDOM, "client_secret: 'xxxxxxxxxxxxxxxxxxxx'"),
    ("generic-secret", f"apikey := `{RANDOM}`", RANDOM, "apikey = get_api_key_from_vault()"),
    ("generic-secret", f"access_key => {RANDOM}", RANDOM, "access_key = short1A"),
    ("generic-secret", f"secret: {RANDOM}", RANDOM, "secret: {{ vault_secret_value_1 }}"),
    ("generic-secret", f"TOKEN={RANDOM}", RANDOM, "tokenizer = AutoTokenizer.from_pretrained(model_name)"),
    ("generic-secret", f"passwd={RANDOM}", RANDOM, "password = 'correcthorsebatterystaple'"),
]


@pytest.mark.parametrize(("rule", "text", "secret", "negative"), CASES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(CASES)])
def test_rule_positive_and_negative(rule, text, secret, negative):
    found = scan(text)
    assert [f.rule for f in found] == [rule]
    assert secret not in found[0].excerpt and secret[:4] + "…" in found[0].excerpt
    assert secret not in redact(text) and REDACTED in redact(text)
    assert scan(negative) == []
    assert redact(negative) == negative


def test_known_secrets_are_found_verbatim_and_short_ones_ignored():
    text = "line one\nthe host token is s3cret-value-of-any-shape here\nshort abc123 here"
    found = scan(text, known_secrets=["s3cret-value-of-any-shape", "abc123", ""])
    assert found == [Finding("known-secret", 2, "the host token is s3cr… here")]
    assert redact(text, known_secrets=["s3cret-value-of-any-shape", "abc123"]) == (
        "line one\nthe host token is [REDACTED] here\nshort abc123 here"
    )


def test_a_known_secret_wins_over_a_format_rule():
    assert rules(f"x {GHP}", known_secrets=[GHP]) == ["known-secret"]


def test_finding_lines_and_multiple_secrets_on_one_line_are_all_masked():
    text = f"first\nsecond\na={GHP} b={SLACK}\n"
    found = scan(text)
    assert [(f.rule, f.line) for f in found] == [("github-token", 3), ("slack-token", 3)]
    for finding in found:
        assert GHP not in finding.excerpt and SLACK not in finding.excerpt
    assert found[0].excerpt == "a=ghp_… b=xoxb…"


def test_excerpts_of_long_lines_are_clipped_around_the_secret():
    text = "x" * 5000 + f" token={GHP} " + "y" * 5000
    (finding,) = scan(text)
    assert len(finding.excerpt) <= 120 and "ghp_…" in finding.excerpt


def test_private_key_block_is_redacted_whole_and_unterminated_to_the_end():
    assert redact(f"a\n{PRIVATE_KEY}\nb") == f"a\n{REDACTED}\nb"
    assert redact("a\n-----BEGIN EC " + "PRIVATE KEY-----\nMHcC\nmore") == f"a\n{REDACTED}"


def test_entropy_and_placeholders():
    assert shannon_entropy("") == 0.0 and shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)
    for value in ["changeme", "${TOKEN}", "<token>", "{{ secret }}", "x" * 16, "your-token-here", "EXAMPLEKEY"]:
        assert is_placeholder(value), value
    assert not is_placeholder(RANDOM)


def test_redact_merges_overlapping_findings():
    text = f'token = "{GHP}"'
    assert redact(text, known_secrets=[GHP[:20]]) == 'token = "[REDACTED]"'


def test_hostile_input_stays_fast():
    text = ("token" + " " * 10_000 + "password" * 10_000 + "password=" * 10_000 + "token: " + " " * 10_000
            + "a" * 100_000 + "-----BEGIN X PRIVATE KEY-----" * 3) * 3
    scan(text)
    redact(text, known_secrets=["a" * 10])


def test_many_secrets_on_one_long_line_stay_fast_and_masked():
    line = f"k=hunter2-hunter2 t={GHP} " * 5000
    found = scan(line, known_secrets=["hunter2-hunter2"])
    assert len(found) == 10_000 and {f.line for f in found} == {1}
    assert all("hunter2-hunter2" not in f.excerpt and GHP not in f.excerpt for f in found)
    assert all(len(f.excerpt) <= 120 for f in found)


# --- diffs ------------------------------------------------------------------------


DIFF = f"""diff --git a/app/settings.py b/app/settings.py
index 1111111..2222222 100644
--- a/app/settings.py
+++ b/app/settings.py
@@ -10,4 +10,6 @@ import os
 DEBUG = False
-OLD = "{GHP}"
+NEW = 1
+++ an added line that looks like a header
+GITHUB_TOKEN = "{FINE_GRAINED}"
 LOG = "info"
 END = True
diff --git a/docs/notes.md b/docs/notes.md
new file mode 100644
--- /dev/null
+++ b/docs/notes.md
@@ -0,0 +1,2 @@
+Notes
+slack: {SLACK}
\\ No newline at end of file
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-{AWS_ID}
"""


def test_planted_fine_grained_pat_in_a_diff_is_found_with_path_and_line_and_masked():
    findings = scan_diff(DIFF)
    assert [(f.rule, f.path, f.line) for f in findings] == [
        ("github-fine-grained-token", "app/settings.py", 13),
        ("slack-token", "docs/notes.md", 2),
    ]
    assert FINE_GRAINED not in findings[0].excerpt
    assert findings[0].excerpt == 'GITHUB_TOKEN = "gith…"'


def test_removed_lines_and_context_are_not_scanned():
    assert all(f.rule != "github-token" for f in scan_diff(DIFF))  # GHP only on a removed line
    assert all(f.rule != "aws-access-key-id" for f in scan_diff(DIFF))  # deleted file


def test_added_lines_tracks_new_file_line_numbers():
    lines = added_lines(DIFF)
    assert lines["app/settings.py"] == [
        (11, "NEW = 1"), (12, "++ an added line that looks like a header"), (13, f'GITHUB_TOKEN = "{FINE_GRAINED}"'),
    ]
    assert lines["docs/notes.md"] == [(1, "Notes"), (2, f"slack: {SLACK}")]
    assert "gone.txt" not in lines and "/dev/null" not in lines


def test_diff_with_known_secret_and_quoted_path():
    diff = '--- "a/odd name.txt"\n+++ "b/odd name.txt"\n@@ -1 +1,2 @@\n keep\n+the value hunter2-hunter2 leaked\n'
    assert scan_diff(diff, known_secrets=["hunter2-hunter2"]) == [
        Finding("known-secret", 2, "the value hun… leaked", "odd name.txt"),
    ]


def test_private_key_added_over_several_lines_of_a_diff():
    body = "".join(f"+{line}\n" for line in PRIVATE_KEY.split("\n"))
    diff = f"--- a/k\n+++ b/k\n@@ -0,0 +1,{len(PRIVATE_KEY.splitlines())} @@\n{body}"
    assert [(f.rule, f.path, f.line) for f in scan_diff(diff)] == [("private-key", "k", 1)]


# --- properties -------------------------------------------------------------------


SECRETS = st.text(min_size=8, max_size=40)


@given(st.text(max_size=2000), st.lists(SECRETS, max_size=3))
def test_scan_and_scan_diff_never_raise(text, known):
    for finding in scan(text, known_secrets=known):
        assert finding.line >= 1
        assert not any(secret in finding.excerpt for secret in known)
    scan_diff(text, known_secrets=known)


@given(st.text(max_size=500), st.lists(SECRETS, min_size=1, max_size=3), st.data())
def test_redact_never_leaves_a_known_secret(text, known, data):
    planted = text
    for secret in known:
        at = data.draw(st.integers(0, len(planted)))
        planted = planted[:at] + secret + planted[at:]
    out = redact(planted, known_secrets=known)
    assert not any(secret in out for secret in known)


@given(st.sampled_from([GHP, FINE_GRAINED, GLPAT, AWS_ID, SLACK]), st.text(max_size=200), st.text(max_size=200))
def test_format_secrets_are_redacted_anywhere(secret, before, after):
    out = redact(f"{before} {secret} {after}")
    assert secret not in out


# --- known secrets in other encodings -------------------------------------------------

TOKEN_CHARS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=8,
                      max_size=48)
_B64_RUN = re.compile(r"[A-Za-z0-9+/=_-]+")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]+")


def recoverable(text: str) -> list[bytes]:
    """Everything an attacker could decode from a posted text: the text itself reversed and with its
    whitespace taken out, and every base64 or hex run in it at every alignment."""
    squeezed = "".join(text.split())
    found = [text.encode(), text[::-1].encode(), squeezed.encode(), squeezed[::-1].encode()]
    for run in _B64_RUN.findall(squeezed):
        for shift in range(4):
            part = run[shift:].rstrip("=")
            part = part[:len(part) - len(part) % 4]
            for alt in (b"+/", b"-_"):
                with contextlib.suppress(ValueError):
                    found.append(base64.b64decode(part.encode(), altchars=alt))
    for run in _HEX_RUN.findall(squeezed):
        for shift in range(2):
            part = run[shift:]
            found.append(bytes.fromhex(part[:len(part) - len(part) % 2]))
    return found


ENCODINGS = {
    "base64": lambda data: base64.b64encode(data).decode(),
    "base64-wrapped": lambda data: base64.encodebytes(data).decode(),  # what `base64 FILE` prints: 76 a line
    "base64-urlsafe-unpadded": lambda data: base64.urlsafe_b64encode(data).decode().rstrip("="),
    "hex": lambda data: data.hex(),
    "HEX": lambda data: data.hex().upper(),
    "hex-spaced": lambda data: " ".join(f"{b:02x}" for b in data),
    "reversed": lambda data: data.decode()[::-1],
    "spaced": lambda data: " ".join(data.decode()),
    "one-per-line": lambda data: "\n".join(data.decode()),
    "base64-spaced": lambda data: " ".join(base64.b64encode(data).decode()),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("offset", [0, 1, 2])
def test_a_known_secret_is_redacted_in_every_encoding_at_every_offset(encoding, offset):
    secret = "ghp" + "_" + ALNUM36
    data = b"#" * offset + f"AGENTMESH_TOKEN={secret}\nOTHER=value\n".encode()
    out = redact(f"check failed:\n{ENCODINGS[encoding](data)}\nexit 1", known_secrets=[secret])
    assert REDACTED in out and out.startswith("check failed:") and out.endswith("exit 1")
    assert not any(secret.encode() in decoded for decoded in recoverable(out))
    assert [f.rule for f in scan(ENCODINGS[encoding](data), known_secrets=[secret])] == ["known-secret"]


@settings(deadline=None)
@given(TOKEN_CHARS, st.binary(max_size=40), st.binary(max_size=40), st.sampled_from(sorted(ENCODINGS)))
def test_no_encoded_copy_of_a_known_secret_survives_redaction(secret, before, after, encoding):
    # any bytes around it; as text (for the encodings that print text) each byte one character
    data = (before.decode("latin-1") + secret + after.decode("latin-1")).encode()
    out = redact(ENCODINGS[encoding](data), known_secrets=[secret])
    assert not any(secret.encode() in decoded for decoded in recoverable(out))


@settings(deadline=None)
@given(st.text(max_size=300), SECRETS.filter(lambda s: len("".join(s.split())) >= 8),  # shorter: found verbatim only
       st.sampled_from(["base64", "hex", "reversed", "spaced"]), st.data())
def test_redact_never_leaves_a_known_secret_in_any_form(text, secret, encoding, data):
    form = {"base64": lambda s: base64.b64encode(s.encode()).decode(), "hex": lambda s: s.encode().hex(),
            "reversed": lambda s: s[::-1], "spaced": " ".join}[encoding](secret)
    at = data.draw(st.integers(0, len(text)))
    out = redact(text[:at] + form + text[at:], known_secrets=[secret])
    assert secret not in out and form not in out


def test_ordinary_text_is_left_alone():
    line = "ran 12 tests in 0.3s: OK (base64 module, hex 0xdeadbeef, 'reversed' list)"
    assert redact(line, known_secrets=["ghp" + "_" + ALNUM36, "hunter2-hunter2"]) == line


def test_a_secret_nested_in_itself_is_not_rebuilt_by_its_redaction():
    secret = "hunter2-hunter2"
    nested = secret
    for _ in range(100):  # removing the inner copy would join the halves around it into another
        nested = secret[:7] + nested + secret[7:]
    for form in (nested, nested[::-1], " ".join(nested), base64.b64encode(nested.encode()).decode()):
        out = redact(form, known_secrets=[secret])
        assert not any(secret.encode() in decoded for decoded in recoverable(out))
