"""Read OpenFace 2.x output into one canonical table per video, find CSVs, run FeatureExtraction.

Canonical form (DESIGN.md §2): one face track per video with columns `frame, timestamp,
confidence, success` and the 35 AU columns as floats. `success` is False for every frame that
must never be sampled or described: tracking lost, confidence below the threshold, or an AU
value that is missing, non-numeric or NaN. AU columns absent from the file are NaN (unknown).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..common.errors import InputError
from .facs import AU_COLUMNS, R_COLUMNS

DEFAULT_MIN_CONFIDENCE = 0.8
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv", ".mpg", ".mpeg", ".m4v")
_META = ("frame", "face_id", "timestamp", "confidence", "success")
_SNIFF_BYTES = 64 * 1024


@dataclass
class AUTrack:
    """One face track of one video, in canonical form."""
    video: str
    path: Path
    face_id: int
    frames: pd.DataFrame                 # frame, timestamp, confidence, success, 35 AU columns
    n_faces: int = 1
    missing_columns: tuple = field(default_factory=tuple)  # AU columns the file lacks

    @property
    def usable(self) -> np.ndarray:
        return self.frames["success"].to_numpy(bool)

    def au_dict(self, i: int) -> dict:
        """AU values of row i as {column: float}, NaN for columns the file lacks."""
        row = self.frames.iloc[i]
        return {c: float(row[c]) for c in AU_COLUMNS}


def _read_header(path: Path) -> list:
    """First line of the file as stripped column names, after sniffing for common mistakes."""
    if not path.exists():
        raise InputError(path, "file does not exist")
    if not path.is_file():
        raise InputError(path, "not a file")
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head.strip():
        raise InputError(path, "empty file")
    if b"\x00" in head:
        raise InputError(path, "binary file, not an OpenFace CSV")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        # A multi-byte character cut at the sniff boundary is fine; garbage early on is not.
        try:
            text = head[:-4].decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(path, "not UTF-8 text, not an OpenFace CSV") from None
    header = text.splitlines()[0]
    columns = [c.strip() for c in header.split(",")]
    if len(columns) == 1:
        for delim, name in (("\t", "tab"), (";", "';'"), ("|", "'|'")):
            if delim in header:
                raise InputError(path, f"wrong delimiter ({name}); OpenFace CSVs are comma-separated")
    if not any(c in R_COLUMNS for c in columns):
        raise InputError(path, "no AU intensity columns (AU01_r ... AU45_r); is this OpenFace output?")
    return columns


def read_openface_csv(path, *, face_id: int | None = None,
                      min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                      video: str | None = None) -> AUTrack:
    """Read one OpenFace CSV (any variant of DESIGN.md §2) and pick one face track.

    The default track is the face with the most usable frames; `face_id` requests one. Raises
    InputError for files that cannot be used, including a track with no usable frame.
    """
    path = Path(path)
    columns = _read_header(path)
    wanted = [i for i, c in enumerate(columns) if c in _META or c in AU_COLUMNS]
    try:
        raw = pd.read_csv(path, header=None, skiprows=1, usecols=wanted, skipinitialspace=True,
                          engine="c", on_bad_lines="skip", encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise InputError(path, "header only, no frames") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise InputError(path, f"cannot parse as CSV ({str(err).splitlines()[0]})") from None
    if raw.empty:
        raise InputError(path, "header only, no frames")
    cols = {}
    for idx, series in raw.items():  # first occurrence wins if a name repeats
        name = columns[idx]
        if name in cols:
            continue
        if series.dtype.kind not in "iufb":  # a stray word or '-nan': coerce, NaN marks failure
            series = pd.to_numeric(series.astype(str).str.strip(), errors="coerce")
        cols[name] = series.to_numpy(float)
    n = len(raw)
    frame = cols.get("frame", np.arange(1, n + 1, dtype=float))
    faces = np.nan_to_num(cols["face_id"], nan=-1) if "face_id" in cols else np.zeros(n)
    present_au = [c for c in AU_COLUMNS if c in cols]
    au = np.full((n, len(AU_COLUMNS)), np.nan)
    for j, c in enumerate(AU_COLUMNS):
        if c in cols:
            au[:, j] = cols[c]
    ok = ~np.isnan(au[:, [AU_COLUMNS.index(c) for c in present_au]]).any(axis=1) & ~np.isnan(frame)
    if "success" in cols:
        ok &= np.nan_to_num(cols["success"]) >= 0.5
    if "confidence" in cols:
        ok &= np.nan_to_num(cols["confidence"]) >= min_confidence

    ids = np.unique(faces[faces >= 0]) if (faces >= 0).any() else np.unique(faces)
    if face_id is None:
        counts = [int(ok[faces == f].sum()) for f in ids]
        chosen = int(ids[int(np.argmax(counts))])  # ties go to the lowest id
    else:
        if not (faces == face_id).any():
            raise InputError(path, f"face_id {face_id} not in file (faces: {[int(f) for f in ids]})")
        chosen = int(face_id)
    sel = faces == chosen
    frame = np.nan_to_num(frame[sel], nan=-1).astype(np.int64)
    order = np.argsort(frame, kind="stable")
    keep = order[np.r_[True, np.diff(frame[order]) != 0]]  # a repeated frame number: keep first
    fps_guess = 30.0  # only used when an old file has no timestamp column
    timestamp = cols["timestamp"][sel] if "timestamp" in cols else (frame - 1) / fps_guess
    confidence = cols["confidence"][sel] if "confidence" in cols else np.ones(int(sel.sum()))
    values = np.clip(au[sel], 0.0, 5.0)  # NaN stays NaN
    table = pd.DataFrame({"frame": frame[keep], "timestamp": timestamp[keep],
                          "confidence": confidence[keep], "success": ok[sel][keep]})
    table = pd.concat([table, pd.DataFrame(values[keep], columns=list(AU_COLUMNS))], axis=1)
    n_faces = len(ids)

    n_ok = int(table["success"].sum())
    if n_ok == 0:
        raise InputError(path, f"all {len(table)} frames failed (success=0, confidence < "
                               f"{min_confidence} or non-numeric AU values)")
    return AUTrack(video=video or video_name(path), path=path, face_id=chosen, frames=table,
                   n_faces=n_faces,
                   missing_columns=tuple(c for c in AU_COLUMNS if c not in present_au))


def video_name(csv_path: Path) -> str:
    return Path(csv_path).stem


def find_openface_csvs(root) -> list:
    """Every OpenFace CSV under `root`, as sorted (video, path) pairs.

    Accepts MER-Factory's `<root>/<video>/<video>.csv` and a flat `<root>/<video>.csv`; other
    CSVs (labels.csv, files in unrelated sub-folders) are ignored.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "folder does not exist" if not root.exists() else "not a folder")
    found = {}
    for p in root.glob("*/*.csv"):
        if p.stem == p.parent.name:
            found[p.stem] = p
    for p in root.glob("*.csv"):
        if p.stem.lower() in ("labels", "label") or p.stem in found:
            continue
        found[p.stem] = p
    return sorted(found.items())


