"""One redaction rule (``bindu_storage.analysis.redact``) for frames, exports, diagnostics (issue 8, item 7).

A corpus of realistic secret shapes must be redacted, a corpus of look-alikes must not, and
the frames of both backends apply the rule the same way.
"""

from __future__ import annotations

import importlib.util
import time
import uuid

import pytest
from conftest import execute

from bindu_storage import InMemoryStorage, PostgresStorage
from bindu_storage.analysis.frames import tasks_frame
from bindu_storage.analysis.redact import REDACTED, is_secret_key, redact, redact_sql, redact_text

SECRET_KEYS = [
    "token", "access_token", "refreshToken", "id_token", "APIToken", "GITHUBToken", "githubtoken",
    "csrftoken", "password", "db_password", "passwd", "pwd", "secret", "clientSecret", "client_secret",
    "Authorization", "authorization", "Authorisation", "auth", "oauth", "OAuth", "bearer", "Bearer",
    "sessionid", "session_id", "sessionId", "SESSION_ID", "session_token", "sessionKey", "api_key",
    "apiKey", "X-Api-Key", "x-api-key", "apikey", "private_key", "privateKey", "aws_secret_access_key",
    "AWS_ACCESS_KEY_ID", "cookie", "Set-Cookie", "signature", "credentials", "jwt", "passphrase",
]
PLAIN_KEYS = [
    "token_count", "max_tokens", "tokens", "input_tokens", "output_tokens", "prompt_tokens",
    "total_tokens", "completion_tokens", "usage", "author", "authority", "authors", "auth_type",
    "auth_method", "token_type", "tokenizer", "token_limit", "password_expires", "session", "keyword",
    "key", "monkey", "duration", "priority", "agent", "secretary_count", "expires_in", "cookie_count",
]

