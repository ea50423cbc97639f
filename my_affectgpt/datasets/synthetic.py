"""A synthetic MER-Caption+ dataset in which only the facial action units carry the emotion.

    python -m my_affectgpt.datasets.synthetic --out data/synth --train 240 --test 60 --seed 0

Writes `OUT/train/` and `OUT/test/`, each in the MER-Caption+ layout AffectGPT reads:

    video/<name>.mp4                        16 frames 48x48 of random noise (OpenCV, mp4v)
    audio/<name>.wav                        16 kHz mono PCM16 noise, 2-4 s
    openface_face/<name>/<name>.npy         uint8 [16, 48, 48, 3] noise ("aligned faces")
    openface_output/<name>/<name>.csv       simulated OpenFace 2.x CSV acting the video's emotion
    track2_train_mercaptionplus.csv         name, openset   (e.g. "happy"; MER: "happy, excited")
    track3_train_mercaptionplus.csv         name, reason    (a short reasoning naming the emotion)
    subtitle_chieng.csv                     name, chinese, english (neutral English sentences)
    labels.csv                              name, emotion   (ground truth, for evaluation)
    synthetic.json                          the generator's settings

What carries the emotion. Each video gets one basic emotion (classes balanced, order shuffled).
The OpenFace CSV acts it (`my_affectgpt.au.simulate`: onset, apex, offset of the EMFACS
prototype with person-to-person variation, blinks, tracking loss). Frames, faces, audio and
subtitles are drawn from random streams that never see the emotion, so a model can only name it
from the AU branch: with `au` it should be near perfect, without `au` near chance.

Emotions. The default set, DEFAULT_EMOTIONS, is happiness, sadness, surprise and anger: their
prototypes share no strong AU (fear overlaps surprise in AU01/02/05/25/26, contempt overlaps
happiness in AU12, disgust overlaps sadness in AU15/17), so the labels are recoverable from the
AUs alone and chance is 25%. `--emotions all` uses all eight prototypes (neutral included).

The same command writes the same files (every file depends only on the seed, the split, the
video's index and the options). The label order is a seeded shuffle of N balanced labels, so a
different N gives different labels, not a prefix of the larger dataset.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from my_affectgpt.au import facs, simulate
from my_affectgpt.common.atomic import atomic_write_text, replace_dir
from my_affectgpt.common.errors import InputError, cli_entry

DEFAULT_EMOTIONS = ("happiness", "sadness", "surprise", "anger")
LABEL_TYPES = ("openset", "description", "hybird")
SPLITS = ("train", "test")

# The word a MER open-set label uses for each basic emotion.
EMOTION_WORDS = {
    "neutral": "neutral", "happiness": "happy", "sadness": "sad", "surprise": "surprised",
    "fear": "fearful", "anger": "angry", "disgust": "disgusted", "contempt": "contemptuous",
}

# Subtitles say nothing about how the speaker feels.
NEUTRAL_SUBTITLES = (
    "The meeting starts at nine tomorrow morning.",
    "I put the books back on the second shelf.",
    "The train to the city leaves every half hour.",
    "We need two more chairs for the table.",
    "The report is on the desk next to the printer.",
    "He said the shop closes at six on Sundays.",
    "The weather forecast mentions some clouds later.",
    "Please write the address on the envelope.",
    "The bus stop is across the street from the bank.",
    "I bought rice, onions and a bottle of water.",
    "The keys are in the top drawer of the cabinet.",
    "Our flat is on the fourth floor of that building.",
    "The lecture covers chapters three and four.",
    "She moved the plants closer to the window.",
    "The parcel should arrive by Thursday afternoon.",
    "They painted the fence white last summer.",
)

_REASONS = (
    "The subtitle is an ordinary statement, so the face decides. The person shows {cues}. "
    "These facial movements indicate that the person feels {word}.",
    "Looking at the face, there is {cues}. The words themselves are neutral. "
    "Therefore the person's emotional state is {word}.",
    "The speaker's expression shows {cues}, while the sentence carries no emotion. "
    "Based on the facial cues, the person is {word}.",
)


@dataclass(frozen=True)
class Settings:
    seed: int = 0
    emotions: tuple = DEFAULT_EMOTIONS
    label_type: str = "hybird"
    frames: int = 16             # video frames and face crops per video
    size: int = 48               # video and face side in pixels
    fps: float = 8.0             # video frame rate: 16 frames = 2 s
    audio_seconds: tuple = (2.0, 4.0)
    sample_rate: int = 16000
    openface_frames: tuple = (45, 60)   # rows of the simulated OpenFace CSV (30 fps)


def parse_emotions(value) -> tuple:
    """Emotions in facs order from a comma list, a sequence, `all` or None (the default set)."""
    if value is None:
        return DEFAULT_EMOTIONS
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return facs.EMOTIONS
        value = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [e for e in value if e not in facs.EMOTION_PROTOTYPES]
    if unknown:
        raise InputError("--emotions", f"unknown emotion {unknown[0]!r}; choose from {', '.join(facs.EMOTIONS)}")
    chosen = tuple(e for e in facs.EMOTIONS if e in set(value))
    if len(chosen) < 2:
        raise InputError("--emotions", "need at least two distinct emotions")
    return chosen


def match_emotion(text: str, emotions: Sequence[str] = facs.EMOTIONS) -> str | None:
    """The emotion a generated answer names first (its label word or the emotion noun), or None."""
    lowered = text.lower()
    best = None
    for emotion in emotions:
        for word in {emotion, EMOTION_WORDS[emotion]}:
            pos = _find_word(lowered, word)
            if pos >= 0 and (best is None or pos < best[0]):
                best = (pos, emotion)
    return best[1] if best else None


def _find_word(text: str, word: str) -> int:
    start = 0
    while True:
        pos = text.find(word, start)
        if pos < 0:
            return -1
        before = text[pos - 1] if pos else " "
        after = text[pos + len(word)] if pos + len(word) < len(text) else " "
        if not before.isalpha() and not after.isalpha():
            return pos
        start = pos + 1


# ---- one video ------------------------------------------------------------------------------

def _rng(settings: Settings, split: str, index: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([settings.seed, SPLITS.index(split), index, purpose])


def split_labels(settings: Settings, split: str, n: int) -> list:
    """Balanced emotions for n videos, in a seeded random order."""
    labels = [settings.emotions[i % len(settings.emotions)] for i in range(n)]
    order = np.random.default_rng([settings.seed, SPLITS.index(split), 1 << 20]).permutation(n)
    return [labels[i] for i in order]


def video_name(split: str, index: int) -> str:
    return f"{split}_{index:05d}"


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    import cv2

    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4 files here ({path})")
    for frame in frames:
        writer.write(frame)
    writer.release()


def _wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def _reason(rng: np.random.Generator, emotion: str) -> str:
    proto = facs.EMOTION_PROTOTYPES[emotion]
    if proto:
        codes = sorted(proto, key=proto.get, reverse=True)[:2]
        phrases = [facs.ACTION_UNITS[c].phrases[1] for c in codes]
        cues = " and ".join(f"{'an' if p[0] in 'aeiou' else 'a'} {p}" for p in phrases)
    else:
        cues = "a relaxed face without any marked movement"
    template = _REASONS[int(rng.integers(len(_REASONS)))]
    return template.format(cues=cues, word=EMOTION_WORDS[emotion])


def write_video(root: Path, settings: Settings, split: str, index: int, emotion: str) -> dict:
    """All files of one video under `root`; returns its rows for the label CSVs."""
    name = video_name(split, index)
    noise = _rng(settings, split, index, 0)      # never sees the emotion
    au_rng = _rng(settings, split, index, 1)     # the only stream that does
    text_rng = _rng(settings, split, index, 2)   # subtitle choice: independent of the emotion
    s = settings.size
    _write_mp4(root / "video" / f"{name}.mp4",
               noise.integers(0, 256, (settings.frames, s, s, 3), dtype=np.uint8), settings.fps)
    faces = noise.integers(0, 256, (settings.frames, s, s, 3), dtype=np.uint8)
    face_dir = root / "openface_face" / name
    face_dir.mkdir(parents=True, exist_ok=True)
    np.save(face_dir / f"{name}.npy", faces, allow_pickle=False)
    seconds = noise.uniform(*settings.audio_seconds)
    samples = np.clip(noise.normal(0, 3000, int(seconds * settings.sample_rate)), -32768, 32767)
    (root / "audio" / f"{name}.wav").write_bytes(_wav_bytes(samples, settings.sample_rate))

    n_rows = int(au_rng.integers(settings.openface_frames[0], settings.openface_frames[1] + 1))
    # Clean prototypes: in this data set the AUs alone carry the emotion (bench_au_signal.py).
    track = simulate.simulate_track(au_rng, emotion, n_rows, profile="clean")
    csv_dir = root / "openface_output" / name
    csv_dir.mkdir(parents=True, exist_ok=True)
    (csv_dir / f"{name}.csv").write_text(simulate.format_csv(track.to_numpy(dtype=float)), encoding="utf-8")

    return {"name": name, "emotion": emotion, "openset": EMOTION_WORDS[emotion],
            "reason": _reason(au_rng, emotion),
            "english": NEUTRAL_SUBTITLES[int(text_rng.integers(len(NEUTRAL_SUBTITLES)))]}


def _csv_text(header: Sequence[str], rows: list) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_split(out: Path, split: str, n: int, settings: Settings, progress: bool = True) -> Path:
    """Write `out/<split>` into a temp folder beside it, then swap it in (readers never see half)."""
    from tqdm import tqdm

    target = out / split
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=f".{split}.tmp-"))
    try:
        for sub in ("video", "audio", "openface_face", "openface_output"):
            (tmp / sub).mkdir()
        labels = split_labels(settings, split, n)
        rows = [write_video(tmp, settings, split, i, emotion)
                for i, emotion in enumerate(tqdm(labels, desc=f"synthetic {split}", unit="video",
                                                 disable=not progress, dynamic_ncols=True))]
        if settings.label_type in ("openset", "hybird"):
            atomic_write_text(tmp / "track2_train_mercaptionplus.csv",
                              _csv_text(("name", "openset"), [(r["name"], r["openset"]) for r in rows]))
        if settings.label_type in ("description", "hybird"):
            atomic_write_text(tmp / "track3_train_mercaptionplus.csv",
                              _csv_text(("name", "reason"), [(r["name"], r["reason"]) for r in rows]))
        # MER's subtitle file has a Chinese and an English column; only English is synthetic.
        atomic_write_text(tmp / "subtitle_chieng.csv",
                          _csv_text(("name", "chinese", "english"), [(r["name"], "", r["english"]) for r in rows]))
        atomic_write_text(tmp / "labels.csv", _csv_text(("name", "emotion"), [(r["name"], r["emotion"]) for r in rows]))
        meta = {**asdict(settings), "split": split, "videos": n,
                "counts": {e: labels.count(e) for e in settings.emotions}}
        atomic_write_text(tmp / "synthetic.json", json.dumps(meta, indent=1) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the dataset is an ordinary folder
        replace_dir(tmp, target)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def write_dataset(out, n_train: int, n_test: int, *, seed: int = 0, emotions=None,
                  label_type: str = "hybird", overwrite: bool = False, progress: bool = True) -> dict:
    """Write OUT/train and OUT/test; returns {split: folder}."""
    out = Path(out)
    if label_type not in LABEL_TYPES:
        raise InputError("--label-type", f"unknown label type {label_type!r}; choose from {', '.join(LABEL_TYPES)}")
    for flag, n in (("--train", n_train), ("--test", n_test)):
        if n < 0:
            raise InputError(flag, f"must be >= 0, got {n}")
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    settings = Settings(seed=int(seed), emotions=parse_emotions(emotions), label_type=label_type)
    for split in SPLITS:
        target = out / split
        if target.exists() and any(target.iterdir()) and not overwrite:
            if not (target / "synthetic.json").is_file():
                raise InputError(target, "exists and is not a synthetic dataset; choose another --out")
            raise InputError(target, "exists; pass --overwrite to replace it")
    return {split: write_split(out, split, n, settings, progress)
            for split, n in zip(SPLITS, (n_train, n_test))}


# ---- command line ---------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m my_affectgpt.datasets.synthetic",
        description="Write a synthetic MER-Caption+ dataset (OUT/train, OUT/test) whose emotion "
                    "labels are carried by the simulated OpenFace AUs only: frames, faces, audio "
                    "and subtitles are noise or neutral.",
        epilog="example: python -m my_affectgpt.datasets.synthetic --out data/synth --train 240 "
               "--test 60 --seed 0")
    p.add_argument("--out", required=True, help="output folder (gets train/ and test/)")
    p.add_argument("--train", type=int, required=True, help="number of training videos")
    p.add_argument("--test", type=int, required=True, help="number of held-out videos")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same files")
    p.add_argument("--label-type", choices=LABEL_TYPES, default="hybird",
                   help="which label CSVs to write: openset (track2), description (track3) or "
                        "hybird (both; default)")
    p.add_argument("--emotions", default=None,
                   help=f"comma-separated emotions, or 'all' (default: {','.join(DEFAULT_EMOTIONS)})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing synthetic dataset")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@cli_entry
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    folders = write_dataset(args.out, args.train, args.test, seed=args.seed, emotions=args.emotions,
                            label_type=args.label_type, overwrite=args.overwrite,
                            progress=not args.no_progress)
    emotions = ", ".join(parse_emotions(args.emotions))
    print(f"wrote {args.train} training and {args.test} test videos ({emotions}) to "
          f"{folders['train'].parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
