"""The AU-values route of AffectGPT (`model.au_mode: values | hybrid`): per-frame AU vectors.

    OpenFace CSV --same T frames as the AU Agent--> values [T, 18] --AUValueProjection--> [T, W]
                                                    (hybrid: ++ AU Agent text features [T, D])

A frame's vector is the 17 OpenFace intensities `AU01_r ... AU45_r` (facs.R_COLUMNS order, 0..5)
then the presence `AU28_c` (0/1; AU28 has no intensity): VALUE_COLUMNS. A value the file lacks
is 0. Vectors hold the raw values (readable in a batch); the projection scales them (/5).

Frames. `sampled_rows` is the AU Agent's own rule (AUAgent.plan_video calls it): the track's
usable frames sampled by `au_sampling` (uniform | peak) to `au_num_frames`, a video with fewer
usable frames upsampled to T by nearest frame. `sample_values` applies it without any AU Agent
or text encoder (au_mode values); `values_at_frames` reads the frames a `<video>.json` of the
feature store lists (au_mode hybrid), so values and text features describe the same frames even
for a store made elsewhere. A video with no usable frame gives zeros and valid False (masked, as
in the other modes).

Where the values come from. The dataset reads them from the OpenFace CSV in `__getitem__` (a CSV
of a few hundred rows reads in milliseconds; nothing is cached), and `--video` inference calls the
same two functions: training and inference read identical values by construction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from my_affectgpt.au.facs import R_COLUMNS
from my_affectgpt.au.frames import frame_aus
from my_affectgpt.au.openface import AUTrack, read_openface_csv
from my_affectgpt.au.sampling import sample_frames
from my_affectgpt.common.errors import InputError

VALUE_COLUMNS = R_COLUMNS + ("AU28_c",)
NUM_AU_VALUES = len(VALUE_COLUMNS)          # 18
NUM_INTENSITIES = len(R_COLUMNS)            # 17: scaled by MAX_INTENSITY; AU28_c is 0/1 already
MAX_INTENSITY = 5.0


# ---- frames ---------------------------------------------------------------------------------

def sampled_rows(track: AUTrack, num_frames: int, sampling: str) -> tuple[list, str]:
    """(T row indices of `track.frames` in time order, status ok | few_frames): the AU Agent's
    frame rule (module docstring)."""
    rows = [int(r) for r in sample_frames(track, num_frames, sampling)]
    n = len(rows)
    if 0 < n < num_frames:  # nearest-frame upsampling, time order kept
        rows = [rows[(k * n) // num_frames] for k in range(num_frames)]
    return rows, "ok" if n >= num_frames else "few_frames"


def is_empty_video_error(err: InputError) -> bool:
    """A CSV that is OpenFace output but has no usable frame (masked, not an error)."""
    # openface.read_openface_csv raises a plain InputError for these two cases; matching its
    # wording is the only way to tell them apart from unreadable files until it has a subclass.
    return "frames failed" in err.cause or "header only" in err.cause


def track_values(track: AUTrack, rows: Sequence[int]) -> np.ndarray:
    """float32 [len(rows), 18] of VALUE_COLUMNS at `rows`; absent values (NaN) are 0."""
    values = track.frames[list(VALUE_COLUMNS)].to_numpy(np.float32)[list(rows)]
    return np.nan_to_num(values, nan=0.0).reshape(len(rows), NUM_AU_VALUES)


@dataclass
class AUValues:
    values: np.ndarray                 # float32 [T, 18]
    valid: bool                        # False: no usable frame (zeros, masked)
    status: str                        # ok | few_frames | empty
    frames: list = field(default_factory=list)
    timestamps: list = field(default_factory=list)
    states: list = field(default_factory=list)   # canonical AU text per frame (DESIGN.md §3)


def _read_track(csv: Path, config, video: str | None, face_id: int | None = None) -> AUTrack | None:
    try:
        return read_openface_csv(csv, min_confidence=config.min_confidence, video=video, face_id=face_id)
    except InputError as err:
        if is_empty_video_error(err):
            return None
        raise


def sample_values(csv, config, video: str | None = None) -> AUValues:
    """AU vectors of one OpenFace CSV at the frames the AU Agent would describe. `config` is an
    AUAgentConfig (num_frames, sampling, min_confidence, bands: only the frame rule is read).
    InputError for a file that is not an OpenFace CSV."""
    csv, T = Path(csv), int(config.num_frames)
    track = _read_track(csv, config, video)
    if track is None:
        return AUValues(np.zeros((T, NUM_AU_VALUES), np.float32), False, "empty")
    rows, status = sampled_rows(track, T, config.sampling)
    slots = frame_aus(track, rows, config.bands)
    return AUValues(track_values(track, rows), True, status, [s.frame for s in slots],
                    [s.timestamp for s in slots], [s.prompt for s in slots])


def values_at_frames(csv, config, frames: Sequence[int], num_frames: int, *,
                     face_id: int | None = None, video: str | None = None) -> np.ndarray:
    """float32 [num_frames, 18] at the frame numbers a feature store's `<video>.json` lists (its
    `frames` and `face_id`); zeros when it lists none (a masked video). InputError when a listed
    frame is not in the CSV (the CSV changed since the features were made)."""
    if not frames:
        return np.zeros((num_frames, NUM_AU_VALUES), np.float32)
    if len(frames) != num_frames:
        raise InputError(csv, f"the AU features list {len(frames)} frames, expected {num_frames}")
    track = _read_track(Path(csv), config, video, face_id)
    if track is None:
        raise InputError(csv, "no usable frame, but the AU features list frames (the CSV changed?)")
    row_of = {int(f): i for i, f in enumerate(track.frames["frame"].tolist())}
    missing = [int(f) for f in frames if int(f) not in row_of]
    if missing:
        raise InputError(csv, f"frame(s) {missing[:3]} of the AU features are not in the CSV "
                              "(it changed since the features were made)")
    return track_values(track, [row_of[int(f)] for f in frames])


# ---- projection -----------------------------------------------------------------------------

class AUValueProjection(nn.Module):
    """[B, T, 18] values (hybrid: and [B, T, D] text features) -> [B, T, width], the AU Q-Former's
    input. Intensities are scaled to 0..1 (/5, clamped), AU28's presence kept; hybrid text
    features get a LayerNorm first (their scale is the text encoder's). Linear-GELU-Linear."""

    def __init__(self, width: int, text_dim: int = 0):
        super().__init__()
        self.text_dim = int(text_dim)
        self.text_norm = nn.LayerNorm(self.text_dim) if self.text_dim else None
        self.mlp = nn.Sequential(nn.Linear(NUM_AU_VALUES + self.text_dim, width), nn.GELU(),
                                 nn.Linear(width, width))
        self.out_dim = int(width)

    def forward(self, values: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        scale = values.new_ones(NUM_AU_VALUES)
        scale[:NUM_INTENSITIES] = 1.0 / MAX_INTENSITY
        x = (values.clamp(0.0, MAX_INTENSITY) * scale).clamp(max=1.0)
        if self.text_norm is not None:
            x = torch.cat([x, self.text_norm(text)], dim=-1)
        return self.mlp(x)
