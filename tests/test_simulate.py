"""Tests for the OpenFace CSV simulator: layout, determinism, AU dynamics, formatting, CLI."""
from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from my_affectgpt.au import facs
from my_affectgpt.au import simulate as sim
from my_affectgpt.common.errors import InputError

REPO = Path(__file__).parents[1]
SHARED = REPO.parent / "shared"
REAL_CSV = SHARED / "openface_samples" / "NumesSanguis_FACSvatar_demo.csv"
SMALL = dict(frames=(20, 40), workers=1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_rows(path: Path):
    """Header (names stripped) and rows as floats, via the csv module."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return [c.strip() for c in rows[0]], np.array([[float(v) for v in r] for r in rows[1:]])


def test_columns_match_real_openface_file():
    if not REAL_CSV.exists():
        pytest.skip(f"real OpenFace sample not found at {REAL_CSV}")
    with open(REAL_CSV, newline="") as f:
        header = [c.strip() for c in next(csv.reader(f))]
    assert list(sim.COLUMNS) == header


def test_column_layout_without_real_file():
    assert len(sim.COLUMNS) == 714 and len(set(sim.COLUMNS)) == 714
    assert sim.COLUMNS[:5] == ("frame", "face_id", "timestamp", "confidence", "success")
    assert sim.COLUMNS[-35:] == facs.R_COLUMNS + facs.C_COLUMNS


def test_same_seed_same_bytes_and_prefix_property(tmp_path):
    a = sim.write_dataset(tmp_path / "a", 5, seed=7, **SMALL)
    b = sim.write_dataset(tmp_path / "b", 3, seed=7, frames=(20, 40), workers=2)
    c = sim.write_dataset(tmp_path / "c", 3, seed=8, **SMALL)
    assert [p.name for p in a] == [f"sim_{i:05d}.csv" for i in range(5)]
    assert [sha256(p) for p in a[:3]] == [sha256(p) for p in b]
    assert [sha256(p) for p in c] != [sha256(p) for p in b]
    labels_a = (tmp_path / "a" / "labels.csv").read_text().splitlines()
    labels_b = (tmp_path / "b" / "labels.csv").read_text().splitlines()
    assert labels_a[:4] == labels_b
    # A rerun over existing files gives the same bytes and leaves no temp files behind.
    again = sim.write_dataset(tmp_path / "a", 5, seed=7, **SMALL)
    assert [sha256(p) for p in again] == [sha256(p) for p in a]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted([p.name for p in a] + ["labels.csv"])


def test_labels_csv(tmp_path):
    sim.write_dataset(tmp_path / "all", 30, seed=1, **SMALL)
    with open(tmp_path / "all" / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert (tmp_path / "all" / "labels.csv").read_text().startswith("video,emotion\n")
    assert [r["video"] for r in rows] == [f"sim_{i:05d}" for i in range(30)]
    assert {r["emotion"] for r in rows} <= set(facs.EMOTIONS)
    assert len({r["emotion"] for r in rows}) >= 4  # uniform over 8 emotions

    sim.write_dataset(tmp_path / "sub", 12, seed=1, emotions=["sadness", "happiness"], **SMALL)
    with open(tmp_path / "sub" / "labels.csv", newline="") as f:
        assert {r["emotion"] for r in csv.DictReader(f)} == {"happiness", "sadness"}


def test_padded_and_plain_files_hold_the_same_numbers(tmp_path):
    [padded] = sim.write_dataset(tmp_path / "pad", 1, seed=3, pad=True, **SMALL)
    [plain] = sim.write_dataset(tmp_path / "plain", 1, seed=3, pad=False, **SMALL)
    first_padded = padded.read_text().splitlines()[:2]
    first_plain = plain.read_text().splitlines()[:2]
    assert first_padded[0].startswith("frame, face_id, timestamp, confidence, success, gaze_0_x")
    assert first_plain[0].startswith("frame,face_id,timestamp,confidence,success,gaze_0_x")
    assert first_padded[1].startswith("1, 0, 0.000, ") and " " not in first_plain[1]
    h1, v1 = read_rows(padded)
    h2, v2 = read_rows(plain)
    assert h1 == h2 == list(sim.COLUMNS)
    assert v1.shape == v2.shape and 20 <= v1.shape[0] <= 40
    assert np.array_equal(v1, v2)


def test_file_values_follow_openface_conventions(tmp_path):
    [path] = sim.write_dataset(tmp_path, 1, seed=11, frames=(90, 90), fps=25.0, workers=1)
    header, v = read_rows(path)
    col = {name: i for i, name in enumerate(header)}
    assert np.array_equal(v[:, col["frame"]], np.arange(1, 91))
    assert np.allclose(v[:, col["timestamp"]], np.round(np.arange(90) / 25.0, 3))
    au_r = v[:, [col[c] for c in facs.R_COLUMNS]]
    assert au_r.min() >= 0 and au_r.max() <= 5
    assert np.allclose(au_r, np.round(au_r, 2))
    # Every data line shows OpenFace's decimals: 2 for AUs (also the 0/1 presences), 3 for timestamp.
    line = path.read_text().splitlines()[1].split(", ")
    assert len(line[col["timestamp"]].split(".")[1]) == 3
    assert all(len(line[col[c]].split(".")[1]) == 2 for c in facs.R_COLUMNS + facs.C_COLUMNS)


def _tracks(emotion, count, n_frames=120, **kw):
    return [sim.simulate_track(np.random.default_rng([99, i]), emotion, n_frames, **kw) for i in range(count)]


def test_simulate_track_dataframe():
    df = sim.simulate_track(np.random.default_rng(0), "surprise", 50, fps=10.0, face_id=3)
    assert list(df.columns) == list(sim.COLUMNS) and len(df) == 50
    assert all(dtype.kind in "if" for dtype in df.dtypes)
    assert df["frame"].dtype.kind == "i" and (df["face_id"] == 3).all()
    assert df["timestamp"].iloc[-1] == pytest.approx(4.9)
    assert df.attrs["emotion"] == "surprise" and 0.25 <= df.attrs["scale"] <= 1.0  # realistic: often subtle
    clean = sim.simulate_track(np.random.default_rng(0), "surprise", 50, profile="clean")
    assert 0.7 <= clean.attrs["scale"] <= 1.3
    with pytest.raises(InputError):
        sim.simulate_track(np.random.default_rng(0), "boredom", 50)


def test_clean_profile_happiness_apex_and_neutral_baseline():
    for df in _tracks("happiness", 10, profile="clean"):
        first, last = df.attrs["phases"]["apex"]
        apex = df[(df.frame >= first) & (df.frame <= last) & (df.success == 1)]
        assert len(apex) > 0
        assert (apex[["AU06_r", "AU12_r"]] >= 1).all().all()
        assert (apex[["AU06_c", "AU12_c"]] == 1).all().all()
        before = df[(df.frame < df.attrs["phases"]["onset"][0])]
        assert (before[["AU06_r", "AU12_r"]] < 1).all().all()  # neutral start
    non_blink = [c for c in facs.R_COLUMNS if c != "AU45_r"]
    neutral = _tracks("neutral", 10, n_frames=150, profile="clean")
    values = np.concatenate([df[non_blink].to_numpy() for df in neutral])
    assert (values >= 1).mean() < 0.001
    assert np.median(values) < 0.3
    # Blinks: short AU45 runs, several per 5 s video.
    for df in neutral:
        on = (df["AU45_r"] >= 1).to_numpy().astype(int)
        edges = np.flatnonzero(np.diff(np.r_[0, on, 0]))
        runs = edges[1::2] - edges[::2]
        assert 1 <= len(runs) <= 4 and runs.max() <= 4


def test_presence_consistent_with_intensity():
    for df in _tracks("fear", 5) + _tracks("anger", 5, profile="clean"):
        for code in facs.INTENSITY_CODES:
            assert ((df[f"{code}_r"] >= sim.PRESENCE_THRESHOLD) == (df[f"{code}_c"] == 1)).all()
        assert set(df["AU28_c"].unique()) <= {0.0, 1.0}


def test_tracking_loss_rows():
    tracks = _tracks("anger", 20)
    lost = np.concatenate([df[df.success == 0].to_numpy() for df in tracks])
    kept = np.concatenate([df[df.success == 1].to_numpy() for df in tracks])
    assert len(lost) > 0 and len(kept) > 10 * len(lost)
    col = {name: i for i, name in enumerate(sim.COLUMNS)}
    au = [col[c] for c in facs.AU_COLUMNS]
    assert (lost[:, au] == 0).all()
    assert (lost[:, col["confidence"]] < 0.5).all()
    assert ((kept[:, col["confidence"]] >= 0.85) & (kept[:, col["confidence"]] <= 0.98)).all()


def test_second_face(tmp_path):
    paths = sim.write_dataset(tmp_path / "two", 4, seed=5, second_face_prob=1.0, **SMALL)
    for path in paths:
        header, v = read_rows(path)
        frame, face, success = (v[:, header.index(c)] for c in ("frame", "face_id", "success"))
        assert set(face) == {0.0, 1.0}
        assert np.array_equal(frame[face == 0], np.arange(1, (face == 0).sum() + 1))
        key = frame * 10 + face  # interleaved per frame: sorted by (frame, face_id)
        assert (np.diff(key) > 0).all()
        assert success[face == 1].sum() < success[face == 0].sum()
    for path in sim.write_dataset(tmp_path / "one", 4, seed=5, second_face_prob=0.0, **SMALL):
        header, v = read_rows(path)
        assert set(v[:, header.index("face_id")]) == {0.0}
    # Face 0 does not depend on the second-face option.
    header, v = read_rows(tmp_path / "two" / "sim_00000.csv")
    _, single = read_rows(tmp_path / "one" / "sim_00000.csv")
    assert np.array_equal(v[v[:, 1] == 0], single)


def test_mer_factory_layout(tmp_path):
    paths = sim.write_dataset(tmp_path, 3, seed=2, layout="mer-factory", **SMALL)
    assert paths == [tmp_path / f"sim_{i:05d}" / f"sim_{i:05d}.csv" for i in range(3)]
    assert all(p.is_file() for p in paths)
    assert (tmp_path / "labels.csv").read_text().count("\n") == 4
    with pytest.raises(InputError):
        sim.write_dataset(tmp_path, 1, layout="nested", **SMALL)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "my_affectgpt.au.simulate", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli(tmp_path):
    out = tmp_path / "cli"
    done = _cli("--videos", "3", "--out-dir", str(out), "--frames", "10", "12", "--seed", "4",
                "--no-pad", "--emotions", "happiness,sadness", "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["labels.csv", "sim_00000.csv", "sim_00001.csv", "sim_00002.csv"]
    assert (out / "sim_00000.csv").read_text().startswith("frame,face_id,")
    lib = sim.write_dataset(tmp_path / "lib", 3, seed=4, frames=(10, 12), pad=False,
                            emotions="happiness,sadness", workers=1)
    assert [sha256(p) for p in lib] == [sha256(out / p.name) for p in lib]

    bad = _cli("--videos", "2", "--out-dir", str(tmp_path / "bad"), "--emotions", "happiness,boredom")
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and bad.stderr.startswith("error: --emotions:")
    assert "boredom" in bad.stderr

    helped = _cli("--help")
    assert helped.returncode == 0 and "--second-face-prob" in helped.stdout
