"""On-disk AU features, one pair of files per video (DESIGN.md §5).

    <root>/<video>.npy    float16 [T, D]
    <root>/<video>.json   frames, timestamps, prompts, descriptions, mask, status, the input CSV's
                          fingerprint, and the identity of everything that produced the features

Both files are written atomically (temp file + rename), the .npy first and the .json last: the
.json is the commit record. It names the sha256 of the .npy it belongs to, so a run killed between
the two renames, a file copied half-way or edited by hand is detected (`corrupt`), never read.

A video's features are `stale` when the stored identity differs from the current one (another
base model, adapter, prompt version, generation setting, text encoder, T or sampling method) or
when its OpenFace CSV changed since (size, then content hash when the mtime moved).
"""
from __future__ import annotations

import glob
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from my_affectgpt.common.atomic import atomic_write_bytes, atomic_write_text
from my_affectgpt.common.errors import InputError

FORMAT_VERSION = 1
STATUSES = ("done", "missing", "stale", "changed_input", "corrupt")


def identity_hash(identity: Mapping) -> str:
    """A short, stable digest of an identity dict (canonical JSON)."""
    blob = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


def csv_fingerprint(path) -> dict:
    p = Path(path)
    st = p.stat()
    h = hashlib.sha256()
    with p.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": h.hexdigest()}


def _npy_bytes(features: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, features, allow_pickle=False)
    return buf.getvalue()


def _dump_meta(meta: Mapping) -> str:
    """One top-level key per line, values compact: readable and diffable, not 200 lines long."""
    body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in meta.items())
    return "{\n" + body + "\n}\n"


def check_video_name(video: str) -> str:
    if (not isinstance(video, str) or not video or video.startswith(".") or "/" in video
            or "\\" in video or "\x00" in video):
        raise InputError(video, "not a usable video name for a feature file")
    return video


class FeatureStore:
    """Reads and writes the feature files of one folder for one current identity."""

    def __init__(self, root, identity: Mapping | None = None):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise InputError(self.root, "feature folder is a file")
        self.identity = dict(identity) if identity is not None else None
        self.identity_hash = identity_hash(self.identity) if identity is not None else None

    def npy_path(self, video: str) -> Path:
        return self.root / f"{check_video_name(video)}.npy"

    def json_path(self, video: str) -> Path:
        return self.root / f"{check_video_name(video)}.json"

    # -- reading --------------------------------------------------------------------------------

    def _read(self, video: str):
        """(features, meta) or raise ValueError naming what is wrong; FileNotFoundError if absent."""
        jpath, npath = self.json_path(video), self.npy_path(video)
        try:
            meta = json.loads(jpath.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"unreadable meta ({err})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            raise ValueError("meta has an unknown format")
        try:
            raw = npath.read_bytes()
        except FileNotFoundError:
            raise ValueError("features file missing") from None
        if hashlib.sha256(raw).hexdigest() != meta.get("features", {}).get("sha256"):
            raise ValueError("features file does not match its meta (torn write or edit)")
        try:
            feats = np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"unreadable features ({err})") from None
        if feats.dtype != np.float16 or feats.ndim != 2 or list(feats.shape) != meta["features"].get("shape"):
            raise ValueError(f"features have shape {feats.shape} {feats.dtype}, meta says "
                             f"{meta['features'].get('shape')} float16")
        return feats, meta

    def status(self, video: str, csv=None) -> str:
        """done | missing | stale | changed_input | corrupt (see the module docstring)."""
        try:
            _, meta = self._read(video)
        except FileNotFoundError:
            return "missing"
        except ValueError:
            return "corrupt"
        if self.identity_hash is not None and meta.get("identity_hash") != self.identity_hash:
            return "stale"
        if csv is not None and not self._same_input(meta.get("input", {}), csv):
            return "changed_input"
        return "done"

    @staticmethod
    def _same_input(stored: Mapping, csv) -> bool:
        try:
            st = Path(csv).stat()
        except OSError:
            return True  # the CSV is gone: keep what was computed from it
        if stored.get("size") != st.st_size:
            return False
        if stored.get("mtime_ns") == st.st_mtime_ns:
            return True
        return csv_fingerprint(csv)["sha256"] == stored.get("sha256")  # touched or copied

    def load(self, video: str, *, allow_stale: bool = False):
        """(features float16 [T, D], meta). InputError when missing, corrupt or stale."""
        try:
            feats, meta = self._read(video)
        except FileNotFoundError:
            raise InputError(self.json_path(video), "no AU features for this video (run "
                                                    "`python -m my_affectgpt.models.au_agent extract`)") from None
        except ValueError as err:
            raise InputError(self.json_path(video), f"corrupt AU features: {err}") from None
        if (not allow_stale and self.identity_hash is not None
                and meta.get("identity_hash") != self.identity_hash):
            raise InputError(self.json_path(video), "stale AU features: made by another model, "
                                                    "adapter, prompt version or encoder; re-run extract")
        return feats, meta

    # -- writing --------------------------------------------------------------------------------

    def save(self, video: str, features: np.ndarray, meta: Mapping) -> None:
        """Write <video>.npy then <video>.json, each atomically; the json commits the pair."""
        if self.identity is None:
            raise ValueError("a FeatureStore without identity cannot write")
        features = np.ascontiguousarray(features, dtype=np.float16)
        if features.ndim != 2:
            raise ValueError(f"features must be [T, D], got shape {features.shape}")
        raw = _npy_bytes(features)
        self.clean_temp(video)
        full = dict(meta)
        full.update({"format": FORMAT_VERSION, "video": video,
                     "features": {"file": self.npy_path(video).name, "shape": list(features.shape),
                                  "dtype": "float16", "sha256": hashlib.sha256(raw).hexdigest()},
                     "identity_hash": self.identity_hash, "identity": self.identity})
        atomic_write_bytes(self.npy_path(video), raw)
        atomic_write_text(self.json_path(video), _dump_meta(full))

    def clean_temp(self, video: str) -> int:
        """Remove temp files a killed writer of this video left behind; returns how many.

        Only this video's temp files: under `accelerate launch` other processes write other
        videos into the same folder at the same time.
        """
        n = 0
        for suffix in ("npy", "json"):
            for p in self.root.glob(f".{glob.escape(check_video_name(video))}.{suffix}.*.tmp"):
                try:
                    os.unlink(p)
                    n += 1
                except FileNotFoundError:
                    pass
        return n
