"""Feature store: round trip, stale and corrupt detection, changed inputs, temp-file cleanup."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from my_affectgpt.common.errors import InputError
from my_affectgpt.models.feature_store import FeatureStore, csv_fingerprint, identity_hash

IDENT = {"describer": {"backend": "template"}, "text_encoder": {"kind": "open_clip", "model": "x"},
         "num_frames": 4}


def _feats(seed=0, t=4, d=6):
    return np.random.default_rng(seed).normal(size=(t, d)).astype(np.float16)


def _save(store, video="vid1", csv=None, seed=0):
    meta = {"status": "ok", "descriptions": ["a"] * 4}
    if csv is not None:
        meta["input"] = csv_fingerprint(csv)
    store.save(video, _feats(seed), meta)


def test_round_trip_and_layout(tmp_path):
    store = FeatureStore(tmp_path / "feat", IDENT)
    assert store.status("vid1") == "missing"
    _save(store)
    assert sorted(p.name for p in (tmp_path / "feat").iterdir()) == ["vid1.json", "vid1.npy"]
    feats, meta = store.load("vid1")
    assert feats.dtype == np.float16 and feats.shape == (4, 6)
    np.testing.assert_array_equal(feats, _feats(0))
    assert np.load(tmp_path / "feat" / "vid1.npy").dtype == np.float16  # plain .npy, readable anywhere
    assert meta["identity"] == IDENT and meta["identity_hash"] == identity_hash(IDENT)
    assert meta["features"]["shape"] == [4, 6] and meta["video"] == "vid1"
    assert store.status("vid1") == "done"
    # a reader without an identity (e.g. a data loader that only wants the files) loads too
    assert FeatureStore(tmp_path / "feat").status("vid1") == "done"


def test_identity_change_is_stale(tmp_path):
    _save(FeatureStore(tmp_path, IDENT))
    other = dict(IDENT, describer={"backend": "hf", "adapter_sha256": "abc"})
    store = FeatureStore(tmp_path, other)
    assert store.status("vid1") == "stale"
    with pytest.raises(InputError, match="stale"):
        store.load("vid1")
    feats, _ = store.load("vid1", allow_stale=True)
    assert feats.shape == (4, 6)
    _save(store, seed=1)  # recomputed: done again, for the new identity only
    assert store.status("vid1") == "done" and FeatureStore(tmp_path, IDENT).status("vid1") == "stale"


@pytest.mark.parametrize("damage", ["truncate_npy", "other_npy", "bad_json", "no_npy", "wrong_format"])
def test_corrupt_files_are_detected(tmp_path, damage):
    store = FeatureStore(tmp_path, IDENT)
    _save(store)
    npy, js = tmp_path / "vid1.npy", tmp_path / "vid1.json"
    if damage == "truncate_npy":
        npy.write_bytes(npy.read_bytes()[:-7])
    elif damage == "other_npy":  # a kill between the two renames: new .npy, old .json
        np.save(npy, _feats(5))
    elif damage == "bad_json":
        js.write_text(js.read_text()[:40])
    elif damage == "no_npy":
        npy.unlink()
    else:
        meta = json.loads(js.read_text())
        meta["format"] = 999
        js.write_text(json.dumps(meta))
    assert store.status("vid1") == "corrupt"
    with pytest.raises(InputError, match="corrupt"):
        store.load("vid1")


def test_changed_csv_is_detected_but_a_touch_is_not(tmp_path):
    csv = tmp_path / "vid1.csv"
    csv.write_text("frame, AU01_r\n1, 0.5\n")
    store = FeatureStore(tmp_path / "feat", IDENT)
    _save(store, csv=csv)
    assert store.status("vid1", csv) == "done"
    st = csv.stat()
    os.utime(csv, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # copied or touched: same content
    assert store.status("vid1", csv) == "done"
    csv.write_text("frame, AU01_r\n1, 0.7\n")  # same size, new content
    assert store.status("vid1", csv) == "changed_input"
    csv.write_text("frame, AU01_r\n1, 0.75\n")  # new size
    assert store.status("vid1", csv) == "changed_input"


def test_temp_files_of_a_killed_writer_are_cleaned_for_that_video_only(tmp_path):
    store = FeatureStore(tmp_path, IDENT)
    mine = [tmp_path / ".vid1.npy.abc123.tmp", tmp_path / ".vid1.json.x9.tmp"]
    theirs = tmp_path / ".vid2.npy.q.tmp"
    for p in (*mine, theirs):
        p.write_bytes(b"partial")
    assert store.status("vid1") == "missing"  # temp files are never taken for output
    _save(store)
    assert not any(p.exists() for p in mine) and theirs.exists()


def test_bad_video_names_and_writes_without_identity(tmp_path):
    store = FeatureStore(tmp_path, IDENT)
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(InputError):
            store.save(bad, _feats(), {})
    with pytest.raises(ValueError):
        FeatureStore(tmp_path).save("vid1", _feats(), {})
    with pytest.raises(ValueError):
        store.save("vid1", np.zeros(5, np.float16), {})
    with pytest.raises(InputError, match="no AU features"):
        store.load("nothing")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError):
        FeatureStore(tmp_path / "afile", IDENT)
