"""Shared fixtures: the real OpenFace samples in ../shared (skipped when absent), paths."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_SAMPLES = REPO.parent / "shared" / "openface_samples"
PYFEAT_CSV = SHARED_SAMPLES / "cosanlab_py-feat_OpenFace_Test.csv"
FACSVATAR_CSV = SHARED_SAMPLES / "NumesSanguis_FACSvatar_demo.csv"


@pytest.fixture
def pyfeat_csv() -> Path:
    if not PYFEAT_CSV.is_file():
        pytest.skip("../shared/openface_samples is not present")
    return PYFEAT_CSV


@pytest.fixture
def facsvatar_csv() -> Path:
    if not FACSVATAR_CSV.is_file():
        pytest.skip("../shared/openface_samples is not present")
    return FACSVATAR_CSV


def run_cli(*args, cwd=REPO, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run `python <args>` as a user would, from the repository root."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run far faster on one torch thread on a shared 2-core machine: two spinning
    OpenMP threads can make them 100x slower and they gain nothing from more."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny random Qwen2 folder (tests/tiny_llm.py), one per test module."""
    from tiny_llm import make_tiny_qwen2

    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny") / "tiny-qwen2")
