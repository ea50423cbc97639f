"""A persistent cache of finished answers (not an attention KV cache, see models/generation.py):
an SQLite table of answers keyed by a sha256 hex digest.

Used by the API teacher (answers of a remote model) and the AU Agent runtime (descriptions of a
local model). WAL mode lets other processes read while one writes, and each put commits, so the
answers survive a killed run and several threads or processes (one per GPU) may share one file.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable

from .errors import InputError

# SQLite's default limit on bound parameters is 999 in old builds; stay well below it.
_CHUNK = 500


class AnswerCache:
    """key -> text, with the model and prompt version that produced each answer.

    ``path=None`` keeps the cache in memory for this object only. One connection is shared by
    the threads of this object behind a lock.
    """

    _SCHEMA = ("CREATE TABLE IF NOT EXISTS responses ("
               "key TEXT PRIMARY KEY, response TEXT NOT NULL, model TEXT NOT NULL, "
               "prompt_version TEXT NOT NULL, created_at REAL NOT NULL)")

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        target = ":memory:"
        if self.path is not None:
            if self.path.is_dir():
                raise InputError(self.path, "is a folder; the cache must be a file path")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target = str(self.path)
        try:
            # timeout: how long to wait for another process's write lock before failing.
            self._conn = sqlite3.connect(target, timeout=60.0, check_same_thread=False,
                                         isolation_level=None)
            if self.path is not None:
                self._conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable against process kills in WAL mode (not power loss).
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(self._SCHEMA)
        except sqlite3.DatabaseError as err:
            raise InputError(path, f"cannot use as an SQLite cache ({err})") from None

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        keys = list(keys)
        out: dict[str, str] = {}
        with self._lock:
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i:i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk)
                out.update(rows.fetchall())
        return out

    def get(self, key: str) -> str | None:
        return self.get_many([key]).get(key)

    def put(self, key: str, response: str, model: str, prompt_version: str) -> None:
        self.put_many([(key, response)], model, prompt_version)

    def put_many(self, items: Iterable[tuple[str, str]], model: str, prompt_version: str) -> None:
        """Store many answers in one transaction (one commit, not one per answer)."""
        now = time.time()
        rows = [(k, v, model, prompt_version, now) for k, v in items]
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO responses (key, response, model, prompt_version, "
                    "created_at) VALUES (?, ?, ?, ?, ?)", rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "AnswerCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
