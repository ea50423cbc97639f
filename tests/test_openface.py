"""OpenFace CSV reading: every variant of DESIGN.md §2, the real sample files, bad inputs,
CSV discovery and the FeatureExtraction subprocess contract."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from my_affectgpt.au.facs import AU_COLUMNS, R_COLUMNS
from my_affectgpt.au.openface import (find_openface_csvs, read_openface_csv,
                                      resolve_openface_bin, run_openface)
from my_affectgpt.au.simulate import COLUMNS, format_csv, simulate_track
from my_affectgpt.common.errors import InputError


def sim_df(emotion="happiness", n=90, seed=0, face_id=0):
    return simulate_track(np.random.default_rng(seed), emotion, n, face_id=face_id)


def write_df(path: Path, df, *, pad=False, crlf=False, columns=None) -> Path:
    """Write a DataFrame as OpenFace would (padded `, ` or plain), optionally with CRLF."""
    columns = list(columns or df.columns)
    sep = ", " if pad else ","
    lines = [sep.join(columns)]
    for row in df[columns].itertuples(index=False):
        lines.append(sep.join(str(v) for v in row))
    nl = "\r\n" if crlf else "\n"
    path.write_bytes((nl.join(lines) + nl).encode())
    return path


def au_values(track):
    return track.frames[list(AU_COLUMNS)].to_numpy(float)


@pytest.fixture
def base(tmp_path):
    df = sim_df()
    path = tmp_path / "vid.csv"
    path.write_text(format_csv(df.to_numpy(), pad=False))
    return df, read_openface_csv(path)


def test_canonical_table(base):
    df, track = base
    assert list(track.frames.columns[:4]) == ["frame", "timestamp", "confidence", "success"]
    assert list(track.frames.columns[4:]) == list(AU_COLUMNS)
    assert len(track.frames) == len(df)
    assert track.video == "vid" and track.face_id == 0
    np.testing.assert_allclose(au_values(track), df[list(AU_COLUMNS)].to_numpy(float))


@pytest.mark.parametrize("variant", ["padded", "crlf", "padded_crlf"])
def test_formatting_variants_read_identically(tmp_path, base, variant):
    df, ref = base
    path = write_df(tmp_path / "v.csv", df, pad="padded" in variant, crlf="crlf" in variant)
    track = read_openface_csv(path)
    np.testing.assert_allclose(au_values(track), au_values(ref))
    np.testing.assert_array_equal(track.usable, ref.usable)
    np.testing.assert_allclose(track.frames["timestamp"], ref.frames["timestamp"])


def test_old_file_without_face_id(tmp_path, base):
    df, ref = base
    track = read_openface_csv(write_df(tmp_path / "old.csv", df,
                                       columns=[c for c in COLUMNS if c != "face_id"]))
    assert track.face_id == 0
    np.testing.assert_allclose(au_values(track), au_values(ref))


def test_column_subset_pose_and_aus_only(tmp_path, base):
    df, ref = base
    cols = ["frame", "timestamp", "confidence", "success"] + [c for c in COLUMNS if c.startswith("pose_")] \
        + list(AU_COLUMNS)
    track = read_openface_csv(write_df(tmp_path / "subset.csv", df, columns=cols))
    np.testing.assert_allclose(au_values(track), au_values(ref))


def test_intensity_only_subset_marks_missing_presence_columns(tmp_path, base):
    df, ref = base
    track = read_openface_csv(write_df(tmp_path / "r.csv", df, columns=["frame", "success", *R_COLUMNS]))
    assert set(track.missing_columns) == {c for c in AU_COLUMNS if c.endswith("_c")}
    assert np.isnan(track.frames["AU28_c"]).all()
    np.testing.assert_allclose(track.frames[list(R_COLUMNS)], ref.frames[list(R_COLUMNS)])


def test_extra_columns_are_ignored(tmp_path, base):
    df, ref = base
    df = df.copy()
    df.insert(3, "annotator_note", "ok")
    df["custom_score"] = 7.5
    track = read_openface_csv(write_df(tmp_path / "extra.csv", df, pad=True))
    np.testing.assert_allclose(au_values(track), au_values(ref))


def two_face_file(tmp_path, drop_face1_after=30):
    a, b = sim_df("happiness", 90, seed=1, face_id=0), sim_df("anger", 90, seed=2, face_id=1)
    a["success"] = 1
    b["success"] = 1
    b.loc[b.index >= drop_face1_after, "success"] = 0   # face 1 lost after a while
    import pandas as pd
    rows = pd.concat([a, b]).sort_values(["frame", "face_id"], kind="stable")
    return write_df(tmp_path / "two.csv", rows, pad=True), a, b


def test_several_faces_default_is_most_successful_track(tmp_path):
    path, a, b = two_face_file(tmp_path)
    track = read_openface_csv(path)
    assert track.face_id == 0 and track.n_faces == 2
    np.testing.assert_allclose(au_values(track), a[list(AU_COLUMNS)].to_numpy(float))


def test_several_faces_picks_the_other_when_it_is_better_tracked(tmp_path):
    a, b = sim_df("happiness", 60, seed=1, face_id=0), sim_df("anger", 60, seed=2, face_id=1)
    a["success"], b["success"] = 0, 1
    a.loc[a.index < 5, "success"] = 1
    import pandas as pd
    path = write_df(tmp_path / "two.csv", pd.concat([a, b]).sort_values(["frame", "face_id"]))
    assert read_openface_csv(path).face_id == 1


def test_requested_face_id(tmp_path):
    path, a, b = two_face_file(tmp_path)
    track = read_openface_csv(path, face_id=1)
    assert track.face_id == 1 and track.usable.sum() == 30
    with pytest.raises(InputError, match="face_id 7 not in file"):
        read_openface_csv(path, face_id=7)


def test_failed_frames_are_marked(tmp_path):
    df = sim_df(n=40)
    df["success"], df["confidence"] = 1, 0.95
    df.loc[3, "success"] = 0
    df.loc[5, "confidence"] = 0.3
    df = df.astype({"AU12_r": object})
    df.loc[7, "AU12_r"] = "-nan(ind)"   # what some OpenFace builds write
    df.loc[9, "AU06_r"] = np.nan
    track = read_openface_csv(write_df(tmp_path / "f.csv", df, pad=True))
    failed = set(np.flatnonzero(~track.usable))
    assert failed == {3, 5, 7, 9}
    assert read_openface_csv(tmp_path / "f.csv", min_confidence=0.2).usable[5]


def test_simulated_tracking_loss_rows_are_failed(tmp_path):
    for seed in range(30):
        df = simulate_track(np.random.default_rng(seed), "surprise", 150, loss_rate=0.02)
        if (df["success"] == 0).any():
            break
    track = read_openface_csv(write_df(tmp_path / "loss.csv", df))
    np.testing.assert_array_equal(track.usable, (df["success"] == 1) & (df["confidence"] >= 0.8))


def test_real_pyfeat_file(pyfeat_csv):
    assert b"\r\n" in pyfeat_csv.read_bytes()[:5000]
    track = read_openface_csv(pyfeat_csv)
    assert track.face_id == 0 and len(track.frames) == 100 and track.usable.all()
    assert not track.missing_columns
    assert 0 < au_values(track)[:, :17].max() < 3        # low AU values


def test_real_facsvatar_file(facsvatar_csv):
    header = facsvatar_csv.read_text().splitlines()[0].split(",")
    assert len(header) == 714
    track = read_openface_csv(facsvatar_csv)
    assert len(track.frames) == 490 and track.usable.all()
    assert track.frames["AU07_r"].max() == pytest.approx(5.0)
    assert (np.diff(track.frames["frame"]) > 0).all()


# --- bad input -------------------------------------------------------------------------------

def _bad_files(tmp_path: Path) -> dict:
    good = format_csv(sim_df(n=20).to_numpy(), pad=False)
    header = good.splitlines()[0]
    all_failed = sim_df(n=20)
    all_failed["success"] = 0
    nan_aus = sim_df(n=20).astype({c: object for c in R_COLUMNS})
    nan_aus[list(R_COLUMNS)] = "nan"
    files = {
        "empty file": b"",
        "header only": (header + "\n").encode(),
        "binary file": bytes(range(256)) * 40,
        "no AU intensity columns": b"frame,timestamp,confidence,success\n1,0.0,0.98,1\n",
        "all 20 frames failed": format_csv(all_failed.to_numpy(), pad=False).encode(),
        "wrong delimiter": good.replace(",", ";").encode(),
    }
    paths = {cause: tmp_path / f"bad_{i}.csv" for i, cause in enumerate(files)}
    for cause, data in files.items():
        paths[cause].write_bytes(data)
    nan_path = tmp_path / "nan_aus.csv"
    write_df(nan_path, nan_aus)
    paths["all 20 frames failed (nan)"] = nan_path
    paths["does not exist"] = tmp_path / "missing.csv"
    return paths


def test_each_bad_input_raises_input_error_naming_the_cause(tmp_path):
    for cause, path in _bad_files(tmp_path).items():
        with pytest.raises(InputError) as err:
            read_openface_csv(path)
        assert err.value.path == str(path)
        assert cause.split(" (")[0] in str(err.value), (cause, str(err.value))


def test_bad_inputs_through_the_cli_give_one_line_and_exit_2(tmp_path):
    for cause, path in _bad_files(tmp_path).items():
        proc = run_cli("-m", "my_affectgpt.au", "describe", path, "--json")
        assert proc.returncode == 2, (cause, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in proc.stderr, (cause, proc.stderr)
        assert proc.stdout == ""


# --- discovery -------------------------------------------------------------------------------

def test_find_csvs_in_mer_factory_and_flat_layouts(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "a.csv").write_text("x")
    (tmp_path / "a" / "a_notes.csv").write_text("x")      # not <video>/<video>.csv
    (tmp_path / "b.csv").write_text("x")
    (tmp_path / "labels.csv").write_text("video,emotion\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "stray.csv").write_text("x")
    assert [v for v, _ in find_openface_csvs(tmp_path)] == ["a", "b"]
    with pytest.raises(InputError, match="does not exist"):
        find_openface_csvs(tmp_path / "nope")


# --- running FeatureExtraction ---------------------------------------------------------------

FAKE_OPENFACE = """#!{python}
# Stand-in for OpenFace FeatureExtraction: checks the argument list, writes a valid CSV.
import sys, pathlib
sys.path.insert(0, {repo!r})
args = sys.argv[1:]
video = pathlib.Path(args[args.index("-f") + 1])
out = pathlib.Path(args[args.index("-out_dir") + 1])
assert "-aus" in args
if video.read_bytes() == b"broken":
    print("could not open video"); sys.exit(3)
