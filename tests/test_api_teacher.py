"""APITeacher against a real loopback OpenAI-compatible server running in a thread."""
from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from my_affectgpt.au.api_teacher import APITeacher, TeacherAPIError, _parse_retry_after
from my_affectgpt.au.prompts import API_TEACHER_SYSTEM, PROMPT_VERSION, user_prompt
from my_affectgpt.common.errors import InputError

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "AU_TEST_TEACHER_KEY"
SECRET = "sk-test-0123456789-very-secret"
TEXT_A = "AU06 cheek raiser 2.1; AU12 lip corner puller 3.2"
TEXT_B = "AU01 inner brow raiser 1.4; AU04 brow lowerer 2.0"
TEXT_C = "AU25 lips part 1.0"


class FakeOpenAI:
    """POST /v1/chat/completions. Scripted replies are served first, in order; then it answers
    ``described: <AU text>`` padded with whitespace. Every request is recorded."""

    def __init__(self):
        self.script: list[dict] = []
        self.requests: list[dict] = []
        self.hold_text: str | None = None  # requests for this text wait for `release`
        self.release = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                arrived = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    outer.requests.append({"t": arrived, "path": self.path,
                                           "headers": dict(self.headers), "body": body})
                    step = outer.script.pop(0) if outer.script else None
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "no such route"}})
                au_text = body["messages"][1]["content"].split("AUs: ", 1)[-1]
                if outer.hold_text is not None and au_text == outer.hold_text:
                    outer.release.wait(20)
                if step is not None:
                    time.sleep(step.get("sleep", 0))
                    if "status" in step:
                        return self._send(step["status"], step.get("body", {"error": {}}),
                                          step.get("headers", {}))
                    if "raw" in step:
                        return self._send(200, step["raw"])
                answer = f"  described: {au_text}\n"
                self._send(200, {"id": "x", "object": "chat.completion", "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant",
                                                          "content": answer}}]})

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # client timed out and left
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def texts(self) -> list[str]:
        return [r["body"]["messages"][1]["content"].split("AUs: ", 1)[-1] for r in self.requests]

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = FakeOpenAI()
    yield srv
    srv.close()


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def make(server, tmp_path, **kw):
    args = dict(model="teacher-model", base_url=server.url, api_key_env=KEY_ENV,
                cache_path=tmp_path / "cache.sqlite", requests_per_minute=None,
                backoff_base=0.001, backoff_cap=0.01, timeout_s=5)
    args.update(kw)
    return APITeacher(**args)


def test_request_carries_model_versioned_prompts_and_key(server, tmp_path, key):
    with make(server, tmp_path, temperature=0.3, max_tokens=77) as t:
        assert t.describe(TEXT_A) == f"described: {TEXT_A}"  # whitespace stripped
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["model"] == "teacher-model"
    assert req["body"]["messages"] == [{"role": "system", "content": API_TEACHER_SYSTEM},
                                       {"role": "user", "content": user_prompt(TEXT_A)}]
    assert req["body"]["temperature"] == 0.3
    assert req["body"]["max_tokens"] == 77
    assert req["headers"]["Authorization"] == f"Bearer {key}"


