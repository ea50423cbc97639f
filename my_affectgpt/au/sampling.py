"""Choose T frames of a track to describe: `uniform` in time, or `peak` AU activity.

Only usable frames are ever chosen. With fewer than T usable frames every usable frame is
returned once (callers decide how to fill up to T; see the AU Agent runtime).
"""
from __future__ import annotations

import numpy as np

from .facs import R_COLUMNS
from .openface import AUTrack

SAMPLING_METHODS = ("uniform", "peak")


def sample_frames(track: AUTrack, n: int = 8, method: str = "uniform") -> np.ndarray:
    """Row indices into `track.frames`, sorted in time order."""
    if method not in SAMPLING_METHODS:
        raise ValueError(f"unknown sampling method {method!r}; choose from {SAMPLING_METHODS}")
    if n < 1:
        raise ValueError("number of frames must be >= 1")
    usable = np.flatnonzero(track.usable)
    if len(usable) <= n:
        return usable
    if method == "uniform":
        # Centres of n equal segments of the usable frames: never both ends, always distinct.
        pos = ((np.arange(n) + 0.5) * len(usable) / n).astype(int)
        return usable[pos]
    return _peak(track, usable, n)


def _peak(track: AUTrack, usable: np.ndarray, n: int) -> np.ndarray:
    """The n most active usable frames, greedily kept at least `gap` usable frames apart.

    The gap starts at half an even spacing and halves whenever it blocks filling all n slots,
    so a single long apex does not take every sample.
    """
    total = np.nan_to_num(track.frames[list(R_COLUMNS)].to_numpy(float)[usable]).sum(axis=1)
    order = np.argsort(-total, kind="stable")  # ties: earlier frame first
    gap = max(1, len(usable) // (2 * n))
    while True:
        chosen: list = []
        for i in order:
            if all(abs(i - j) >= gap for j in chosen):
                chosen.append(i)
                if len(chosen) == n:
                    return usable[np.sort(chosen)]
        gap //= 2  # gap 1 always fills n slots since len(usable) > n
