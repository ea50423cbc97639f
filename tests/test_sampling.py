"""Frame sampling: only usable frames, uniform spread, peak frames spread apart in time order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from my_affectgpt.au.facs import AU_COLUMNS
from my_affectgpt.au.openface import AUTrack
from my_affectgpt.au.sampling import sample_frames


def track(n=100, usable=None, peaks=()):
    values = np.zeros((n, len(AU_COLUMNS)))
    for i in peaks:
        values[i, 0] = 4.0
    frames = pd.DataFrame({"frame": np.arange(1, n + 1), "timestamp": np.arange(n) / 30,
                           "confidence": 0.95, "success": np.ones(n, bool) if usable is None else usable})
    frames = pd.concat([frames, pd.DataFrame(values, columns=list(AU_COLUMNS))], axis=1)
    return AUTrack(video="t", path=None, face_id=0, frames=frames)


def test_uniform_spreads_over_usable_frames_only():
    usable = np.ones(100, bool)
    usable[40:60] = False
    idx = sample_frames(track(usable=usable), 8, "uniform")
    assert len(idx) == 8 and len(set(idx)) == 8
    assert usable[idx].all() and (np.diff(idx) > 0).all()
    assert idx[0] < 15 and idx[-1] > 85


def test_fewer_usable_than_requested_returns_them_all():
    usable = np.zeros(50, bool)
    usable[[3, 9, 20]] = True
    for method in ("uniform", "peak"):
        assert list(sample_frames(track(50, usable), 8, method)) == [3, 9, 20]


def test_peak_takes_the_most_active_frames_spread_apart_in_time_order():
    apex = list(range(60, 70))  # one long apex must not take every slot
    t = track(peaks=apex + [5, 30])
    t.frames.loc[65, "AU01_r"] = 5.0
    idx = sample_frames(t, 4, "peak")
    assert list(idx) == sorted(idx)
    assert 65 in idx and 5 in idx and 30 in idx
    assert sum(i in apex for i in idx) == 1   # the rest of the apex is too close to 65


def test_peak_never_picks_failed_frames():
    usable = np.ones(100, bool)
    usable[10:20] = False
    idx = sample_frames(track(usable=usable, peaks=range(10, 20)), 8, "peak")
    assert usable[idx].all()


def test_bad_arguments():
    with pytest.raises(ValueError):
        sample_frames(track(), 8, "random")
    with pytest.raises(ValueError):
        sample_frames(track(), 0)
