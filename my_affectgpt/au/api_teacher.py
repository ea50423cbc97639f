"""Teacher that asks an OpenAI-compatible chat-completions endpoint to describe an AU state.

One canonical AU text (facs.au_state_text, e.g. ``AU06 cheek raiser 2.1; AU12 lip corner
puller 3.2``) in, one objective description out. Works with any server that speaks
``POST <base_url>/chat/completions``, for example:

- OpenAI (GPT-4o):   base_url ``https://api.openai.com/v1``, key in ``$OPENAI_API_KEY``
- Gemini:            base_url ``https://generativelanguage.googleapis.com/v1beta/openai``,
                     key in e.g. ``$GEMINI_API_KEY``
- Ollama:            base_url ``http://127.0.0.1:11434/v1`` (no key needed)
- vLLM:              base_url ``http://127.0.0.1:8000/v1`` (no key unless started with --api-key)

Answers are cached in SQLite (WAL mode, one committed row per answer), so a run that was
interrupted or killed re-requests only what is missing, and several threads or processes may
share one cache file. The API key is read from an environment variable only and never appears
in logs, exceptions or repr().
"""
from __future__ import annotations

import email.utils
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from my_affectgpt.au.prompts import API_TEACHER_SYSTEM, PROMPT_VERSION, user_prompt
from my_affectgpt.common.errors import InputError
from my_affectgpt.common.answer_cache import AnswerCache

log = logging.getLogger(__name__)

# A server asking for more than this in Retry-After is treated as asking for this much, so a
# broken header cannot stall a run for hours.
MAX_RETRY_AFTER_S = 300.0
# Statuses worth retrying: rate limited, request timeout, and server-side failures (5xx).
_RETRY_STATUSES = frozenset({408, 429})


class TeacherAPIError(RuntimeError):
    """The endpoint could not produce an answer (retries exhausted, or a malformed reply)."""

    def __init__(self, message: str, *, attempts: int = 1, status: int | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.status = status


class _Cancelled(Exception):
    """Raised inside worker threads when describe_many is aborting."""


def is_loopback_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _display_url(url: str) -> str:
    """The URL without user info or query, safe to put in logs and errors."""
    p = urllib.parse.urlsplit(url)
    netloc = p.hostname or ""
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    if p.port:
        netloc += f":{p.port}"
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, "", ""))


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - time.time()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class RateLimiter:
    """Evenly spaced request slots shared by all threads of one teacher.

    Each acquire() reserves the next free slot (at least 60/rpm seconds after the previous one)
    under a lock and sleeps outside it, so waiting threads do not block each other's bookkeeping.
    """

    def __init__(self, requests_per_minute: float | None):
        self.interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event | None = None) -> None:
        if self.interval <= 0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        delay = slot - now
        if delay > 0:
            if stop is not None:
                if stop.wait(delay):
                    raise _Cancelled()
            else:
                time.sleep(delay)


class ResponseCache(AnswerCache):
    """The shared SQLite answer cache (common/answer_cache.py), tagged with this PROMPT_VERSION."""

    def put(self, key: str, response: str, model: str) -> None:  # type: ignore[override]
        super().put(key, response, model, PROMPT_VERSION)


