"""AU intensity time series of one simulated face: the profiles behind `simulate.py`.

- `realistic` (default): what OpenFace reports on real faces. A person's resting face already
  carries several faint, noisy AUs (OpenFace's AU07, AU04, AU10, AU14 and AU06 sit at 0.5-1.5 on
  many neutral faces), drifting slowly; a talking mouth opens and closes AU25/AU26 at syllable
  rate; blinks spike AU45; the emotion's prototype comes on top, mostly subtle and partial.
  Calibrated against real OpenFace output (`python -m my_affectgpt.au.simulate stats`,
  bench/RESULTS.md): 5-6 active AUs in a typical frame, up to 13; ~38% of active values faint.
- `clean`: textbook prototypes over a near-zero baseline (2-5 strong AUs): the simulator until
  2026-12, kept for tests and demos in which the AUs alone must carry the emotion.

Each function returns (intensities (n, 17) clipped to 0..5, apex scale, phase boundaries).
"""
from __future__ import annotations

import math

import numpy as np

from . import facs

PROFILES = ("realistic", "clean")
AU_MAX = 5.0
_K = len(facs.INTENSITY_CODES)
_IDX = {code: i for i, code in enumerate(facs.INTENSITY_CODES)}
_AU45 = _IDX["AU45"]


def smooth_noise(rng, shape, sd):
    """White noise averaged over 3 frames: AU estimates jitter, but not frame-independently."""
    w = rng.normal(0, sd, (shape[0] + 2,) + tuple(shape[1:]))
    return (w[:-2] + w[1:-1] + w[2:]) / 3


def _phases(rng, n):
    """Frame boundaries (0-based, half-open) of onset, apex, offset: neutral before, neutral after."""
    # Emotional clips (MER-style, 2-5 s) show the expression for most of their length.
    a = rng.uniform(0.02, 0.15) * n
    b = a + rng.uniform(0.08, 0.15) * n
    c = b + rng.uniform(0.45, 0.7) * n
    d = c + rng.uniform(0.1, 0.2) * n
    return a, b, c, d


def _envelope(n, a, b, c, d):
    t = np.arange(n, dtype=float)
    env = np.zeros(n)
    rise = (t >= a) & (t < b)
    env[rise] = 0.5 - 0.5 * np.cos(math.pi * (t[rise] - a) / (b - a))
    env[(t >= b) & (t < c)] = 1.0
    fall = (t >= c) & (t < d)
    env[fall] = 0.5 + 0.5 * np.cos(math.pi * (t[fall] - c) / (d - c))
    return env


def _blinks(rng, n, fps, peak=(1.6, 3.6), interval=(2.0, 5.0)):
    """AU45 intensity: 2-4 frame spikes every few seconds."""
    au45 = np.zeros(n)
    t = rng.uniform(0.3, 3.0) * fps
    while t < n:
        length = int(rng.integers(2, 5))
        top = rng.uniform(*peak)
        start = int(t)
        shape = top * np.sin(math.pi * (np.arange(length) + 0.5) / length)
        stop = min(n, start + length)
        au45[start:stop] = shape[:stop - start]
        t += rng.uniform(*interval) * fps
    return au45


def clean_intensities(rng, emotion, n, fps):
    scale = rng.uniform(0.7, 1.3)
    phases = _phases(rng, n)
    env = _envelope(n, *phases)
    # Baseline: most AUs sit at 0, some hover at low values, all well below 1.0.
    base = rng.uniform(0.0, 0.25, _K) * (rng.random(_K) < 0.4)
    r = base + smooth_noise(rng, (n, _K), 0.09)
    proto = np.zeros(_K)
    # People differ: besides the two strongest AUs of the prototype, each AU is sometimes
    # missing, and sometimes an unrelated AU joins in, so AU combinations vary like real data.
    prototype = facs.EMOTION_PROTOTYPES[emotion]
    core = sorted(prototype, key=prototype.get, reverse=True)[:2]
    for code, value in prototype.items():
        if code in core or rng.random() >= 0.15:
            proto[_IDX[code]] = value * scale * rng.uniform(0.9, 1.1)
    if emotion != "neutral" and rng.random() < 0.3:
        extra = int(rng.integers(_K))
        if extra != _AU45 and proto[extra] == 0:
            proto[extra] = rng.uniform(0.8, 3.5)
    active = env[:, None] * proto
    r += active + (active > 0) * smooth_noise(rng, (n, _K), 0.12)
    r[:, _AU45] = np.maximum(r[:, _AU45] * 0.5, 0) + _blinks(rng, n, fps)
    return np.clip(r, 0.0, AU_MAX), scale, phases


# --- realistic ----------------------------------------------------------------------------------

def _per_au(values: dict, default=0.0) -> np.ndarray:
    return np.array([values.get(c, default) for c in facs.INTENSITY_CODES], float)


