"""Probe inputs that show what an AU describer does on clean, known states: every EMFACS
prototype at its apex, each single AU at each intensity band, and neutral."""
from __future__ import annotations

from ..au.facs import (DEFAULT_BANDS, EMOTION_PROTOTYPES, INTENSITY_CODES, PRESENCE_ONLY,
                       IntensityBands)


def band_midpoints(bands: IntensityBands = DEFAULT_BANDS) -> dict:
    """A representative value inside each band: {band: value}."""
    lows = (bands.active,) + tuple(bands.edges)
    highs = tuple(bands.edges) + (5.0,)
    return {name: round((lo + hi) / 2, 1) for name, lo, hi in zip(bands.names, lows, highs)}


def probes(bands: IntensityBands = DEFAULT_BANDS) -> list:
    """[(label, au)] with `au` in OpenFace column form, e.g. ("AU12 marked", {"AU12_r": 2.5})."""
    out = [("neutral", {})]
    for emotion, proto in EMOTION_PROTOTYPES.items():
        if proto:
            out.append((f"prototype {emotion}", {f"{c}_r": v for c, v in proto.items()}))
    for code in INTENSITY_CODES:
        for band, value in band_midpoints(bands).items():
            out.append((f"{code} {band}", {f"{code}_r": value}))
    for code in sorted(PRESENCE_ONLY):
        out.append((f"{code} present", {f"{code}_c": 1.0}))
    return out
