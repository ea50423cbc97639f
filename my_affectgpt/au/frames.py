"""Sampled frames of a track with their AU state: the unit that teachers and the agent describe."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .facs import AU_COLUMNS, DEFAULT_BANDS, IntensityBands, active_aus, au_state_text
from .openface import AUTrack
from .sampling import sample_frames


@dataclass(frozen=True)
class FrameAU:
    frame: int
    timestamp: float
    au: dict        # non-zero AU columns of the frame, raw values rounded to 2 decimals
    active: dict    # facs.active_aus(): {code: rounded value}
    prompt: str     # canonical AU text (DESIGN.md §3), the cache key of a description


def frame_aus(track: AUTrack, rows, bands: IntensityBands = DEFAULT_BANDS) -> list:
    """FrameAU for each row index. `au` keeps values rounded to 2 decimals, and `active` is
    computed from those, so anyone re-deriving it from a stored sample gets the same state."""
    values = track.frames[list(AU_COLUMNS)].to_numpy(float)
    frames = track.frames["frame"].to_numpy()
    times = track.frames["timestamp"].to_numpy(float)
    out = []
    for i in rows:
        au = {}
        for c, v in zip(AU_COLUMNS, values[i].tolist()):
            if not math.isnan(v):
                v = round(v, 2)
                if v > 0:
                    au[c] = v
        active = active_aus(au, bands)
        out.append(FrameAU(frame=int(frames[i]), timestamp=round(float(times[i]), 3),
                           au=au, active=active, prompt=au_state_text(active)))
    return out


def sampled_frame_aus(track: AUTrack, n: int = 8, method: str = "uniform",
                      bands: IntensityBands = DEFAULT_BANDS) -> list:
    return frame_aus(track, sample_frames(track, n, method), bands)
