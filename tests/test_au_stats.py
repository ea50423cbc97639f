"""AU statistics (real beside simulated) and the calibrated simulator's tolerances."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from my_affectgpt.au import au_stats
from my_affectgpt.au.au_stats import TOLERANCES, Track, compare, statistics

REPO = Path(__file__).parents[1]
SHARED = REPO.parent / "shared"
REAL_DIRS = [SHARED / "openface_samples", SHARED / "labelled_au" / "ravdess_openface_actors_01-03"]


def _track(rows, frames=None, name="t"):
    values = np.zeros((len(rows), 18))
    for i, row in enumerate(rows):
        for code, v in row.items():
            values[i, au_stats.CODES.index(code)] = v
    frames = np.arange(1, len(rows) + 1) if frames is None else np.asarray(frames)
    return Track(name, values, frames)


def test_statistics_equal_a_hand_count():
    t = _track([
        {"AU06": 0.6, "AU12": 2.0},              # 2 active, one faint
        {"AU06": 0.44, "AU12": 2.2, "AU45": 1.5},  # 0.44 rounds to 0.4: inactive; blink starts
        {"AU12": 2.2, "AU45": 1.8, "AU25": 0.9},   # blink goes on (no new spike); mouth opens
        {"AU25": 0.0, "AU28": 1.0},              # only the lip suck; mouth closes
    ], frames=[1, 2, 3, 5])                      # frame 4 missing: 3 -> 5 is not a step
    s = statistics([[t]])
    assert s["active_count_hist"][:4] == [0.0, 0.25, 0.5, 0.25]  # counts 2, 2, 3, 1
    assert s["active_count_median"] == 2
    # active intensity values: 0.6, 2.0, 2.2, 1.5, 2.2, 1.8, 0.9 -> faint 0.6, 0.9
    assert s["faint_share"] == pytest.approx(2 / 7, abs=1e-4)
    assert s["activation_rate"]["AU12"] == 0.75 and s["activation_rate"]["AU28"] == 0.25
    assert s["intensity_quartiles"]["AU12"][1] == 2.2
    assert s["coactivation"]["AU06+AU12"] == 0.25
    # two steps (1->2, 2->3): one blink onset, one AU25 switch -> per 100 steps
    assert s["blink_spikes_per_100"] == 50.0
    assert s["mouth_switches_per_100"] == 50.0
    step1 = (0.16 + 0.2 + 1.5) / 17
    step2 = (0.44 + 0.3 + 0.9) / 17
    assert s["frame_change"] == pytest.approx((step1 + step2) / 2, abs=1e-4)


def test_sources_weigh_the_same_whatever_their_length():
    quiet = [_track([{}] * 90, name="quiet")]                 # 90 neutral frames
    busy = [_track([{"AU07": 1.2, "AU04": 1.1}] * 10, name="busy")]  # 10 frames, 2 active
    s = statistics([quiet, busy])
    assert s["active_count_hist"][0] == 0.5 and s["active_count_hist"][2] == 0.5
    assert s["sources"] == 2 and s["frames"] == 100


@pytest.mark.skipif(not all(d.is_dir() for d in REAL_DIRS), reason="../shared real OpenFace data not present")
def test_calibrated_simulator_is_within_tolerance_of_real_openface_output():
    real = statistics([au_stats.read_tracks(d) for d in REAL_DIRS])
    # Real frames are busy and faint: the facts the realistic profile was built to match.
    assert real["active_count_median"] >= 5 and real["faint_share"] > 0.3
    sim = statistics([au_stats.simulated_tracks(300, 0, "realistic")])
    rows = {r["statistic"]: r for r in compare(real, sim)}
    assert set(rows) == set(TOLERANCES)
    assert TOLERANCES["active_count_tv"] == 0.10 and TOLERANCES["faint_share_abs"] == 0.05
    assert all(r["ok"] for r in rows.values()), [r for r in rows.values() if not r["ok"]]
    # The clean profile is what real frames do not look like: it fails the same comparison.
    clean = {r["statistic"]: r for r in compare(real, statistics([au_stats.simulated_tracks(100, 0, "clean")]))}
    assert not clean["active_count_tv"]["ok"] and not clean["faint_share_abs"]["ok"]


def test_realistic_profile_reaches_long_states():
    sim = statistics([au_stats.simulated_tracks(120, 3, "realistic")])
    assert sum(sim["active_count_hist"][10:]) > 0.01  # frames with 10+ active AUs occur


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "my_affectgpt.au.simulate", "stats", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_stats_cli(tmp_path):
    from my_affectgpt.au.simulate import write_dataset

    real = tmp_path / "real"
    write_dataset(real, 6, seed=1, frames=(40, 60), workers=1, profile="clean")
    out = tmp_path / "stats.json"
    done = _cli("--real", str(real), "--videos", "20", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "active_count_tv" in done.stdout and "faint_share_abs" in done.stdout
    payload = json.loads(out.read_text())
    assert {"real", "simulated", "comparison", "tolerances"} <= set(payload)
    assert payload["sim"]["profile"] == "realistic" and payload["sim"]["videos"] == 20
    # --sim compares two folders; the same folder is at distance 0.
    same = _cli("--real", str(real), "--sim", str(real))
    assert same.returncode == 0 and "all statistics within tolerance" in same.stdout

    bad = _cli("--real", str(tmp_path / "missing"))
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "missing" in bad.stderr
    assert _cli("--help").returncode == 0
