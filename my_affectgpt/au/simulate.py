"""Simulated OpenFace 2.x FeatureExtraction CSVs for tests, demos and benchmarks.

Each video shows one face acting one emotion of `facs.EMOTION_PROTOTYPES`: a neutral start, then
onset, apex and offset of the prototype's AUs, with blinks, baseline noise and occasional tracking
loss. Landmarks, gaze and pose are cheap plausible numbers (nothing analyses them) so that files
have OpenFace's full 714 columns, decimals and formatting.

Every video depends only on (seed, video index, options): `--videos 10` and `--videos 20` share
their first ten files byte for byte.

    python -m my_affectgpt.au.simulate --videos 100 --out-dir data/sim --seed 0
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import sys
from pathlib import Path

import numpy as np

from my_affectgpt.au import facs
from my_affectgpt.au.sim_profiles import PROFILES, intensities, smooth_noise
from my_affectgpt.common.atomic import atomic_write_text
from my_affectgpt.common.errors import InputError, cli_entry

# --- OpenFace 2.x column layout -----------------------------------------------------------------

N_LANDMARKS = 68
N_EYE_LANDMARKS = 56  # 28 per eye: 8 iris, 12 eyelid, 8 pupil
N_SHAPE_PARAMS = 34

COLUMNS = tuple(
    ["frame", "face_id", "timestamp", "confidence", "success"]
    + [f"gaze_{e}_{a}" for e in (0, 1) for a in "xyz"]
    + ["gaze_angle_x", "gaze_angle_y"]
    + [f"eye_lmk_{a}_{i}" for a in "xyXYZ" for i in range(N_EYE_LANDMARKS)]
    + [f"pose_{k}" for k in ("Tx", "Ty", "Tz", "Rx", "Ry", "Rz")]
    + [f"{a}_{i}" for a in "xyXYZ" for i in range(N_LANDMARKS)]
    + ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"]
    + [f"p_{i}" for i in range(N_SHAPE_PARAMS)]
    + list(facs.R_COLUMNS) + list(facs.C_COLUMNS))
_COL = {name: i for i, name in enumerate(COLUMNS)}
INT_COLUMNS = ("frame", "face_id", "success")


def _span(first: str, count: int) -> slice:
    return slice(_COL[first], _COL[first] + count)


GAZE_VEC = _span("gaze_0_x", 6)
GAZE_ANGLE = _span("gaze_angle_x", 2)
EYE_LMK = _span("eye_lmk_x_0", 5 * N_EYE_LANDMARKS)
POSE_T = _span("pose_Tx", 3)
POSE_R = _span("pose_Rx", 3)
LANDMARKS = _span("x_0", 5 * N_LANDMARKS)
P_GLOBAL = _span("p_scale", 6)
P_LOCAL = _span("p_0", N_SHAPE_PARAMS)
AU_R = _span(facs.R_COLUMNS[0], len(facs.R_COLUMNS))
AU_C = _span(facs.C_COLUMNS[0], len(facs.C_COLUMNS))


def _decimals() -> np.ndarray:
    """Decimals OpenFace 2.x writes per column (as in its RecorderCSV)."""
    d = np.full(len(COLUMNS), 1, dtype=int)  # landmarks, eye landmarks, pose translation: .1f
    for name in INT_COLUMNS:
        d[_COL[name]] = 0
    d[_COL["timestamp"]] = 3
    d[_COL["confidence"]] = 2
    d[GAZE_VEC] = 6
    for sl, n in ((GAZE_ANGLE, 3), (POSE_R, 3), (P_GLOBAL, 3), (P_LOCAL, 3), (AU_R, 2), (AU_C, 2)):
        d[sl] = n
    return d


DECIMALS = _decimals()
_FIELD_FORMATS = tuple("%d" if d == 0 else f"%.{d}f" for d in DECIMALS)
_DECIMAL_GROUPS = tuple((int(d), np.flatnonzero(DECIMALS == d)) for d in np.unique(DECIMALS) if d > 0)

# --- simulation constants -------------------------------------------------------------------------

PRESENCE_THRESHOLD = 1.0   # _c is 1 where _r >= this
DEFAULT_PROFILE = "realistic"
DEFAULT_FPS = 30.0
DEFAULT_FRAMES = (60, 150)
DEFAULT_LOSS_RATE = 1 / 150  # expected tracking-loss runs per frame (face 0)
SECOND_FACE_LOSS_RATE = 4 / 150
LAYOUTS = ("flat", "mer-factory")

_R_INDEX = {code: i for i, code in enumerate(facs.INTENSITY_CODES)}
_C_FROM_R = np.array([facs.PRESENCE_CODES.index(c) for c in facs.INTENSITY_CODES])
_AU28_C = facs.PRESENCE_CODES.index("AU28")
_AU45_R = _R_INDEX["AU45"]


def _face_model():
    """A coarse 68-point mean face (mm, y down, z away from the camera) and AU displacements."""
    p = np.zeros((N_LANDMARKS, 3))
    t = np.linspace(0, math.pi, 17)                                  # jaw, 0..16
    p[:17] = np.c_[-70 * np.cos(t), -10 + 105 * np.sin(t), 10 + 30 * (1 - np.sin(t))]
    for first, sign in ((17, -1), (22, 1)):                          # brows
        x = np.linspace(60, 12, 5) if sign < 0 else np.linspace(12, 60, 5)
        p[first:first + 5] = np.c_[sign * x, -40 - 8 * np.sin(np.linspace(0, math.pi, 5)), -5 * np.ones(5)]
    p[27:31] = np.c_[np.zeros(4), [-30, -15, 0, 15], [-10, -18, -26, -34]]  # nose bridge
    p[31:36] = np.c_[np.linspace(-15, 15, 5), 28 * np.ones(5), [-20, -23, -25, -23, -20]]
    a6 = np.array([math.pi, 2 * math.pi / 3, math.pi / 3, 0, -math.pi / 3, -2 * math.pi / 3])
    for first, cx in ((36, -35), (42, 35)):                          # eyes
        p[first:first + 6] = np.c_[cx + 14 * np.cos(a6), -20 - 5 * np.sin(a6), np.zeros(6)]
    a12 = math.pi - np.arange(12) * math.pi / 6                      # outer lips, 48..59
    p[48:60] = np.c_[25 * np.cos(a12), 55 - 10 * np.sin(a12), -20 * np.ones(12)]
    a8 = math.pi - np.arange(8) * math.pi / 4                        # inner lips, 60..67
    p[60:68] = np.c_[16 * np.cos(a8), 55 - 3 * np.sin(a8), -18 * np.ones(8)]

    # How far (mm per intensity unit) each AU moves the points it acts on.
    d = np.zeros((len(facs.INTENSITY_CODES), N_LANDMARKS, 3))
    inner_brows, outer_brows = [19, 20, 21, 22, 23, 24], [17, 18, 25, 26]
    d[_R_INDEX["AU01"], inner_brows, 1] = -2.0
    d[_R_INDEX["AU02"], outer_brows, 1] = -2.0
    d[_R_INDEX["AU04"], inner_brows + outer_brows, 1] = 1.5
    d[_R_INDEX["AU04"], [20, 21], 0], d[_R_INDEX["AU04"], [22, 23], 0] = 1.0, -1.0
    d[_R_INDEX["AU05"], [37, 38, 43, 44], 1] = -0.8
    d[_R_INDEX["AU07"], [40, 41, 46, 47], 1] = -0.6
    d[_R_INDEX["AU45"], [37, 38, 43, 44], 1] = 1.0
    d[_R_INDEX["AU09"], [31, 32, 34, 35], 1] = -1.0
    d[_R_INDEX["AU10"], [49, 50, 51, 52, 53, 61, 62, 63], 1] = -1.2
    d[_R_INDEX["AU12"], [48, 60], 0], d[_R_INDEX["AU12"], [54, 64], 0] = -2.0, 2.0
    d[_R_INDEX["AU12"], [48, 54, 60, 64], 1] = -1.5
    d[_R_INDEX["AU14"], [48, 60], 0], d[_R_INDEX["AU14"], [54, 64], 0] = -1.0, 1.0
    d[_R_INDEX["AU15"], [48, 54, 60, 64], 1] = 1.5
    d[_R_INDEX["AU17"], [56, 57, 58, 7, 8, 9], 1] = -1.0
    d[_R_INDEX["AU20"], [48, 60], 0], d[_R_INDEX["AU20"], [54, 64], 0] = -2.0, 2.0
    d[_R_INDEX["AU23"], [48, 60], 0], d[_R_INDEX["AU23"], [54, 64], 0] = 1.0, -1.0
    d[_R_INDEX["AU25"], [55, 56, 57, 58, 59, 65, 66, 67], 1] = 1.5
    d[_R_INDEX["AU26"], [55, 56, 57, 58, 59, 65, 66, 67] + list(range(5, 12)), 1] = 2.5
    return p, d.reshape(len(facs.INTENSITY_CODES), -1)


_FACE, _AU_DISPLACEMENT = _face_model()
_EYE_CENTERS = ((-35.0, -20.0), (35.0, -20.0))
# Fixed loadings from AU intensities to the PDM's non-rigid parameters, so p_0..33 move with the face.
_P_LOADINGS = np.random.default_rng(20180515).normal(0, 1, (len(facs.INTENSITY_CODES), N_SHAPE_PARAMS)) \
    * (8.0 / (1 + np.arange(N_SHAPE_PARAMS)) ** 0.7)
_FOCAL, _CX, _CY = 900.0, 640.0, 360.0  # a 1280x720 camera


# --- one face track -----------------------------------------------------------------------------

def _drift(rng, n, k, step, start):
    """Slow random walks (head and gaze movement)."""
    return start + np.cumsum(rng.normal(0, step, (n, k)), axis=0)


def _loss_mask(rng, n, loss_rate):
    """True where tracking is lost: a few short runs."""
    lost = np.zeros(n, dtype=bool)
    for _ in range(int(rng.poisson(n * loss_rate))):
        start = int(rng.integers(0, n))
        lost[start:start + int(rng.integers(2, 9))] = True
    return lost


def _simulate_array(rng, emotion, n_frames, fps=DEFAULT_FPS, face_id=0, loss_rate=DEFAULT_LOSS_RATE,
                    profile=DEFAULT_PROFILE):
    """One face track as an (n_frames, 714) float array in COLUMNS order, rounded like OpenFace."""
    if emotion not in facs.EMOTION_PROTOTYPES:
        raise InputError("emotion", f"unknown emotion {emotion!r}; choose from {', '.join(facs.EMOTIONS)}")
    n = int(n_frames)
    if n < 1:
        raise InputError("n_frames", f"need at least 1 frame, got {n_frames}")
    if not fps > 0:
        raise InputError("fps", f"must be positive, got {fps}")
    out = np.empty((n, len(COLUMNS)))
    frame = np.arange(1, n + 1)
    out[:, _COL["frame"]] = frame
    out[:, _COL["face_id"]] = face_id
    out[:, _COL["timestamp"]] = (frame - 1) / fps

    r, scale, phases = intensities(profile, rng, emotion, n, fps)
    r = np.round(r, 2)
    c = np.zeros((n, len(facs.PRESENCE_CODES)))
    c[:, _C_FROM_R] = r >= PRESENCE_THRESHOLD
    # AU28 (lip suck): presence only, in short runs; real OpenFace output shows it in ~3% of
    # frames (bench/RESULTS.md), textbook clips hardly ever.
    runs = (0.05, (3, 11)) if profile == "clean" else (0.2, (5, 31))
    if rng.random() < runs[0]:
        start = int(rng.integers(0, n))
        c[start:start + int(rng.integers(*runs[1])), _AU28_C] = 1.0

    # Head pose: position in mm, rotation in radians, drifting slowly.
    t_start = np.array([rng.uniform(-60, 60), rng.uniform(-20, 60), rng.uniform(300, 700)])
    pose_t = _drift(rng, n, 3, np.array([0.3, 0.3, 0.8]), t_start)
    pose_r = _drift(rng, n, 3, 0.004, rng.normal(0, 0.08, 3))
    p_scale = _FOCAL / pose_t[:, 2]
    p_tx = _CX + _FOCAL * pose_t[:, 0] / pose_t[:, 2]
    p_ty = _CY + _FOCAL * pose_t[:, 1] / pose_t[:, 2]

    # Landmarks: mean face deformed by the AUs, jittered, rotated in-plane, projected.
    identity = rng.normal(0, 1.5, (N_LANDMARKS, 3))
    model = (_FACE + identity)[None] + (r @ _AU_DISPLACEMENT).reshape(n, N_LANDMARKS, 3) \
        + rng.normal(0, 0.25, (n, N_LANDMARKS, 3))
    gaze_ax = _drift(rng, n, 1, 0.01, rng.normal(0, 0.12))[:, 0]
    gaze_ay = _drift(rng, n, 1, 0.01, rng.normal(0.05, 0.1))[:, 0]
    eyes = _eye_model(rng, n, r[:, _AU45_R], gaze_ax, gaze_ay)
    lmk2d, lmk3d = _place(model, pose_t, pose_r, p_scale, p_tx, p_ty)
    eye2d, eye3d = _place(eyes, pose_t, pose_r, p_scale, p_tx, p_ty)
    # OpenFace order: all x, all y (pixels), then all X, Y, Z (mm)
    out[:, LANDMARKS] = np.concatenate([lmk2d.transpose(0, 2, 1), lmk3d.transpose(0, 2, 1)], axis=1).reshape(n, -1)
    out[:, EYE_LMK] = np.concatenate([eye2d.transpose(0, 2, 1), eye3d.transpose(0, 2, 1)], axis=1).reshape(n, -1)

    vergence = rng.uniform(0.02, 0.08)
    for e, sign in enumerate((1, -1)):
        ax, ay = gaze_ax + sign * vergence, gaze_ay
        out[:, GAZE_VEC][:, 3 * e:3 * e + 3] = np.c_[np.sin(ax) * np.cos(ay), np.sin(ay), -np.cos(ax) * np.cos(ay)]
    g = out[:, GAZE_VEC]
    mean = (g[:, :3] + g[:, 3:]) / 2
    out[:, GAZE_ANGLE] = np.c_[np.arctan2(mean[:, 0], -mean[:, 2]), np.arctan2(mean[:, 1], -mean[:, 2])]

    out[:, POSE_T] = pose_t
    out[:, POSE_R] = pose_r
    out[:, P_GLOBAL] = np.c_[p_scale, pose_r + rng.normal(0, 0.01, 3), p_tx, p_ty]
    identity_p = rng.normal(0, 1, N_SHAPE_PARAMS) * (30.0 / (1 + np.arange(N_SHAPE_PARAMS)) ** 0.8)
    out[:, P_LOCAL] = identity_p + r @ _P_LOADINGS + rng.normal(0, 0.3, (n, N_SHAPE_PARAMS))
    out[:, AU_R] = r
    out[:, AU_C] = c

    # Tracking: confident while tracked; lost runs get low confidence, zero gaze and AUs
    # (FeatureExtraction style), landmarks and pose held from the last tracked frame.
    confidence = np.clip(0.915 + smooth_noise(rng, (n,), 0.05), 0.85, 0.98)
    lost = _loss_mask(rng, n, loss_rate)
    confidence[lost] = rng.uniform(0.0, 0.45, int(lost.sum()))
    out[:, _COL["confidence"]] = confidence
    out[:, _COL["success"]] = ~lost
    if lost.any():
        last_good = np.maximum.accumulate(np.where(lost, -1, np.arange(n)))
        held = lost & (last_good >= 0)
        for sl in (EYE_LMK, POSE_T, POSE_R, LANDMARKS, P_GLOBAL, P_LOCAL):
            out[held, sl] = out[last_good[held], sl]
        for sl in (GAZE_VEC, GAZE_ANGLE, AU_R, AU_C):
            out[lost, sl] = 0.0

    for decimals, cols in _DECIMAL_GROUPS:
        out[:, cols] = np.round(out[:, cols], decimals)
    out += 0.0  # turn -0.0 into 0.0 so files never show "-0.00"
    info = {"emotion": emotion, "scale": float(scale), "face_id": int(face_id), "fps": float(fps),
            # 1-based frame ranges [first, last] of the expression's phases (clipped to the video)
            "phases": {name: (int(math.ceil(lo)) + 1, min(n, int(math.ceil(hi)))) for name, lo, hi in
                       (("onset", phases[0], phases[1]), ("apex", phases[1], phases[2]),
                        ("offset", phases[2], phases[3]))}}
    return out, info


def _eye_model(rng, n, au45, gaze_ax, gaze_ay):
    """56 eye landmarks (mm, face frame): per eye 8 iris, 12 eyelid, 8 pupil points."""
    openness = np.clip(1.0 - au45 / 3.5, 0.05, 1.0)[:, None]
    a8 = np.linspace(0, 2 * math.pi, 8, endpoint=False)
    a12 = math.pi - np.arange(12) * math.pi / 6
    eyes = np.empty((n, N_EYE_LANDMARKS, 3))
    for e, (cx, cy) in enumerate(_EYE_CENTERS):
        ix = cx + 10 * np.sin(gaze_ax)[:, None]
        iy = cy + 10 * np.sin(gaze_ay)[:, None]
        o = 28 * e
        eyes[:, o:o + 8, 0] = ix + 6.0 * np.cos(a8)
        eyes[:, o:o + 8, 1] = iy - 6.0 * np.sin(a8) * openness
        eyes[:, o + 8:o + 20, 0] = cx + 14 * np.cos(a12)
        eyes[:, o + 8:o + 20, 1] = cy - 5 * np.sin(a12) * openness
        eyes[:, o + 20:o + 28, 0] = ix + 2.5 * np.cos(a8)
        eyes[:, o + 20:o + 28, 1] = iy - 2.5 * np.sin(a8) * openness
        eyes[:, o:o + 28, 2] = -8.0
    return eyes + rng.normal(0, 0.15, eyes.shape)


def _place(model, pose_t, pose_r, p_scale, p_tx, p_ty):
    """Rotate face-frame points in-plane by Rz, put them at the head position, project to pixels."""
    cos, sin = np.cos(pose_r[:, 2])[:, None], np.sin(pose_r[:, 2])[:, None]
    x = model[..., 0] * cos - model[..., 1] * sin
    y = model[..., 0] * sin + model[..., 1] * cos
    pix = np.stack([p_tx[:, None] + p_scale[:, None] * x, p_ty[:, None] + p_scale[:, None] * y], axis=-1)
    cam = np.stack([pose_t[:, 0:1] + x, pose_t[:, 1:2] + y, pose_t[:, 2:3] + model[..., 2]], axis=-1)
    return pix, cam


def simulate_track(rng, emotion, n_frames, fps=DEFAULT_FPS, face_id=0, *, loss_rate=DEFAULT_LOSS_RATE,
                   profile=DEFAULT_PROFILE):
    """One simulated face track as a DataFrame with OpenFace 2.x's 714 columns (numeric).

    Values are rounded to the decimals OpenFace writes, so a written-and-read file gives the same
    numbers. `df.attrs` holds the emotion, the apex scale and the 1-based frame ranges of the
    onset/apex/offset phases. `loss_rate` is the expected number of tracking-loss runs per frame.
    """
    import pandas as pd  # lazy: the file writers do not need pandas

    array, info = _simulate_array(rng, emotion, n_frames, fps, face_id, loss_rate, profile)
    df = pd.DataFrame(array, columns=list(COLUMNS))
    for name in INT_COLUMNS:
        df[name] = df[name].astype("int64")
    df.attrs.update(info)
    return df


# --- files ----------------------------------------------------------------------------------------

def video_name(index: int) -> str:
    return f"sim_{index:05d}"


def format_csv(array: np.ndarray, pad: bool = True) -> str:
    """CSV text of rows in COLUMNS order: OpenFace's padded style (`, `) or plain commas."""
    sep = ", " if pad else ","
    row = sep.join(_FIELD_FORMATS)
    body = "\n".join(row % tuple(values) for values in array.tolist())
    return sep.join(COLUMNS) + "\n" + body + ("\n" if body else "")


