"""The synthetic MER-Caption+ generator: layout, labels, determinism, emotion only in the AUs."""
from __future__ import annotations

import csv
import hashlib
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from my_affectgpt.au.facs import EMOTION_PROTOTYPES
from my_affectgpt.au.openface import read_openface_csv
from my_affectgpt.common.errors import InputError
from my_affectgpt.datasets.synthetic import (DEFAULT_EMOTIONS, EMOTION_WORDS, match_emotion,
                                             parse_emotions, write_dataset)


def rows(path: Path) -> list:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def digests(folder: Path, pattern: str) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob(pattern)) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, 8, 4, seed=3, progress=False)
    return out


def test_cli_writes_both_splits_in_the_mer_caption_plus_layout(tmp_path):
    out = tmp_path / "data"
    result = run_cli("-m", "my_affectgpt.datasets.synthetic", "--out", out, "--train", 4, "--test", 2,
                     "--seed", 1)
    assert result.returncode == 0, result.stderr
    assert "wrote 4 training and 2 test videos" in result.stdout
    assert "synthetic train" in result.stderr  # the progress bar
    for split, n in (("train", 4), ("test", 2)):
        root = out / split
        names = [r["name"] for r in rows(root / "labels.csv")]
        assert len(names) == n and len(set(names)) == n
        for name in names:
            assert (root / "video" / f"{name}.mp4").stat().st_size > 0
            assert (root / "audio" / f"{name}.wav").is_file()
            assert (root / "openface_face" / name / f"{name}.npy").is_file()
            assert (root / "openface_output" / name / f"{name}.csv").is_file()
        for csv_name, column in (("track2_train_mercaptionplus.csv", "openset"),
                                 ("track3_train_mercaptionplus.csv", "reason"),
                                 ("subtitle_chieng.csv", "english")):
            table = rows(root / csv_name)
            assert [r["name"] for r in table] == names and all(r[column] for r in table)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_cli_help_and_errors(tmp_path):
    result = run_cli("-m", "my_affectgpt.datasets.synthetic", "--help")
    assert result.returncode == 0 and "--label-type" in result.stdout
    bad = run_cli("-m", "my_affectgpt.datasets.synthetic", "--out", tmp_path / "x", "--train", 2,
                  "--test", 1, "--emotions", "happiness,joy")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        bad.stderr.strip()] and "unknown emotion 'joy'" in bad.stderr
    again = run_cli("-m", "my_affectgpt.datasets.synthetic", "--out", tmp_path / "x", "--train", 2,
                    "--test", 1, "--no-progress")
    assert again.returncode == 0, again.stderr
    exists = run_cli("-m", "my_affectgpt.datasets.synthetic", "--out", tmp_path / "x", "--train", 2,
                     "--test", 1, "--no-progress")
    assert exists.returncode == 2 and "--overwrite" in exists.stderr
    replaced = run_cli("-m", "my_affectgpt.datasets.synthetic", "--out", tmp_path / "x", "--train", 3,
                       "--test", 1, "--no-progress", "--overwrite")
    assert replaced.returncode == 0 and len(rows(tmp_path / "x" / "train" / "labels.csv")) == 3


def test_media_files_are_small_and_readable(dataset):
    import cv2

    root = dataset / "train"
    name = rows(root / "labels.csv")[0]["name"]
    cap = cv2.VideoCapture(str(root / "video" / f"{name}.mp4"))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == 16 and frames[0].shape == (48, 48, 3)
    faces = np.load(root / "openface_face" / name / f"{name}.npy")
    assert faces.dtype == np.uint8 and faces.shape == (16, 48, 48, 3)
    with wave.open(str(root / "audio" / f"{name}.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        assert 2.0 <= w.getnframes() / 16000 <= 4.0


def test_classes_are_balanced_and_labels_agree(dataset):
    for split, n in (("train", 8), ("test", 4)):
        root = dataset / split
        labels = {r["name"]: r["emotion"] for r in rows(root / "labels.csv")}
        counts = Counter(labels.values())
        assert set(counts) <= set(DEFAULT_EMOTIONS) and max(counts.values()) - min(counts.values()) <= 1
        assert sum(counts.values()) == n
        for r in rows(root / "track2_train_mercaptionplus.csv"):
            assert r["openset"] == EMOTION_WORDS[labels[r["name"]]]
        for r in rows(root / "track3_train_mercaptionplus.csv"):
            assert match_emotion(r["reason"], DEFAULT_EMOTIONS) == labels[r["name"]]


def test_the_openface_csv_acts_the_label(dataset):
    root = dataset / "train"
    for r in rows(root / "labels.csv"):
        track = read_openface_csv(root / "openface_output" / r["name"] / f"{r['name']}.csv")
        usable = track.frames[track.frames["success"]]
        proto = EMOTION_PROTOTYPES[r["emotion"]]
        core = max(proto, key=proto.get)
        assert usable[f"{core}_r"].max() >= 1.5, (r["name"], r["emotion"], core)


def test_same_seed_same_files_and_media_independent_of_the_emotions(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_dataset(a, 4, 0, seed=5, progress=False)
    write_dataset(b, 4, 0, seed=5, progress=False)
    write_dataset(c, 4, 0, seed=5, emotions="fear,disgust", progress=False)
    assert digests(a, "*") == digests(b, "*")
    # other emotions, same seed: the labels and AUs change, frames/faces/audio/subtitles do not
    for pattern in ("*.mp4", "*.wav", "*.npy", "subtitle_chieng.csv"):
        assert digests(a, pattern) == digests(c, pattern), pattern
    assert digests(a, "labels.csv") != digests(c, "labels.csv")
    assert digests(a / "train" / "openface_output", "*.csv") != digests(c / "train" / "openface_output", "*.csv")
    write_dataset(tmp_path / "d", 4, 0, seed=6, progress=False)
    assert digests(a, "*.wav") != digests(tmp_path / "d", "*.wav")


def test_label_type_selects_the_label_csvs(tmp_path):
    write_dataset(tmp_path, 2, 1, label_type="openset", progress=False)
    assert (tmp_path / "train" / "track2_train_mercaptionplus.csv").is_file()
    assert not (tmp_path / "train" / "track3_train_mercaptionplus.csv").exists()


def test_emotion_helpers():
    assert parse_emotions(None) == DEFAULT_EMOTIONS
    assert parse_emotions("all")[0] == "neutral" and len(parse_emotions("all")) == 8
    assert parse_emotions("anger, happiness") == ("happiness", "anger")  # facs order
    with pytest.raises(InputError):
        parse_emotions("happiness")
    assert match_emotion("The character's emotional state is sad, then happy.") == "sadness"
    assert match_emotion("unhappy-ish? no: angry") == "anger"
    assert match_emotion("nothing here") is None