def test_loopback_needs_no_key(server, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with make(server, tmp_path) as t:  # env var named but unset
        t.describe(TEXT_A)
    with make(server, tmp_path, api_key_env=None, model="other") as t:
        t.describe(TEXT_A)
    assert len(server.requests) == 2
    assert all("Authorization" not in r["headers"] for r in server.requests)


def test_missing_key_for_remote_url_is_input_error(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(InputError) as exc:
        APITeacher(model="gpt-4o", base_url="https://api.example.invalid/v1",
                   api_key_env=KEY_ENV, cache_path=tmp_path / "c.sqlite")
    assert f"${KEY_ENV}" in str(exc.value)
    with pytest.raises(InputError, match="api_key_env"):
        APITeacher(model="gpt-4o", base_url="https://api.example.invalid/v1", api_key_env=None)
    assert not (tmp_path / "c.sqlite").exists()  # failed before touching anything


def test_429_with_retry_after_then_success(server, tmp_path, key, caplog):
    server.script = [{"status": 429, "headers": {"Retry-After": "0"}}]
    caplog.set_level(logging.DEBUG, logger="my_affectgpt.au.api_teacher")
    with make(server, tmp_path, backoff_base=30, backoff_cap=30) as t:  # Retry-After wins
        start = time.monotonic()
        assert t.describe(TEXT_A) == f"described: {TEXT_A}"
        assert time.monotonic() - start < 5
        assert t.stats()["http_requests"] == 2
    assert len(server.requests) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTTP 429" in warnings[0].getMessage()
    assert key not in caplog.text


def test_500_until_retries_exhausted(server, tmp_path, key):
    server.script = [{"status": 500, "body": {"error": {"message": "boom"}}}] * 4
    with make(server, tmp_path, max_retries=3) as t:
        with pytest.raises(TeacherAPIError) as exc:
            t.describe(TEXT_A)
    assert exc.value.attempts == 4 and exc.value.status == 500
    assert "4 attempts" in str(exc.value) and "HTTP 500" in str(exc.value)
    assert len(server.requests) == 4
    assert isinstance(exc.value, RuntimeError)


def test_401_names_env_var_never_the_key(server, tmp_path, key, caplog):
    # The server echoes the key in its error body: it must still not leak.
    server.script = [{"status": 401, "body": {"error": {"message": f"bad key {key}"}}}]
    caplog.set_level(logging.DEBUG)
    t = make(server, tmp_path)
    with pytest.raises(InputError) as exc:
        t.describe(TEXT_A)
    msg = str(exc.value)
    assert "HTTP 401" in msg and f"${KEY_ENV}" in msg and server.url in msg
    assert key not in msg and key not in repr(exc.value) and key not in repr(t)
    assert key not in caplog.text
    assert len(server.requests) == 1  # not retried
    t.close()


def test_404_and_other_4xx_are_not_retried(server, tmp_path, key):
    server.script = [{"status": 404, "body": {"error": {"message": "model nope not found"}}},
                     {"status": 400, "body": {"error": {"message": f"bad param {key}"}}}]
    with make(server, tmp_path, model="nope") as t:
        with pytest.raises(InputError, match="'nope'.*model nope not found"):
            t.describe(TEXT_A)
        with pytest.raises(TeacherAPIError, match="HTTP 400") as exc:
            t.describe(TEXT_A)
    assert key not in str(exc.value)
    assert len(server.requests) == 2


@pytest.mark.parametrize("reply", [{"choices": []}, {"choices": [{"message": {}}]},
                                   {"choices": [{"message": {"content": "  \n"}}]},
                                   {"error": "weird"}])
def test_empty_or_missing_content_is_teacher_error(server, tmp_path, key, reply):
    server.script = [{"raw": reply}]
    with make(server, tmp_path) as t:
        with pytest.raises(TeacherAPIError):
            t.describe(TEXT_A)
        assert t.cache_misses == 1 and len(t._cache) == 0  # nothing cached
    assert len(server.requests) == 1


def test_timeout_is_retried(server, tmp_path, key):
    server.script = [{"sleep": 1.0}]
    with make(server, tmp_path, timeout_s=0.2) as t:
        assert t.describe(TEXT_A) == f"described: {TEXT_A}"
    assert len(server.requests) == 2


def test_connection_refused_is_retried_then_reported(tmp_path, key):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = APITeacher(model="m", base_url=f"http://127.0.0.1:{port}/v1", api_key_env=KEY_ENV,
                   max_retries=2, backoff_base=0.001, backoff_cap=0.01, requests_per_minute=None)
    with pytest.raises(TeacherAPIError, match="3 attempts") as exc:
        t.describe(TEXT_A)
    assert exc.value.status is None and t.stats()["http_requests"] == 3


def test_cache_hits_resume_and_identity(server, tmp_path, key):
    with make(server, tmp_path) as t:
        first = t.describe(TEXT_A)
        assert t.describe(TEXT_A) == first
        assert (t.cache_hits, t.cache_misses) == (1, 1)
    assert len(server.requests) == 1

    with make(server, tmp_path) as t2:  # a new teacher (as after a restart) on the same file
        assert t2.describe(TEXT_A) == first
        assert (t2.cache_hits, t2.cache_misses) == (1, 0)
    assert len(server.requests) == 1

    for changed in ({"model": "another-model"}, {"temperature": 0.7}, {"max_tokens": 50}):
        with make(server, tmp_path, **changed) as t3:
            t3.describe(TEXT_A)
            assert t3.cache_misses == 1
    assert len(server.requests) == 4

    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        rows = db.execute("SELECT response, model, prompt_version, created_at FROM responses")
        rows = rows.fetchall()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(rows) == 4
    assert {r[1] for r in rows} == {"teacher-model", "another-model"}
    assert all(r[2] == PROMPT_VERSION and abs(r[3] - time.time()) < 60 for r in rows)


def test_describe_many_dedups_and_keeps_order(server, tmp_path, key):
    texts = [TEXT_A, TEXT_B, TEXT_A, TEXT_C, TEXT_B, TEXT_A]
    with make(server, tmp_path) as t:
        t.describe(TEXT_C)  # already cached: not requested again
        out = t.describe_many(texts, workers=3, progress=False)
        assert out == [f"described: {x}" for x in texts]
        assert (t.cache_hits, t.cache_misses) == (1, 3)
    assert sorted(server.texts()) == sorted([TEXT_C, TEXT_A, TEXT_B])


def test_describe_many_stops_on_error_and_rerun_fetches_only_missing(server, tmp_path, key):
    texts = [f"AU{n:02d} test unit 1.0" for n in range(1, 7)]
    with make(server, tmp_path, max_retries=0) as t:
        t.describe_many(texts[:2], workers=1, progress=False)
        server.script = [{"status": 503}]
        with pytest.raises(TeacherAPIError):
            t.describe_many(texts, workers=1, progress=False)
    assert server.texts() == texts[:3]
    with make(server, tmp_path) as t:
        assert t.describe_many(texts, progress=False) == [f"described: {x}" for x in texts]
    assert sorted(server.texts()[3:]) == sorted(texts[2:])


def test_rerun_after_kill_requests_only_missing(server, tmp_path, key):
    """A separate process is SIGKILLed mid-run; a rerun asks only for what it had not stored."""
    texts = [f"AU{n:02d} test unit 2.0" for n in range(1, 6)]
    server.hold_text = texts[2]
    cache = tmp_path / "cache.sqlite"
    code = ("import json, sys\n"
            "from my_affectgpt.au.api_teacher import APITeacher\n"
            f"t = APITeacher(model='teacher-model', base_url={server.url!r}, "
            f"api_key_env={KEY_ENV!r}, cache_path={str(cache)!r}, requests_per_minute=None)\n"
            "t.describe_many(json.loads(sys.argv[1]), workers=1, progress=False)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(texts)], env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        while len(server.requests) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert server.texts() == texts[:3], "the child never reached the held request"
    finally:
        proc.kill()
        proc.wait()
    server.hold_text = None
    with make(server, tmp_path) as t:
        assert t.describe_many(texts, progress=False) == [f"described: {x}" for x in texts]
        assert (t.cache_hits, t.cache_misses) == (2, 3)
    assert sorted(server.texts()[3:]) == texts[2:]


def test_rate_limit_spaces_requests(server, tmp_path, key):
    texts = [f"AU{n:02d} test unit 3.0" for n in range(1, 7)]
    with make(server, tmp_path, requests_per_minute=600) as t:
        t.describe_many(texts, workers=3, progress=False)
    arrivals = sorted(r["t"] for r in server.requests)
    assert len(arrivals) == 6
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert min(gaps) >= 0.08, gaps


def test_cache_hits_do_not_use_rate_limit_slots(server, tmp_path, key):
    with make(server, tmp_path, requests_per_minute=12) as t:  # one request per 5 s
        t.describe(TEXT_A)
        start = time.monotonic()
        for _ in range(5):
            t.describe(TEXT_A)
        t.describe_many([TEXT_A] * 3, progress=False)
        assert time.monotonic() - start < 2.0
    assert len(server.requests) == 1


def test_from_config(server, tmp_path, key):
    cfg = {"model": "cfg-model", "base_url": server.url, "api_key_env": KEY_ENV,
           "cache_path": str(tmp_path / "cfg.sqlite"), "requests_per_minute": 120,
           "temperature": 0.0, "max_tokens": 64, "max_retries": 2}
    with APITeacher.from_config(cfg) as t:
        assert (t.model, t.temperature, t.max_tokens, t.max_retries) == ("cfg-model", 0.0, 64, 2)
        assert t.requests_per_minute == 120 and t.cache_path == tmp_path / "cfg.sqlite"
        t.describe(TEXT_A)
    assert server.requests[0]["body"]["temperature"] == 0.0
    with pytest.raises(InputError, match="model"):
        APITeacher.from_config({"base_url": server.url})
    with pytest.raises(InputError, match="max_tokens"):
        APITeacher.from_config({**cfg, "max_tokens": "lots"})


def test_bad_inputs(tmp_path, server, key):
    bad = tmp_path / "not_a_db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match="SQLite"):
        make(server, tmp_path, cache_path=bad)
    with pytest.raises(InputError, match="base_url"):
        make(server, tmp_path, base_url="127.0.0.1:8000/v1")
    with pytest.raises(InputError, match="temperature"):
        make(server, tmp_path, temperature=-1)
    with make(server, tmp_path) as t, pytest.raises(InputError, match="au_text"):
        t.describe("  ")
    assert server.requests == []


def test_parse_retry_after():
    assert _parse_retry_after("0") == 0.0
    assert _parse_retry_after("2.5") == 2.5
    assert _parse_retry_after("99999") == 300.0
    assert _parse_retry_after("soon") is None and _parse_retry_after(None) is None
    assert _parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