class APITeacher:
    """Describe canonical AU texts with an OpenAI-compatible chat-completions endpoint.

    Example (a local vLLM server; no key needed on loopback)::

        teacher = APITeacher(model="Qwen/Qwen2.5-7B-Instruct", base_url="http://127.0.0.1:8000/v1",
                             api_key_env=None, cache_path="cache/api_teacher.sqlite")
        teacher.describe("AU06 cheek raiser 2.1; AU12 lip corner puller 3.2")

    The key is read from ``$api_key_env`` when the teacher is built. On a loopback base_url it
    is optional (``api_key_env=None`` or an unset variable sends no Authorization header);
    elsewhere a missing key is an InputError. ``max_retries`` counts retries, so a request is
    tried at most ``max_retries + 1`` times. Retries wait ``min(cap, base * 2**n)`` scaled by a
    random factor in [0.5, 1], or what the server's Retry-After header asks for.
    """

    def __init__(self, model: str, base_url: str, *, api_key_env: str | None = "OPENAI_API_KEY",
                 cache_path: str | os.PathLike | None = None, temperature: float = 0.2,
                 max_tokens: int = 200, max_retries: int = 5, backoff_base: float = 1.0,
                 backoff_cap: float = 30.0, requests_per_minute: float | None = 60,
                 timeout_s: float = 60.0):
        if not isinstance(model, str) or not model.strip():
            raise InputError("api_teacher.model", "must be a non-empty model name")
        parts = urllib.parse.urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(base_url, "base_url must be an http(s) URL such as "
                                       "http://127.0.0.1:8000/v1")
        _check_number("temperature", temperature, 0.0)
        _check_number("max_tokens", max_tokens, 1, integer=True)
        _check_number("max_retries", max_retries, 0, integer=True)
        _check_number("backoff_base", backoff_base, 0.0)
        _check_number("backoff_cap", backoff_cap, 0.0)
        _check_number("timeout_s", timeout_s, 0.0, strict=True)
        if requests_per_minute is not None:
            _check_number("requests_per_minute", requests_per_minute, 0.0, strict=True)

        self.model = model
        self.base_url = str(base_url).rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self._shown_url = _display_url(self.base_url)
        self.api_key_env = api_key_env or None
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        self.requests_per_minute = requests_per_minute
        self.timeout_s = float(timeout_s)

        loopback = is_loopback_url(self.base_url)
        key = os.environ.get(self.api_key_env, "").strip() if self.api_key_env else ""
        if not key and not loopback:
            if self.api_key_env:
                raise InputError(self._shown_url,
                                 f"no API key: set ${self.api_key_env} (required for a "
                                 f"non-loopback base_url)")
            raise InputError(self._shown_url, "no API key: a non-loopback base_url needs "
                                              "api_key_env naming the variable that holds it")
        self._api_key = key or None
        # Loopback servers are reached directly even when HTTP(S)_PROXY is set without NO_PROXY.
        handlers = [urllib.request.ProxyHandler({})] if loopback else []
        self._opener = urllib.request.build_opener(*handlers)

        self.cache_path = Path(cache_path) if cache_path is not None else None
        self._cache = ResponseCache(self.cache_path)
        self._limiter = RateLimiter(requests_per_minute)
        self._stats_lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0
        self.http_requests = 0  # HTTP attempts, retries included

    @classmethod
    def from_config(cls, cfg: Mapping, source: str = "api_teacher") -> "APITeacher":
        """Build from a mapping (dict or OmegaConf DictConfig) with the constructor's keys."""
        if not isinstance(cfg, Mapping):
            raise InputError(source, "teacher config must be a mapping")
        for required in ("model", "base_url"):
            if not cfg.get(required):
                raise InputError(f"{source}.{required}", "missing (required for the API teacher)")
        kwargs = {"model": str(cfg["model"]), "base_url": str(cfg["base_url"])}
        if "api_key_env" in cfg:
            kwargs["api_key_env"] = cfg["api_key_env"] or None
        if cfg.get("cache_path") is not None:
            kwargs["cache_path"] = str(cfg["cache_path"])
        if "requests_per_minute" in cfg:
            kwargs["requests_per_minute"] = _config_number(cfg, "requests_per_minute", source,
                                                           allow_none=True)
        for name in ("temperature", "timeout_s", "backoff_base", "backoff_cap"):
            if cfg.get(name) is not None:
                kwargs[name] = _config_number(cfg, name, source)
        for name in ("max_tokens", "max_retries"):
            if cfg.get(name) is not None:
                kwargs[name] = int(_config_number(cfg, name, source))
        return cls(**kwargs)

    def __repr__(self) -> str:
        return (f"APITeacher(model={self.model!r}, base_url={self._shown_url!r}, "
                f"api_key_env={self.api_key_env!r}, cache_path={self.cache_path!r})")

    # -- public API ---------------------------------------------------------------------------

    def cache_key(self, au_text: str) -> str:
        """sha256 over everything that changes the answer: prompts, their version, sampling."""
        ident = [PROMPT_VERSION, self.model, API_TEACHER_SYSTEM, user_prompt(au_text),
                 self.temperature, self.max_tokens]
        return hashlib.sha256(json.dumps(ident, ensure_ascii=False).encode("utf-8")).hexdigest()

    def describe(self, au_text: str) -> str:
        _check_text(au_text)
        key = self.cache_key(au_text)
        hit = self._cache.get(key)
        if hit is not None:
            self._count(hits=1)
            return hit
        self._count(misses=1)
        return self._fetch_and_store(au_text, key, None)

    def describe_many(self, au_texts: Iterable[str], workers: int = 4,
                      progress: bool = True) -> list[str]:
        """Describe every text, in order; equal texts are requested once, cached ones not at all.

        On an error or Ctrl-C the pending requests are cancelled and the answers already
        received stay in the cache, so a rerun continues where this one stopped.
        """
        texts = list(au_texts)
        for t in texts:
            _check_text(t)
        if int(workers) < 1:
            raise InputError("api_teacher.workers", f"must be >= 1, got {workers}")
        distinct = list(dict.fromkeys(texts))
        keys = {t: self.cache_key(t) for t in distinct}
        cached = self._cache.get_many(list(keys.values()))
        answers = {t: cached[k] for t, k in keys.items() if k in cached}
        missing = [t for t in distinct if t not in answers]
        self._count(hits=len(answers), misses=len(missing))

        bar = tqdm(total=len(distinct), initial=len(answers), desc="API teacher", unit="text",
                   disable=not progress, dynamic_ncols=True)
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=int(workers), thread_name_prefix="api-teacher")
        try:
            futures = {pool.submit(self._fetch_and_store, t, keys[t], stop): t for t in missing}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                failed = [f for f in done if f.exception() is not None]
                if failed:
                    # Let the other workers wind down, then report the error that started it
                    # rather than the cancellations it caused.
                    stop.set()
                    wait(pending)
                    errors = [f.exception() for f in (*failed, *pending)
                              if f.done() and not f.cancelled() and f.exception() is not None]
                    raise next((e for e in errors if not isinstance(e, _Cancelled)), errors[0])
                for fut in done:
                    answers[futures[fut]] = fut.result()
                    bar.update(1)
                bar.set_postfix(hits=self.cache_hits, misses=self.cache_misses, refresh=False)
        finally:
            stop.set()  # wakes workers sleeping in backoff or the rate limiter
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        return [answers[t] for t in texts]

    def stats(self) -> dict:
        with self._stats_lock:
            return {"cache_hits": self.cache_hits, "cache_misses": self.cache_misses,
                    "http_requests": self.http_requests}

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> "APITeacher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _count(self, hits: int = 0, misses: int = 0, requests: int = 0) -> None:
        with self._stats_lock:
            self.cache_hits += hits
            self.cache_misses += misses
            self.http_requests += requests

    def _fetch_and_store(self, au_text: str, key: str, stop: threading.Event | None) -> str:
        if stop is not None and stop.is_set():
            raise _Cancelled()
        try:
            answer = self._request(au_text, stop)
        except BaseException:
            if stop is not None:
                stop.set()  # the other workers stop before their next request
            raise
        self._cache.put(key, answer, self.model)
        return answer

    def _request(self, au_text: str, stop: threading.Event | None) -> str:
        body = json.dumps({
            "model": self.model,
            "messages": [{"role": "system", "content": API_TEACHER_SYSTEM},
                         {"role": "user", "content": user_prompt(au_text)}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "my_affectgpt-api-teacher"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"

        attempts = self.max_retries + 1
        last, short, last_status = "no attempt made", "", None
        for attempt in range(1, attempts + 1):
            self._limiter.acquire(stop)
            self._count(requests=1)
            retry_after = None
            try:
                req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with self._opener.open(req, timeout=self.timeout_s) as resp:
                    raw = resp.read()
                return self._parse_answer(raw, attempt)
            except urllib.error.HTTPError as err:
                status = err.code
                detail = self._error_detail(err)
                retry_after = _parse_retry_after(err.headers.get("Retry-After")
                                                 if err.headers else None)
                err.close()
                if status in (401, 403):
                    env = f"${self.api_key_env}" if self.api_key_env else "api_key_env"
                    raise InputError(self._shown_url,
                                     f"API key rejected (HTTP {status}); check {env}") from None
                if status == 404:
                    raise InputError(self._shown_url,
                                     f"HTTP 404 for model {self.model!r}: check the model name "
                                     f"and that base_url ends in the API root (e.g. /v1)"
                                     f"{detail}") from None
                if status not in _RETRY_STATUSES and status < 500:
                    raise TeacherAPIError(f"{self._shown_url}: HTTP {status}, not retried"
                                          f"{detail}", attempts=attempt, status=status) from None
                short, last_status = f"HTTP {status}", status
                last = short + detail
            except (OSError, http.client.HTTPException) as err:
                # URLError, refused/reset connections and socket timeouts are all OSErrors;
                # HTTPException covers truncated or garbled replies.
                reason = getattr(err, "reason", err)
                short, last_status = type(reason).__name__, None
                last = f"{short}: {reason}"

            if attempt == attempts:
                break
            delay = retry_after if retry_after is not None else self._backoff(attempt - 1)
            log.warning("%s from %s; retry %d/%d in %.2f s", short, self._shown_url, attempt,
                        self.max_retries, delay)
            if stop is not None:
                if stop.wait(delay):
                    raise _Cancelled()
            elif delay > 0:
                time.sleep(delay)
        raise TeacherAPIError(f"{self._shown_url}: gave up after {attempts} attempt"
                              f"{'s' if attempts != 1 else ''}; last error: {last}",
                              attempts=attempts, status=last_status)

    def _backoff(self, retry_index: int) -> float:
        full = min(self.backoff_cap, self.backoff_base * (2 ** retry_index))
        return full * random.uniform(0.5, 1.0)

    def _parse_answer(self, raw: bytes, attempt: int) -> str:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise TeacherAPIError(f"{self._shown_url}: reply is not JSON: "
                                  f"{self._scrub(raw[:200].decode('utf-8', 'replace'))!r}",
                                  attempts=attempt, status=200) from None
        try:
            choice = data["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise TeacherAPIError(f"{self._shown_url}: reply has no choices[0].message.content",
                                  attempts=attempt, status=200) from None
        if not isinstance(content, str) or not content.strip():
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            raise TeacherAPIError(f"{self._shown_url}: empty answer "
                                  f"(finish_reason={reason!r})", attempts=attempt, status=200)
        return content.strip()

    def _error_detail(self, err: urllib.error.HTTPError) -> str:
        """A short, key-free excerpt of the server's error message, or ''."""
        try:
            raw = err.read(2000).decode("utf-8", "replace")
        except Exception:
            return ""
        msg = raw
        try:
            data = json.loads(raw)
            if isinstance(data, dict):
                e = data.get("error", data)
                msg = e.get("message", raw) if isinstance(e, dict) else str(e)
        except json.JSONDecodeError:
            pass
        msg = " ".join(self._scrub(str(msg)).split())[:200]
        return f" ({msg})" if msg else ""

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _check_text(au_text) -> None:
    if not isinstance(au_text, str) or not au_text.strip():
        raise InputError("au_text", f"must be a non-empty AU text, got {au_text!r}")


def _check_number(name: str, value, low: float, *, integer: bool = False,
                  strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        ok = value > low if strict else value >= low
    if not ok:
        kind = "an integer" if integer else "a number"
        raise InputError(f"api_teacher.{name}",
                         f"must be {kind} {'>' if strict else '>='} {low:g}, got {value!r}")


def _config_number(cfg: Mapping, name: str, source: str, allow_none: bool = False):
    value = cfg.get(name)
    if value is None and allow_none:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{source}.{name}", f"must be a number, got {value!r}") from None
