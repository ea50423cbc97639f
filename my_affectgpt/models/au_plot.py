"""A picture of one video for people: what OpenFace measured, which frames the agent described.

Top: AU intensities over time, one line per AU that is active somewhere in the video, frames
where tracking failed shaded (their values are not drawn: OpenFace writes zeros or stale values
there). The sampled frames are marked with their slot numbers. Below: the description of each
sampled frame. Uses matplotlib's object API (no pyplot state, no display needed).
"""
from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

from my_affectgpt.au.facs import ACTION_UNITS, DEFAULT_BANDS, INTENSITY_CODES, IntensityBands
from my_affectgpt.au.frames import FrameAU
from my_affectgpt.au.openface import AUTrack
from my_affectgpt.common.atomic import atomic_write_bytes

WRAP = 150  # characters per description line


def _runs(mask: np.ndarray):
    """(start, end) index pairs of the True runs of a boolean array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def plot_video(track: AUTrack, slots: Sequence[FrameAU], descriptions: Sequence[str], out, *,
               bands: IntensityBands = DEFAULT_BANDS, title: str | None = None) -> Path:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    table = track.frames
    t = table["timestamp"].to_numpy(float)
    ok = table["success"].to_numpy(bool)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0

    lines = []
    for k, (s, d) in enumerate(zip(slots, descriptions), 1):
        head = f"{k}. t={s.timestamp:.3f}s frame {s.frame}: "
        body = textwrap.wrap(d or "(empty)", WRAP - len(head)) or [""]
        lines.append(head + body[0])
        lines += [" " * len(head) + b for b in body[1:]]
    text_h = 0.14 * len(lines) + 0.2               # inches, monospace 8 pt
    top, plot_h, below = 0.5, 3.4, 0.6               # title, axes, x label (inches)
    height = top + plot_h + below + text_h
    fig = Figure(figsize=(13, height), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.06, (text_h + below) / height, 0.72, plot_h / height))
    colors = [c for m in ("tab20", "tab20b") for c in matplotlib.colormaps[m].colors]
    drawn = 0
    for code in INTENSITY_CODES:
        v = table[f"{code}_r"].to_numpy(float)
        if np.all(np.isnan(v)) or np.nanmax(np.where(ok, v, np.nan), initial=0.0) < bands.active:
            continue
        ax.plot(t, np.where(ok, v, np.nan), lw=1.3, color=colors[drawn % len(colors)],
                label=f"{code} {ACTION_UNITS[code].name}")
        drawn += 1
    for i, (a, b) in enumerate(_runs(~ok)):
        ax.axvspan(t[a] - step / 2, t[b] + step / 2, color="0.6", alpha=0.35, lw=0,
                   label="tracking failed" if i == 0 else None)
    ax.axhline(bands.active, color="0.4", ls=":", lw=0.8, label=f"active threshold {bands.active:g}")
    marks: dict = {}
    for k, s in enumerate(slots, 1):
        marks.setdefault(s.timestamp, []).append(str(k))
    for ts, ks in marks.items():
        ax.axvline(ts, color="k", ls="--", lw=0.9, alpha=0.7)
        ax.annotate(",".join(ks), (ts, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(t.min() - step, t.max() + step)
    ax.set_ylim(0, 5.2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("AU intensity (0-5)")
    if drawn == 0:
        ax.text(0.5, 0.5, "no AU reaches the active threshold", transform=ax.transAxes, ha="center")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(title or track.video, fontsize=11, pad=16)

    fig.text(0.06, text_h / height, "\n".join(lines), va="top", ha="left", family="monospace",
             fontsize=8)

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    out = Path(out)
    atomic_write_bytes(out, buf.getvalue())
    return out
