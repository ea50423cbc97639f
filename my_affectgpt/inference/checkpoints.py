"""Which checkpoints to test, and the model that runs them.

Selection follows upstream AffectGPT's `inference` keys:
- `test_epoch: 30`                      -> checkpoint_000030 only;
- `test_epochs: "30-60"`, `skip_epoch: 5` -> epochs 30, 35, ..., 60 (every skip_epoch-th epoch from
  the first of the range); epochs of the range without a checkpoint are reported and skipped;
- neither                               -> the last checkpoint of the folder.

The model is built once from the inference config (`model` section, the first `datasets` entry's
face_or_frame) with the tokenizer that training saved in the checkpoint folder; each selected
checkpoint then only swaps the trainable weights (LoRA, fusion, projections). A checkpoint trained
with another `model.au_mode` is refused in one line (`check_modes`, before any data or model loads).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from my_affectgpt.common.errors import InputError
from my_affectgpt.models.affectgpt_checkpoints import (CHECKPOINT_RE, build_model, check_au_mode,
                                                       checkpoint_metadata, job_dir, list_checkpoints,
                                                       load_checkpoint, mixed_precision)

log = logging.getLogger(__name__)


def checkpoint_folder(cfg: DictConfig, cfg_path) -> Path:
    """`inference.ckpt_dir`, else the training job folder of this very config."""
    folder = Path(cfg.inference.ckpt_dir) if cfg.inference.ckpt_dir else job_dir(cfg, cfg_path)
    if not folder.is_dir():
        raise InputError(folder, "checkpoint folder not found (train first, or set inference.ckpt_dir "
                                 "to the training job folder <output_dir>/<config name>/<job_name>)")
    return folder


def epoch_of(checkpoint: Path) -> int:
    m = CHECKPOINT_RE.match(Path(checkpoint).name)
    if not m:
        raise InputError(checkpoint, "not a checkpoint_<epoch:06d>.safetensors file")
    return int(m.group(1))


def parse_epoch_range(text: str) -> tuple[int, int]:
    """"30-60" -> (30, 60); "30" -> (30, 30)."""
    parts = [p.strip() for p in str(text).split("-")]
    try:
        first, last = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (None, None)
    except ValueError:
        first = last = None
    if first is None or first < 0 or last < first:
        raise InputError("inference.test_epochs", f"{text!r} is not a range like 30-60")
    return first, last


def select_checkpoints(folder, test_epoch=None, test_epochs=None, skip_epoch: int = 1) -> list[Path]:
    """The checkpoints to test, in epoch order (module docstring)."""
    folder = Path(folder)
    found = {epoch_of(p): p for p in list_checkpoints(folder)}
    have = ", ".join(str(e) for e in sorted(found)) or "none"
    if not found:
        raise InputError(folder, "no checkpoint_*.safetensors in this folder (train first, or set "
                                 "inference.ckpt_dir)")
    if test_epoch is not None and test_epochs:
        raise InputError("inference.test_epoch", "set either test_epoch or test_epochs, not both")
    if test_epoch is not None:
        if int(test_epoch) not in found:
            raise InputError("inference.test_epoch", f"no checkpoint for epoch {test_epoch} in "
                                                     f"{folder} (epochs there: {have})")
        return [found[int(test_epoch)]]
    if test_epochs:
        if int(skip_epoch) < 1:
            raise InputError("inference.skip_epoch", f"must be >= 1, got {skip_epoch}")
        first, last = parse_epoch_range(test_epochs)
        wanted = list(range(first, last + 1, int(skip_epoch)))
        missing = [e for e in wanted if e not in found]
        if len(missing) == len(wanted):
            raise InputError("inference.test_epochs", f"no checkpoint for epochs {test_epochs} "
                                                      f"(skip {skip_epoch}) in {folder} (epochs there: {have})")
        if missing:
            log.warning("no checkpoint for epoch(s) %s in %s: skipped", ", ".join(map(str, missing)), folder)
        return [found[e] for e in wanted if e in found]
    return [found[max(found)]]


def feature_dims(checkpoint) -> dict:
    """Input widths the training run recorded in the checkpoint (the AU text encoder's D)."""
    return json.loads(checkpoint_metadata(checkpoint).get("feature_dims") or "{}")


def check_modes(cfg: DictConfig, checkpoints) -> None:
    """Every checkpoint was trained with this config's model.au_mode (else one InputError)."""
    for ckpt in checkpoints:
        check_au_mode(ckpt, cfg.model.au_mode)


def device_for() -> torch.device:
    """The first GPU when there is one (inference runs on one device), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(cfg: DictConfig, device: torch.device):
    """bf16/fp16 autocast on a GPU as run.amp says (the same precision as training); none on CPU."""
    import contextlib

    if device.type != "cuda":
        return contextlib.nullcontext()
    mode = mixed_precision(cfg.run.amp)
    if mode == "no":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if mode == "bf16" else torch.float16)


def build_inference_model(cfg: DictConfig, modalities, folder: Path, checkpoint: Path,
                          device: torch.device | None = None):
    """The model of this config with the training tokenizer of `folder`, in eval mode, holding
    `checkpoint`'s trainable weights."""
    model_cfg = cfg.model
    if not model_cfg.llm_model and not model_cfg.tokenizer \
            and not (Path(folder) / "tokenizer" / "tokenizer.json").is_file():
        # A tiny LLM's tokenizer was trained on the training data and saved by train.py; a new
        # one would give every token another id.
        raise InputError(folder, "no tokenizer/tokenizer.json: with a tiny LLM (model.llm_model: null) "
                                 "the checkpoint folder must be a train.py job folder")
    model = build_model(cfg, modalities, work_dir=folder, dims=feature_dims(checkpoint))
    load_weights(model, checkpoint)
    return model.to(device or device_for()).eval()


def load_weights(model, checkpoint: Path) -> None:
    """Swap in one checkpoint's trainable weights (the frozen parts stay)."""
    try:
        load_checkpoint(model, checkpoint)
    except InputError as err:
        if err.path == "checkpoint":
            raise InputError(checkpoint, f"{err.cause}; was it trained with this config's model "
                                         "section and face_or_frame?") from None
        raise
    model.eval()
