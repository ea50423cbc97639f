"""AffectGPT's job folder and checkpoints, and the model they load into: what training writes and
inference reads, so that both import this module and inference never goes through the training loop.

Layout: `<run.output_dir>/<config stem>/<run.job_name>/` holds the resolved `config.yaml`, the
tokenizer, `checkpoint_<epoch:06d>.safetensors` (trainable weights only, with the model's `au_mode`
and input widths in its metadata) and `checkpoint_<epoch:06d>.state/` (training state, with
`trainer_state.json`). A checkpoint of another `model.au_mode` is refused in one line.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

import torch
from omegaconf import DictConfig

from my_affectgpt.common.atomic import atomic_write_bytes
from my_affectgpt.common.errors import InputError

CHECKPOINT_RE = re.compile(r"^checkpoint_(\d{6})\.safetensors$")
STATE_SUFFIX = ".state"
TRAINER_STATE = "trainer_state.json"
CONFIG_NAME = "config.yaml"


def job_dir(cfg: DictConfig, cfg_path) -> Path:
    """`<run.output_dir>/<config file stem>/<run.job_name>/` (AffectGPT's `output/<cfg>/<job>`)."""
    return Path(cfg.run.output_dir) / Path(cfg_path).stem / str(cfg.run.job_name)


def checkpoint_path(folder, epoch: int) -> Path:
    return Path(folder) / f"checkpoint_{epoch:06d}.safetensors"


def state_dir(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(STATE_SUFFIX)


def read_trainer_state(checkpoint: Path) -> dict | None:
    """The progress stored beside a checkpoint, or None when the pair is not complete."""
    path = state_dir(checkpoint) / TRAINER_STATE
    if not checkpoint.is_file() or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def list_checkpoints(folder) -> list[Path]:
    """Checkpoint files of a job folder in epoch order (weights only; the state may be absent)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def save_trainable(path: Path, state: dict, metadata: dict) -> None:
    """Trainable weights as safetensors, written to a temp file and renamed (never half-written)."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    atomic_write_bytes(path, save(tensors, metadata={k: str(v) for k, v in metadata.items()}))


def checkpoint_metadata(path) -> dict:
    """The string metadata of a checkpoint (epoch, global_step, feature_dims, ...)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # safetensors raises its own error type for a damaged file
        raise InputError(path, f"cannot read checkpoint ({err})") from None


def load_trainable(path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error type for a damaged file
        raise InputError(path, f"cannot read checkpoint ({err})") from None


def check_au_mode(path, au_mode: str) -> None:
    """Refuse a checkpoint trained with another model.au_mode (checked before anything loads);
    checkpoints older than the metadata key pass (their weights' names still must fit)."""
    trained = checkpoint_metadata(path).get("au_mode")
    if trained is not None and trained != str(au_mode):
        raise InputError(path, f"trained with model.au_mode={trained}, but this config has "
                               f"model.au_mode={au_mode} (--options model.au_mode={trained}, or a "
                               "checkpoint of this mode)")


def load_checkpoint(model, path) -> None:
    """A checkpoint's trainable weights into `model` (same au_mode, names and shapes)."""
    check_au_mode(path, model.au_mode)
    model.load_trainable_state_dict(load_trainable(path))


def build_model(cfg: DictConfig, modalities, *, corpus: Iterable[str] = (), work_dir=None,
                dims: dict | None = None):
    from my_affectgpt.models.affectgpt import AffectGPT

    return AffectGPT(cfg.model, modalities, tokenizer_corpus=list(corpus), work_dir=work_dir,
                     feature_dims=dims or None)


def mixed_precision(amp: str) -> str:
    """run.amp -> accelerate's mixed_precision: auto is bf16 on CUDA, off elsewhere."""
    if amp == "auto":
        return "bf16" if torch.cuda.is_available() else "no"
    if amp == "fp16" and not torch.cuda.is_available():
        raise InputError("run.amp", "fp16 needs a CUDA GPU; use auto, bf16 or no")
    return amp