SECRET_VALUES = [  # (text, the part that must disappear)
    ("https://alice:hunter2pw@example.com/repo.git", "hunter2pw"),
    ("postgresql://app:S3cr%2Ft%40pw@db.internal:5432/app", "S3cr%2Ft%40pw"),
    ("clone https://x-access-token:ghs_16CharsOfTokenXYZ1234@github.com/o/r", "ghs_16CharsOfTokenXYZ1234"),
    ("https://api.example.com/cb?code=1&access_token=ya29.a0AfH6SMB&state=x", "ya29.a0AfH6SMB"),
    ("https://hooks.example.com/x?api_key=AbC123xyz", "AbC123xyz"),
    ("/login?user=bob&password=pa55word", "pa55word"),
    ("https://s3.amazonaws.com/b/k?X-Amz-Signature=deadbeef01&X-Amz-Expires=60", "deadbeef01"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4"),
    ("bearer abcdef0123456789", "abcdef0123456789"),
    ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("token is eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
    ("use ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop"),
    ("key sk-ant-api03-abcdefghijklmnopqrstuv", "sk-ant-api03-abcdefghijklmnopqrstuv"),
    ("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
    ("aws AKIAIOSFODNN7EXAMPLE id", "AKIAIOSFODNN7EXAMPLE"),
    ("session_id=8f14e45fceea167a5a36dedd4bea2543; Path=/", "8f14e45fceea167a5a36dedd4bea2543"),
]
PLAIN_VALUES = [
    "https://example.com/docs?page=2&lang=en",
    "max_tokens=4096, temperature=0.2",
    "Bearer authentication is described in RFC 6750",
    "Basic setup done",
    "mailto:alice@example.com",
    "alice@example.com wrote: 2 + 2 = 4",
    "see https://github.com/org/repo/issues/8",
    "sk-learn is a nickname", "a=b", "token_count=12",
    "ssh://git@github.com/org/repo.git",
    "The author of the authority report",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_look_alike_keys_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)


@pytest.mark.parametrize(("text", "secret"), SECRET_VALUES)
def test_credentials_inside_values(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out and REDACTED in out, out
    assert redact({"note": text}) == {"note": out} and redact([text]) == [out]


@pytest.mark.parametrize("text", PLAIN_VALUES)
def test_look_alike_values_stay(text: str) -> None:
    assert redact_text(text) == text


def test_one_rule_everywhere() -> None:
    from bindu_storage.analysis import diagnostics  # re-exports the one rule
    from bindu_storage.analysis.frames import _memory
    from bindu_storage.analysis.frames._pg import csv

    assert _memory.is_secret_key is is_secret_key and _memory.redact is redact and csv.redact is redact
    assert importlib.util.find_spec("bindu_storage.analysis.frames_redact") is None  # one module
    assert importlib.util.find_spec("bindu_storage.analysis.diagnostics.redact") is None
    assert diagnostics.redact_sql is redact_sql
    assert redact_sql("ALTER ROLE ops PASSWORD 'hunter2'") == "ALTER ROLE ops PASSWORD '***'"
    assert "ya29" not in redact_sql("SELECT fetch('https://x/cb?access_token=ya29abc')")


def test_value_scan_is_cheap_for_ordinary_text() -> None:
    plain = ["The user asked for a table for two at seven, near the window."] * 200_000
    started = time.perf_counter()
    for text in plain:
        redact_text(text)
    assert time.perf_counter() - started < 1.0  # a few substring tests per string, no regex


def _metadata() -> dict[str, object]:
    return {
        "APIToken": "tok-1", "GITHUBToken": "ghtok-2", "Authorisation": "Basic abc", "auth": "a-3",
        "bearer": "b-4", "sessionid": "s-5", "session_id": "s-6", "token_count": 12, "max_tokens": 512,
        "author": "alice", "authority": "registry",
        "callback": "https://bob:pw-7x@hooks.example.com/cb?access_token=at-8x&page=2",
        "header": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI5In0.c2lnbmF0dXJl",
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }


SECRET_STRINGS = ("tok-1", "ghtok-2", "Basic abc", "a-3", "b-4", "s-5", "s-6", "pw-7x", "at-8x",
                  "eyJhbGciOiJIUzI1NiJ9")


async def _frame(storage: InMemoryStorage | PostgresStorage) -> dict[str, object]:
    task_id, context_id = uuid.uuid4(), uuid.uuid4()
    message = {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "kind": "message",
               "message_id": str(uuid.uuid4()), "task_id": str(task_id), "context_id": str(context_id)}
    await storage.submit_task(context_id, message)
    await storage.update_task(task_id, "working", metadata=_metadata())
    frame = await tasks_frame(storage)
    assert len(frame) == 1
    return {k: v for k, v in frame.iloc[0].to_dict().items() if k.startswith("metadata.")}


@pytest.mark.parametrize("backend", ["memory", "postgres"])
async def test_frames_redact_by_the_rule(backend: str, pg_url: str) -> None:
    schema = f"redact_{uuid.uuid4().hex[:8]}"
    if backend == "memory":
        storage: InMemoryStorage | PostgresStorage = InMemoryStorage()
    else:
        storage = PostgresStorage(pg_url, schema=schema, run_migrations=True, pool_min=1, pool_max=2)
    try:
        row = await _frame(storage)
        if backend == "postgres":
            await execute(pg_url, f'DROP SCHEMA "{schema}" CASCADE')  # fetch() is read-only
    finally:
        await storage.close()
    text = repr(row)
    for secret in SECRET_STRINGS:
        assert secret not in text, (backend, secret, row)
    for key in ("APIToken", "GITHUBToken", "Authorisation", "auth", "bearer", "sessionid", "session_id"):
        assert row[f"metadata.{key}"] == REDACTED
    assert row["metadata.token_count"] == 12 and row["metadata.max_tokens"] == 512
    assert row["metadata.author"] == "alice" and row["metadata.authority"] == "registry"
    assert row["metadata.usage.prompt_tokens"] == 10
    assert row["metadata.callback"] == "https://bob:***@hooks.example.com/cb?access_token=***&page=2"
    assert row["metadata.header"] == "Bearer ***"
