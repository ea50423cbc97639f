"""Emotion labels out of generated text: an offline lexicon extractor and an LLM extractor.

Both return, per text, canonical labels (emotion_labels.normalize_label) in order of first
mention, without duplicates. Both have `name` and `extract_many(texts, progress) -> list[list]`.

- `LexiconExtractor` needs nothing but this package. A text that is already a label list
  ("happy, excited" — what the model answers to the open-set question) is read item by item, so
  open-vocabulary words outside the table are kept. Free text is scanned for the table's surface
  forms; a form preceded in its clause by a negator ("not", "no", "never", "n't", "without",
  "hardly", ...) at most NEGATION_WINDOW words before it is left out ("he is not happy").
- `LLMExtractor` asks a language model to list the emotions as a comma-separated list and parses
  the answer. The model is any callable `generate(prompts: list[str]) -> list[str]` taking user
  messages: `HFChatGenerator` (a local Hugging Face chat model) or `ChatEndpoint` (an
  OpenAI-compatible ``POST <base_url>/chat/completions``; the API key is read from the
  environment variable the user names and never logged).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import random
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from functools import lru_cache
from typing import Callable, Sequence

from tqdm import tqdm

from my_affectgpt.au.api_teacher import _display_url, _parse_retry_after, is_loopback_url
from my_affectgpt.common.errors import InputError
from my_affectgpt.common.answer_cache import AnswerCache

from .emotion_labels import (FREE_TEXT_EXCLUDED, NEGATION_WINDOW, NEGATORS, labels_from_list,
                             split_label_list, surface_table)

log = logging.getLogger(__name__)

# ---- lexicon --------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
# A negator reaches to the end of its clause only: "not angry, but sad" leaves "sad" standing.
_CLAUSE_BREAK = re.compile(r"[.;:!?,()\"\n]|\b(?:but|however|although|though|yet|whereas|while"
                           r"|and)\b", re.I)
# Words that make a short item a sentence rather than a label ("he is happy").
_SENTENCE_WORDS = frozenset({"he", "she", "they", "i", "you", "we", "it", "is", "are", "was",
                             "were", "seems", "seem", "looks", "look", "appears", "person", "man",
                             "woman", "character", "his", "her", "their", "this", "that", "the"})
_LABEL_CHARS = re.compile(r"^[A-Za-z][A-Za-z\s'’-]*$")


@lru_cache(maxsize=1)
def _emotion_regex() -> re.Pattern:
    forms = sorted((f for f in surface_table() if f not in FREE_TEXT_EXCLUDED),
                   key=lambda f: (-len(f), f))  # longest first: "grossed out" before "grossed"
    return re.compile(r"(?<![\w'-])(" + "|".join(re.escape(f) for f in forms) + r")(?![\w-])",
                      re.I)


def looks_like_label_list(text: str, max_words: int = 3) -> bool:
    """True when every item is a short label ('happy, slightly worried'), not a sentence."""
    items = split_label_list(text)
    if not items:
        return False
    for item in items:
        words = item.split()
        if (len(words) > max_words or not _LABEL_CHARS.match(item)
                or any(w.lower() in _SENTENCE_WORDS for w in words)):
            return False
    return len(items) > 1 or len(items[0].split()) <= 2


def _negated(text: str, start: int) -> bool:
    clause_start = 0
    for m in _CLAUSE_BREAK.finditer(text, 0, start):
        clause_start = m.end()
    before = _WORD.findall(text[clause_start:start].lower().replace("’", "'"))
    return any(w in NEGATORS or w.endswith("n't") for w in before[-NEGATION_WINDOW:])


def free_text_labels(text: str) -> list[str]:
    """Canonical labels of the emotion words a running text uses, negated mentions left out."""
    table = surface_table()
    out: list[str] = []
    for m in _emotion_regex().finditer(text):
        label = table[m.group(1).lower()]
        if label not in out and not _negated(text, m.start()):
            out.append(label)
    return out


class LexiconExtractor:
    """Offline label extraction with the emotion_labels table (no model, deterministic)."""

    name = "lexicon"

    def extract(self, text) -> list[str]:
        text = "" if text is None else str(text)
        if looks_like_label_list(text):
            return labels_from_list(text)
        return free_text_labels(text)

    def extract_many(self, texts: Sequence, progress: bool = False) -> list[list[str]]:
        return [self.extract(t) for t in tqdm(texts, desc="extract labels", unit="text",
                                              disable=not progress)]


# ---- LLM ------------------------------------------------------------------------------------

PROMPT_VERSION = "emotion-labels-v1"
EXTRACTION_PROMPT = (
    "Read the description of a person's emotional state below. List every emotion the person "
    "is said to feel, as one line of lower-case English emotion words (for example: happy, "
    "excited, worried) separated by commas. Leave out emotions the description says the "
    "person does not feel. Answer with the list only; if no emotion is named, answer: none.\n\n"
    "Description: {text}")

_FENCE = re.compile(r"```[a-z]*\n?|```", re.I)
_THINK = re.compile(r"<think>.*?</think>", re.I | re.S)
_ANSWER_PREFIX = re.compile(r"^\s*(?:[A-Za-z]+\s){0,2}[A-Za-z]+\s*:\s*")


def extraction_prompt(text: str) -> str:
    return EXTRACTION_PROMPT.format(text=" ".join(str(text).split()))


def parse_llm_labels(response) -> list[str]:
    """Canonical labels of a model's answer: 'Emotions: Happy, excited.' -> ['happy', 'excited'].

    A list answer is read item by item (open-vocabulary words kept, 'not X' and 'none'
    dropped); an answer that is a sentence after all is scanned like free text.
    """
    text = _THINK.sub("", str(response or ""))
    text = _FENCE.sub("", text).strip()
    text = _ANSWER_PREFIX.sub("", text, count=1)
    if looks_like_label_list(text, max_words=4):
        return labels_from_list(text)
    return free_text_labels(text)


class LLMExtractor:
    """Labels from a language model's answer to EXTRACTION_PROMPT.

    `generate(prompts) -> answers` takes a list of user messages and returns one answer each,
    in order. Empty texts are not sent; they have no labels.
    """

    def __init__(self, generate: Callable[[list[str]], list[str]], name: str = "llm"):
        self.generate = generate
        self.name = name

    def extract_many(self, texts: Sequence, progress: bool = False) -> list[list[str]]:
        texts = ["" if t is None else str(t) for t in texts]
        todo = [i for i, t in enumerate(texts) if t.strip()]
        answers = list(self.generate([extraction_prompt(texts[i]) for i in todo])) if todo else []
        if len(answers) != len(todo):
            raise RuntimeError(f"generate returned {len(answers)} answers for {len(todo)} prompts")
        out: list[list[str]] = [[] for _ in texts]
        for i, answer in zip(todo, answers):
            out[i] = parse_llm_labels(answer)
        return out

    def extract(self, text) -> list[str]:
        return self.extract_many([text])[0]


class HFChatGenerator:
    """`generate(prompts)` with a local Hugging Face chat model (greedy, batched)."""

    def __init__(self, model, tokenizer, *, batch_size: int = 8, max_new_tokens: int = 64,
                 progress: bool = True):
        from my_affectgpt.models.base_llm import check_chat_template

        check_chat_template(tokenizer)
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_new_tokens, self.progress = batch_size, max_new_tokens, progress

    @classmethod
    def load(cls, spec, *, adapter=None, device: str = "cpu", dtype: str = "auto", **kwargs):
        """From a local model folder or an embedded model name (see models.base_llm)."""
        from my_affectgpt.models.base_llm import load_for_generation

        model, tokenizer = load_for_generation(spec, adapter, device=device, dtype=dtype)
        return cls(model, tokenizer, **kwargs)

    def __call__(self, prompts: list[str]) -> list[str]:
        from my_affectgpt.models.base_llm import render_prompt
        from my_affectgpt.models.generation import generate_texts

        rendered = [render_prompt(self.tokenizer, [{"role": "user", "content": p}])
                    for p in prompts]
        return generate_texts(self.model, self.tokenizer, rendered, batch_size=self.batch_size,
                              max_new_tokens=self.max_new_tokens, progress=self.progress,
                              desc="extract labels")


class EndpointError(InputError):
    """The configured endpoint gave no usable answer (shown to the user as one line)."""


_RETRY_STATUSES = frozenset({408, 429})


class ChatEndpoint:
    """`generate(prompts)` with an OpenAI-compatible chat-completions endpoint.

    The key comes from ``$api_key_env`` only; a loopback base_url (a local vLLM or Ollama) needs
    none, any other base_url does. Requests run on `workers` threads; 408, 429, 5xx and
    connection errors are retried `max_retries` times with jittered exponential backoff (or the
    server's Retry-After). With `cache_path`, answers are kept in SQLite so a rerun (another
    checkpoint with the same outputs, or an interrupted run) asks only for what is missing.
    """

    def __init__(self, base_url: str, model: str, *, api_key_env: str | None = None,
                 temperature: float = 0.0, max_tokens: int = 64, max_retries: int = 3,
                 backoff_base: float = 1.0, backoff_cap: float = 30.0, timeout_s: float = 60.0,
                 workers: int = 4, cache_path=None, progress: bool = True):
        parts = urllib.parse.urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(base_url, "base URL must be an http(s) URL such as "
                                       "http://127.0.0.1:8000/v1")
        if not model or not str(model).strip():
            raise InputError("--llm-model", "name the endpoint's model")
        if int(workers) < 1 or int(max_retries) < 0:
            raise InputError("--llm-workers", "workers must be >= 1 and retries >= 0")
        self.model = str(model)
        self.base_url = str(base_url).rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.shown_url = _display_url(self.base_url)
        self.api_key_env = api_key_env or None
        self.temperature, self.max_tokens = float(temperature), int(max_tokens)
        self.max_retries, self.timeout_s = int(max_retries), float(timeout_s)
        self.backoff_base, self.backoff_cap = float(backoff_base), float(backoff_cap)
        self.workers, self.progress = int(workers), progress

        loopback = is_loopback_url(self.base_url)
        key = os.environ.get(self.api_key_env, "").strip() if self.api_key_env else ""
        if not key and not loopback:
            need = f"set ${self.api_key_env}" if self.api_key_env else "name its variable"
            raise InputError(self.shown_url, f"no API key: {need} (a non-loopback endpoint "
                                             f"needs one)")
        self._api_key = key or None
        # Loopback servers are reached directly even when HTTP(S)_PROXY is set.
        self._opener = urllib.request.build_opener(
            *([urllib.request.ProxyHandler({})] if loopback else []))
        self._cache = AnswerCache(cache_path)
        self.http_requests = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"ChatEndpoint(model={self.model!r}, base_url={self.shown_url!r}, "
                f"api_key_env={self.api_key_env!r})")

    def close(self) -> None:
        self._cache.close()

    def cache_key(self, prompt: str) -> str:
        ident = [PROMPT_VERSION, self.model, prompt, self.temperature, self.max_tokens]
        return hashlib.sha256(json.dumps(ident, ensure_ascii=False).encode("utf-8")).hexdigest()

    def __call__(self, prompts: list[str]) -> list[str]:
        keys = {p: self.cache_key(p) for p in dict.fromkeys(prompts)}
        cached = self._cache.get_many(keys.values())
        answers = {p: cached[k] for p, k in keys.items() if k in cached}
        missing = [p for p in keys if p not in answers]
        bar = tqdm(total=len(keys), initial=len(answers), desc="extract labels (endpoint)",
                   unit="text", disable=not self.progress)
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=self.workers)
        try:
            futures = {pool.submit(self._ask, p, stop): p for p in missing}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    if fut.exception() is not None:
                        stop.set()  # the other workers give up at their next wait
                        raise fut.exception()
                    prompt = futures[fut]
                    answers[prompt] = fut.result()
                    self._cache.put(keys[prompt], answers[prompt], self.model, PROMPT_VERSION)
                    bar.update(1)
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        return [answers[p] for p in prompts]

    def _ask(self, prompt: str, stop: threading.Event) -> str:
        body = json.dumps({"model": self.model, "temperature": self.temperature,
                           "max_tokens": self.max_tokens,
                           "messages": [{"role": "user", "content": prompt}]}).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if stop.is_set():
                raise EndpointError(self.shown_url, "cancelled")
            with self._lock:
                self.http_requests += 1
            retry_after = None
            try:
                req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with self._opener.open(req, timeout=self.timeout_s) as resp:
                    return self._content(resp.read())
            except urllib.error.HTTPError as err:
                detail = self._detail(err)
                retry_after = _parse_retry_after(err.headers.get("Retry-After")
                                                 if err.headers else None)
                err.close()
                if err.code in (401, 403):
                    env = f"${self.api_key_env}" if self.api_key_env else "--llm-api-key-env"
                    raise EndpointError(self.shown_url, f"API key rejected (HTTP {err.code}); "
                                                        f"check {env}") from None
                if err.code not in _RETRY_STATUSES and err.code < 500:
                    raise EndpointError(self.shown_url, f"HTTP {err.code} for model "
                                                        f"{self.model!r}{detail}") from None
                last = f"HTTP {err.code}{detail}"
            except (OSError, http.client.HTTPException) as err:
                last = f"{type(getattr(err, 'reason', err)).__name__}: {getattr(err, 'reason', err)}"
            if attempt < self.max_retries:
                delay = retry_after if retry_after is not None else (
                    min(self.backoff_cap, self.backoff_base * 2 ** attempt) * random.uniform(0.5, 1))
                log.warning("%s from %s; retry %d/%d in %.1f s", last.split(" (")[0],
                            self.shown_url, attempt + 1, self.max_retries, delay)
                if stop.wait(delay):
                    raise EndpointError(self.shown_url, "cancelled")
        raise EndpointError(self.shown_url, f"gave up after {self.max_retries + 1} attempts; "
                                            f"last error: {last}")

    def _content(self, raw: bytes) -> str:
        try:
            content = json.loads(raw.decode("utf-8"))["choices"][0]["message"]["content"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError):
            raise EndpointError(self.shown_url, "reply has no choices[0].message.content") from None
        if not isinstance(content, str):
            raise EndpointError(self.shown_url, "reply content is not text")
        return content.strip()

    def _detail(self, err: urllib.error.HTTPError) -> str:
        """A short, key-free excerpt of the server's error message, or ''."""
        try:
            raw = err.read(2000).decode("utf-8", "replace")
            data = json.loads(raw)
            msg = data.get("error", data) if isinstance(data, dict) else raw
            msg = msg.get("message", raw) if isinstance(msg, dict) else str(msg)
        except Exception:
            return ""
        if self._api_key:
            msg = msg.replace(self._api_key, "***")
        msg = " ".join(msg.split())[:200]
        return f" ({msg})" if msg else ""