import numpy as np
from my_affectgpt.au.simulate import format_csv, simulate_track
df = simulate_track(np.random.default_rng(0), "happiness", 30)
(out / (video.stem + ".csv")).write_text(format_csv(df.to_numpy()))
with open(out.parent / "calls.log", "a") as f:
    f.write(video.name + "\\n")
"""


@pytest.fixture
def fake_openface(tmp_path):
    exe = tmp_path / "FeatureExtraction"
    exe.write_text(FAKE_OPENFACE.format(python=sys.executable, repo=str(Path(__file__).parents[1])))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


def test_run_openface_writes_mer_factory_layout_and_skips_done_videos(tmp_path, fake_openface):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("v1", "v2"):
        (videos / f"{name}.mp4").write_bytes(b"fake video")
    out = tmp_path / "of"
    proc = run_cli("-m", "my_affectgpt.au", "openface", videos, "--out-dir", out,
                   "--openface-bin", fake_openface)
    assert proc.returncode == 0, proc.stderr
    assert read_openface_csv(out / "v1" / "v1.csv").usable.any()
    assert (out / "calls.log").read_text().split() == ["v1.mp4", "v2.mp4"]
    run_cli("-m", "my_affectgpt.au", "openface", videos, "--out-dir", out, env={"OPENFACE_BIN": str(fake_openface)})
    assert (out / "calls.log").read_text().split() == ["v1.mp4", "v2.mp4"]   # nothing rerun
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_run_openface_failure_leaves_no_csv(tmp_path, fake_openface):
    video = tmp_path / "bad.mp4"
    video.write_bytes(b"broken")
    with pytest.raises(InputError, match="OpenFace failed .exit 3.: could not open video"):
        run_openface(video, tmp_path / "of", fake_openface)
    assert not (tmp_path / "of" / "bad").exists()
    assert not list((tmp_path / "of").iterdir())


def test_missing_openface_binary_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENFACE_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError, match="FeatureExtraction not found"):
        resolve_openface_bin()
    with pytest.raises(InputError, match="does not exist or is not executable"):
        resolve_openface_bin(str(tmp_path / "nope"))
    (tmp_path / "video.mp4").write_bytes(b"x")
    proc = run_cli("-m", "my_affectgpt.au", "openface", tmp_path / "video.mp4", "--out-dir", tmp_path / "o",
                   env={"PATH": str(tmp_path), "OPENFACE_BIN": ""})
    assert proc.returncode == 2 and "FeatureExtraction not found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