def _video_rngs(seed, index):
    """Independent streams per video and purpose, so face 0 does not change with other options."""
    return [np.random.default_rng([seed, index, purpose]) for purpose in range(3)]


def simulate_video(seed, index, *, frames=DEFAULT_FRAMES, fps=DEFAULT_FPS, second_face_prob=0.0,
                   emotions=None, profile=DEFAULT_PROFILE):
    """All rows of one video (faces interleaved per frame) and its emotion label."""
    meta, rng0, rng1 = _video_rngs(seed, index)
    choices = _check_emotions(emotions)
    emotion = choices[int(meta.integers(len(choices)))]
    n = int(meta.integers(frames[0], frames[1] + 1))
    want_second = meta.random() < second_face_prob
    face0, _ = _simulate_array(rng0, emotion, n, fps, 0, profile=profile)
    if not want_second:
        return face0, emotion
    other = choices[int(meta.integers(len(choices)))]
    face1, _ = _simulate_array(rng1, other, n, fps, 1, SECOND_FACE_LOSS_RATE, profile)
    # The second face is in view for part of the video only, so it has fewer tracked frames.
    tracked0 = int(face0[:, _COL["success"]].sum())
    length = min(int(meta.integers(max(1, n // 3), max(1, int(0.8 * n)) + 1)), tracked0 - 1)
    if length < 1:
        return face0, emotion
    start = int(meta.integers(0, n - length + 1))
    rows = np.concatenate([face0, face1[start:start + length]])
    order = np.lexsort((rows[:, _COL["face_id"]], rows[:, _COL["frame"]]))
    return rows[order], emotion


def _check_emotions(emotions):
    """Emotions to draw from, in facs order (so the order given does not change the draws)."""
    if emotions is None:
        return facs.EMOTIONS
    if isinstance(emotions, str):
        emotions = [e.strip() for e in emotions.split(",") if e.strip()]
    unknown = [e for e in emotions if e not in facs.EMOTION_PROTOTYPES]
    if unknown:
        raise InputError("--emotions", f"unknown emotion {unknown[0]!r}; choose from {', '.join(facs.EMOTIONS)}")
    chosen = tuple(e for e in facs.EMOTIONS if e in set(emotions))
    if not chosen:
        raise InputError("--emotions", "no emotion given")
    return chosen


def video_path(out_dir, index, layout="flat") -> Path:
    name = video_name(index)
    return Path(out_dir) / name / f"{name}.csv" if layout == "mer-factory" else Path(out_dir) / f"{name}.csv"


def _write_video(index, *, out_dir, seed, layout, pad, **options):
    rows, emotion = simulate_video(seed, index, **options)
    path = video_path(out_dir, index, layout)
    atomic_write_text(path, format_csv(rows, pad))
    return str(path), emotion


def write_dataset(out_dir, n_videos, seed=0, *, frames=DEFAULT_FRAMES, fps=DEFAULT_FPS, pad=True,
                  second_face_prob=0.0, emotions=None, layout="flat", workers=None,
                  progress=False, profile=DEFAULT_PROFILE) -> list[Path]:
    """Write `n_videos` simulated OpenFace CSVs and `labels.csv` (video,emotion) under `out_dir`.

    Returns the CSV paths in video order. `layout="flat"` writes `out_dir/<video>.csv`,
    `"mer-factory"` writes `out_dir/<video>/<video>.csv`. `workers` processes share the work
    (default min(2, cpu count)); the output does not depend on it. `profile`: sim_profiles.PROFILES.
    """
    n_videos = int(n_videos)
    if n_videos < 0:
        raise InputError("--videos", f"must be >= 0, got {n_videos}")
    lo, hi = (int(v) for v in frames)
    if not 1 <= lo <= hi:
        raise InputError("--frames", f"need 1 <= MIN <= MAX, got {lo} {hi}")
    if not (fps > 0 and math.isfinite(fps)):
        raise InputError("--fps", f"must be a positive number, got {fps}")
    if not 0.0 <= second_face_prob <= 1.0:
        raise InputError("--second-face-prob", f"must be within 0..1, got {second_face_prob}")
    if layout not in LAYOUTS:
        raise InputError("--layout", f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    if profile not in PROFILES:
        raise InputError("--profile", f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    workers = min(2, os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise InputError("--workers", f"must be >= 1, got {workers}")
    chosen = _check_emotions(emotions)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    job = functools.partial(_write_video, out_dir=str(out_dir), seed=int(seed), layout=layout, pad=bool(pad),
                            frames=(lo, hi), fps=float(fps), second_face_prob=float(second_face_prob),
                            emotions=chosen, profile=profile)
    results = []
    if workers == 1 or n_videos < 2:
        results = [job(i) for i in _progress(range(n_videos), n_videos, progress)]
    else:
        import multiprocessing

        with multiprocessing.get_context().Pool(min(workers, n_videos)) as pool:
            chunk = max(1, min(16, n_videos // (4 * workers)))
            results = list(_progress(pool.imap(job, range(n_videos), chunksize=chunk), n_videos, progress))
    labels = "video,emotion\n" + "".join(f"{video_name(i)},{emotion}\n" for i, (_, emotion) in enumerate(results))
    atomic_write_text(out_dir / "labels.csv", labels)
    return [Path(path) for path, _ in results]


def _progress(iterable, total, enabled):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc="simulate", unit="video")


# --- CLI ------------------------------------------------------------------------------------------

def rows_to_table(rows: np.ndarray):
    """Face 0's rows as a canonical table (frame, success and the 35 AU columns), for statistics."""
    import pandas as pd

    face0 = rows[rows[:, _COL["face_id"]] == 0]
    cols = ["frame", "success"] + list(facs.AU_COLUMNS)
    return pd.DataFrame(face0[:, [_COL[c] for c in cols]], columns=cols)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m my_affectgpt.au.simulate",
        description="Write simulated OpenFace 2.x FeatureExtraction CSVs (714 columns, one emotion per "
                    "video: a resting face, onset, apex and offset of the expression, talking, blinks, "
                    "tracking loss) and labels.csv (video,emotion). The same seed gives byte-identical "
                    "files. `python -m my_affectgpt.au.simulate stats --real DIR` compares real and "
                    "simulated AU statistics (stats --help).",
        epilog="example: python -m my_affectgpt.au.simulate --videos 100 --out-dir data/sim "
               "--emotions happiness,sadness --layout mer-factory")
    p.add_argument("--videos", type=int, required=True, help="number of videos to write")
    p.add_argument("--out-dir", required=True, help="output folder (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE,
                   help="realistic (default): AU statistics of real OpenFace output (many faint AUs, "
                        "talking, blinks); clean: textbook prototypes over a quiet baseline")
    p.add_argument("--frames", type=int, nargs=2, metavar=("MIN", "MAX"), default=list(DEFAULT_FRAMES),
                   help="frames per video, drawn uniformly in MIN..MAX (default %(default)s)")
    p.add_argument("--fps", type=float, default=DEFAULT_FPS, help="frame rate for timestamps (default 30)")
    p.add_argument("--no-pad", action="store_true",
                   help="plain commas instead of OpenFace's ', ' padding")
    p.add_argument("--second-face-prob", type=float, default=0.0,
                   help="probability that a video also shows a second face, face_id 1 (default 0)")
    p.add_argument("--emotions", default=None,
                   help=f"comma-separated emotions to draw from (default all: {','.join(facs.EMOTIONS)})")
    p.add_argument("--layout", choices=LAYOUTS, default="flat",
                   help="flat: DIR/<video>.csv; mer-factory: DIR/<video>/<video>.csv (default flat)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default min(2, cpu count))")
    return p


def stats_parser() -> argparse.ArgumentParser:
    from my_affectgpt.au import au_stats

    p = argparse.ArgumentParser(prog="python -m my_affectgpt.au.simulate stats",
                                description=au_stats.__doc__.split("\n\n")[0],
                                epilog="example: python -m my_affectgpt.au.simulate stats --real "
                                       "../shared/openface_samples --real my_openface_dir --json stats.json")
    au_stats.add_arguments(p)
    return p


@cli_entry
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["stats"]:
        from my_affectgpt.au import au_stats

        return au_stats.main(stats_parser().parse_args(argv[1:]))
    args = build_parser().parse_args(argv)
    paths = write_dataset(args.out_dir, args.videos, seed=args.seed, frames=tuple(args.frames), fps=args.fps,
                          pad=not args.no_pad, second_face_prob=args.second_face_prob,
                          emotions=args.emotions, layout=args.layout, workers=args.workers, progress=True,
                          profile=args.profile)
    print(f"wrote {len(paths)} videos ({args.profile} profile) and labels.csv to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
