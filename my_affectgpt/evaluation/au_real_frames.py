"""Real OpenFace frames for the AU Agent's report: sampled from folders the user names, never a
frame the adapter was trained or validated on.

A real frame is excluded when its video is in the training data (by name) or when its exact AU
values appear there (a copied or renamed file); the report lists what was used and what was
dropped, so the figures can be traced to frames.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..common.config import read_yaml
from ..common.errors import InputError, report
from .au_agent_eval import EvalItem

# Where a training run records its data: checkpoint-best holds the resolved training config.
RESOLVED_CONFIG = "au_agent_config.resolved.yaml"


@dataclass(frozen=True)
class RealSource:
    folder: Path
    frames_per_video: int = 8


def parse_source(values: list) -> RealSource:
    """`DIR` or `DIR N` (N frames sampled uniformly per video) from the command line."""
    if not 1 <= len(values) <= 2:
        raise InputError(None, "--real-openface-dir takes DIR [FRAMES_PER_VIDEO]")
    frames = 8
    if len(values) == 2:
        try:
            frames = int(values[1])
        except ValueError:
            frames = 0
        if frames < 1:
            raise InputError(None, f"--real-openface-dir {values[0]}: frames per video must be a "
                                   f"positive number, got {values[1]!r}")
    folder = Path(values[0])
    if not folder.is_dir():
        raise InputError(folder, "folder does not exist")
    return RealSource(folder, frames)


def training_files_of(adapter) -> list:
    """The train/val JSONL an adapter was trained with, from its resolved config (may be [])."""
    cfg = Path(adapter) / RESOLVED_CONFIG
    if not cfg.is_file():
        return []
    data = read_yaml(cfg).get("data") or {}
    return [Path(data[k]) for k in ("train", "val") if data.get(k)]


def _fingerprint(au: dict) -> tuple:
    return tuple(sorted((k, round(float(v), 2)) for k, v in au.items() if float(v) > 0))


def training_frames(files: list) -> tuple:
    """(video names, AU fingerprints of non-neutral frames) in the given instruction JSONL files."""
    videos, prints = set(), set()
    for path in files:
        if not Path(path).is_file():
            raise InputError(path, "training data file does not exist (needed to keep training "
                                   "frames out of the real-frame figures; pass --train-data)")
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    fp = _fingerprint(row.get("au") or {})
                except (ValueError, AttributeError, TypeError):
                    raise InputError(path, f"line {lineno}: not a sample of the AU instruction "
                                           f"dataset") from None
                videos.add(str(row.get("video", "")))
                if fp:
                    prints.add(fp)
    return videos, prints


def real_frame_items(sources: list, train_files: list) -> tuple:
    """(items, provenance): uniformly sampled frames of every usable video in the sources, minus
    any frame of the training data. provenance lists, per folder, the videos and frame numbers
    used and how many were excluded."""
    from ..au.frames import sampled_frame_aus
    from ..au.openface import find_openface_csvs, read_openface_csv
    from ..au.prompts import chat_messages

    train_videos, train_prints = training_frames(train_files)
    items, provenance = [], {"training_data": [str(p) for p in train_files], "sources": []}
    for src in sources:
        used, dropped_videos, dropped_frames = {}, [], 0
        found = find_openface_csvs(src.folder)
        if not found:
            raise InputError(src.folder, "no OpenFace CSVs found")
        for video, path in found:
            if video in train_videos:
                dropped_videos.append(video)
                continue
            try:
                track = read_openface_csv(path, video=video)
            except InputError as err:
                report(InputError(None, f"{err} (skipped)"))
                continue
            for f in sampled_frame_aus(track, src.frames_per_video):
                if _fingerprint(f.au) in train_prints:
                    dropped_frames += 1
                    continue
                items.append(EvalItem(f"{video}:{f.frame}", f.au, chat_messages(f.prompt), None))
                used.setdefault(video, []).append(f.frame)
        provenance["sources"].append({
            "folder": str(src.folder), "frames_per_video": src.frames_per_video,
            "videos": len(used), "frames": sum(len(v) for v in used.values()),
            "excluded_training_videos": dropped_videos, "excluded_training_frames": dropped_frames,
            "used": used})
    if not items:
        raise InputError(None, "no real frames left to evaluate (all were training frames?)")
    return items, provenance


def describe_provenance(provenance: dict) -> list:
    lines = []
    for s in provenance["sources"]:
        excl = len(s["excluded_training_videos"])
        lines.append(f"  {s['folder']}: {s['frames']} frames of {s['videos']} videos "
                     f"({s['frames_per_video']} per video, uniform); excluded as training data: "
                     f"{excl} videos, {s['excluded_training_frames']} frames")
    if not provenance["training_data"]:
        lines.append("  training data unknown (no resolved config beside the adapter and no "
                     "--train-data): training frames could not be excluded")
    return lines