# A person's resting face: how many AUs OpenFace reads on it (REST_COUNT[m]: probability of m;
# some people show 1-2, most 6-7), which ones (drawn without replacement with REST_WEIGHT: AU07,
# AU10, AU06, AU14 and AU04 far more often than others) and at what level (REST_LEVEL, spread by
# a log-normal factor of REST_SPREAD). All fitted with `simulate stats` against real OpenFace
# output (bench/RESULTS.md, "Simulator statistics").
REST_WEIGHT = _per_au({"AU01": 0.002, "AU02": 0.001, "AU04": 0.496, "AU05": 0.004,
                       "AU06": 0.723, "AU07": 1.997, "AU09": 0.002, "AU10": 0.792,
                       "AU12": 0.323, "AU14": 0.684, "AU15": 0.004, "AU17": 0.226,
                       "AU20": 0.019, "AU23": 0.029, "AU25": 0.118, "AU26": 0.079,
                       "AU45": 0.208})
REST_LEVEL = _per_au({"AU07": 1.5, "AU04": 1.3, "AU10": 1.1, "AU14": 1.1}, default=1.0)
# How strongly OpenFace registers each AU of a prototype expression (relative to the EMFACS
# apex values in facs.EMOTION_PROTOTYPES): it rarely reports AU05, AU15 or AU20 at the
# intensity a FACS coder would.
EXPRESSION_GAIN = _per_au({"AU01": 0.4, "AU02": 0.25, "AU05": 0.15, "AU09": 0.35, "AU15": 0.3,
                           "AU20": 0.3, "AU23": 0.35, "AU26": 0.6}, default=0.8)
REST_COUNT = np.array([0.086, 0.082, 0.354, 0.001, 0.001, 0.001, 0.288, 0.157, 0.018, 0.001,
                       0.011, 0.001])
REST_SPREAD = 0.35
TALK_PROB = 0.6  # share of clips in which the person talks

def _slow_drift(rng, n, k, fps, sd, seconds=1.5):
    """AR(1) wander with a time constant of `seconds`, stationary standard deviation `sd`."""
    a = math.exp(-1.0 / max(seconds * fps, 1.0))
    e = rng.normal(0, sd * math.sqrt(1 - a * a), (n, k))
    out = np.empty((n, k))
    out[0] = rng.normal(0, sd, k)
    for t in range(1, n):
        out[t] = a * out[t - 1] + e[t]
    return out


def _talking(rng, n, fps):
    """(AU25, AU26) added by speech: syllables at 3-6 Hz in phrases, with pauses."""
    t = np.arange(n) / fps
    rate = rng.uniform(1.5, 3.5)
    syll = np.maximum(0.0, np.sin(2 * math.pi * rate * t + rng.uniform(0, 2 * math.pi)))
    syll *= rng.uniform(0.6, 1.0, n)  # syllables differ in how wide they open
    speaking = np.zeros(n, bool)
    pos = int(rng.integers(0, max(1, int(0.5 * fps))))
    while pos < n:  # phrases of 0.6-2.5 s, pauses of 0.2-1 s
        length = int(rng.uniform(0.6, 2.5) * fps)
        speaking[pos:pos + length] = True
        pos += length + int(rng.uniform(0.2, 1.0) * fps)
    syll *= speaking
    return rng.uniform(0.6, 2.2) * syll, rng.uniform(0.4, 1.8) * syll


def realistic_intensities(rng, emotion, n, fps):
    # People differ in how many AUs OpenFace reads on their resting face (REST_COUNT), and some
    # AUs are far more often among them than others (REST_WEIGHT).
    count = int(rng.choice(len(REST_COUNT), p=REST_COUNT / REST_COUNT.sum()))
    on = np.zeros(_K, bool)
    on[rng.choice(_K, size=count, replace=False, p=REST_WEIGHT / REST_WEIGHT.sum())] = True
    rest = np.where(on, REST_LEVEL * rng.lognormal(0.0, REST_SPREAD, _K), rng.uniform(0.0, 0.2, _K))
    wobble = np.where(on, 1.0, 0.25)  # a resting AU wanders; an absent one stays near zero
    r = rest + wobble * (_slow_drift(rng, n, _K, fps, 0.25) + smooth_noise(rng, (n, _K), 0.1))

    scale = rng.uniform(0.25, 1.0)  # most real expressions are subtle
    phases = _phases(rng, n)
    env = _envelope(n, *phases)
    proto = np.zeros(_K)
    for code, value in facs.EMOTION_PROTOTYPES[emotion].items():
        if rng.random() < 0.8:
            proto[_IDX[code]] = value * scale * rng.uniform(0.8, 1.2)
    r += env[:, None] * proto * EXPRESSION_GAIN

    if rng.random() < TALK_PROB:
        au25, au26 = _talking(rng, n, fps)
        r[:, _IDX["AU25"]] += au25
        r[:, _IDX["AU26"]] += au26
    r[:, _AU45] = np.maximum(r[:, _AU45] * 0.5, 0) + _blinks(rng, n, fps, (0.8, 3.0), (1.5, 6.0))
    return np.clip(r, 0.0, AU_MAX), scale, phases


def intensities(profile, rng, emotion, n, fps):
    if profile == "realistic":
        return realistic_intensities(rng, emotion, n, fps)
    if profile == "clean":
        return clean_intensities(rng, emotion, n, fps)
    raise ValueError(f"unknown simulator profile {profile!r}; choose from {', '.join(PROFILES)}")