# --- running OpenFace ------------------------------------------------------------------------

def resolve_openface_bin(flag: str | None = None, config_value: str | None = None) -> Path:
    """FeatureExtraction from a flag, then the config, then $OPENFACE_BIN, then PATH."""
    for source, value in (("--openface-bin", flag), ("config openface_bin", config_value),
                          ("$OPENFACE_BIN", os.environ.get("OPENFACE_BIN"))):
        if value:
            p = Path(value).expanduser()
            if p.is_file() and os.access(p, os.X_OK):
                return p
            raise InputError(p, f"OpenFace binary from {source} does not exist or is not executable")
    found = shutil.which("FeatureExtraction")
    if found:
        return Path(found)
    raise InputError(None, "OpenFace FeatureExtraction not found: pass --openface-bin, set "
                           "openface_bin in the config, or export OPENFACE_BIN")


def openface_csv_path(out_dir, video_path) -> Path:
    """Where run_openface puts a video's CSV: MER-Factory layout `<out>/<video>/<video>.csv`."""
    stem = Path(video_path).stem
    return Path(out_dir) / stem / f"{stem}.csv"


def run_openface(video_path, out_dir, binary: Path, extra_args=()) -> Path:
    """Run FeatureExtraction on one video, unless its CSV exists. Returns the CSV path.

    OpenFace writes into a temp folder that is renamed into place only after success, so a
    killed run never leaves a CSV that a later run would mistake for finished.
    """
    video_path, out_dir = Path(video_path), Path(out_dir)
    target = openface_csv_path(out_dir, video_path)
    if target.exists():
        return target
    if not video_path.is_file():
        raise InputError(video_path, "video does not exist")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{video_path.stem}.", suffix=".tmp"))
    try:
        cmd = [str(binary), "-f", str(video_path), "-out_dir", str(tmp), "-aus", *extra_args]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        produced = tmp / f"{video_path.stem}.csv"
        if proc.returncode != 0 or not produced.is_file():
            last = (proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
            raise InputError(video_path, f"OpenFace failed (exit {proc.returncode}): {last[0]}")
        if target.parent.exists():  # a folder from MER-Factory or an older run: keep its files
            for p in tmp.iterdir():
                os.replace(p, target.parent / p.name)
        else:
            os.replace(tmp, target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def find_videos(path) -> list:
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(path, "video or folder does not exist")
    return sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
