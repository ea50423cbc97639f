"""Frozen modality encoders of AffectGPT: CLIP vision (frames, faces) and HuBERT (audio clips).

Both turn a batch of raw inputs into one vector per image / per clip and are never trained:
parameters have requires_grad=False, forward runs under no_grad, and `train()` keeps them in eval
mode (no dropout, no SpecAugment), so a checkpoint never needs them and a resumed run sees the
same features.

- `VisualEncoder`: images [B, F, 3, S, S] (CLIP-normalised) -> pooled output [B, F, D].
- `AudioEncoder`: waveforms [B, C, samples] at 16 kHz -> last hidden state mean over time [B, C, D].

Each is loaded from a local Hugging Face folder (CLIP ViT-L/14, HuBERT-large), or built tiny and
random from the `*_tiny` sizes in the config. Tiny encoders are initialised from a fixed seed, so
training and inference (a new process) build the very same frozen weights.

With `model.encoder_feature_dir` the encoders are not built at all: the batch already holds
[B, N, D] features, and `feature_dir_dims` reads D from the stored .npy headers (see there).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from my_affectgpt.common.errors import InputError

TINY_INIT_SEED = 0  # frozen random weights must be identical in every process that builds them


def _require_folder(path, what: str) -> Path:
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise InputError(folder, f"{what}: not a Hugging Face model folder (no config.json)")
    return folder


class FrozenEncoder(nn.Module):
    """Base class: frozen parameters, always in eval mode."""

    out_dim: int

    def _freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # a frozen encoder never leaves eval mode
        return super().train(False)


class VisualEncoder(FrozenEncoder):
    """CLIPVisionModel, one pooled vector per image."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.image_size = int(model.config.image_size)
        self.out_dim = int(model.config.hidden_size)
        self._freeze()

    @classmethod
    def from_config(cls, model_cfg: Mapping) -> "VisualEncoder":
        from transformers import CLIPVisionConfig, CLIPVisionModel

        if model_cfg.get("visual_encoder"):
            folder = _require_folder(model_cfg["visual_encoder"], "model.visual_encoder")
            try:
                return cls(CLIPVisionModel.from_pretrained(str(folder), local_files_only=True))
            except (OSError, ValueError) as err:
                raise InputError(folder, f"cannot load CLIP vision model: {err}") from None
        t = model_cfg["visual_tiny"]
        config = CLIPVisionConfig(hidden_size=t["hidden_size"], num_hidden_layers=t["num_layers"],
                                  num_attention_heads=t["num_heads"],
                                  intermediate_size=t["intermediate_size"],
                                  patch_size=t["patch_size"], image_size=t["image_size"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_INIT_SEED)
            return cls(CLIPVisionModel(config))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, f = images.shape[:2]
        pixels = images.flatten(0, 1)
        # The dataset's image size is a dataset setting; a tiny encoder wants its own. Resizing
        # here is what a CLIP image processor would have done.
        if pixels.shape[-1] != self.image_size or pixels.shape[-2] != self.image_size:
            pixels = F.interpolate(pixels, size=(self.image_size, self.image_size),
                                   mode="bilinear", align_corners=False, antialias=True)
        pixels = pixels.to(self.model.dtype)
        pooled = self.model(pixel_values=pixels).pooler_output
        return pooled.view(b, f, -1)


class AudioEncoder(FrozenEncoder):
    """HubertModel, one vector per clip (mean of the last hidden state over time)."""

    def __init__(self, model, normalize: bool = True):
        super().__init__()
        self.model = model
        self.normalize = normalize
        self.out_dim = int(model.config.hidden_size)
        self._freeze()

    @classmethod
    def from_config(cls, model_cfg: Mapping) -> "AudioEncoder":
        from transformers import HubertConfig, HubertModel

        if model_cfg.get("audio_encoder"):
            folder = _require_folder(model_cfg["audio_encoder"], "model.audio_encoder")
            try:
                model = HubertModel.from_pretrained(str(folder), local_files_only=True)
            except (OSError, ValueError) as err:
                raise InputError(folder, f"cannot load HuBERT model: {err}") from None
            return cls(model, normalize=_feature_extractor_normalizes(folder))
        t = model_cfg["audio_tiny"]
        hidden = int(t["hidden_size"])
        # The default 512-channel convolutional front end would dominate a tiny model's cost on
        # CPU; a tiny encoder's front end is as wide as its transformer.
        config = HubertConfig(hidden_size=hidden, num_hidden_layers=t["num_layers"],
                              num_attention_heads=t["num_heads"],
                              intermediate_size=t["intermediate_size"],
                              conv_dim=(hidden,) * 7,
                              num_conv_pos_embeddings=16,
                              num_conv_pos_embedding_groups=math.gcd(16, hidden))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_INIT_SEED)
            return cls(HubertModel(config), normalize=True)

    @torch.no_grad()
    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        b, c = waveforms.shape[:2]
        clips = waveforms.flatten(0, 1).float()
        if self.normalize:  # as Wav2Vec2FeatureExtractor(do_normalize=True): zero mean, unit variance
            clips = (clips - clips.mean(-1, keepdim=True)) / torch.sqrt(clips.var(-1, keepdim=True) + 1e-7)
        hidden = self.model(input_values=clips.to(self.model.dtype)).last_hidden_state
        return hidden.mean(1).view(b, c, -1)


def _feature_extractor_normalizes(folder: Path) -> bool:
    """HuBERT checkpoints differ: read do_normalize from the folder's feature extractor config."""
    cfg = folder / "preprocessor_config.json"
    if not cfg.is_file():
        return True
    try:
        return bool(json.loads(cfg.read_text(encoding="utf-8")).get("do_normalize", True))
    except json.JSONDecodeError as err:
        raise InputError(cfg, f"invalid JSON: {err}") from None


FEATURE_SUBDIRS = {"frame": "frame", "face": "face", "audio": "audio"}


def feature_dir_dims(feature_dir, needed) -> dict:
    """Widths D of precomputed encoder features, read from the first .npy header per modality.

    The model must know D when it is built (the optimizer is created before the first batch), and
    every file of one modality has the same D, so one header is enough. `needed` names the
    modalities ("frame", "face", "audio") whose folder must exist.
    """
    root = Path(feature_dir)
    dims = {}
    for name in needed:
        sub = root / FEATURE_SUBDIRS[name]
        first = next(iter(sorted(sub.glob("*.npy"))), None) if sub.is_dir() else None
        if first is None:
            raise InputError(sub, "model.encoder_feature_dir: no <name>.npy features here")
        try:
            shape = np.load(first, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as err:
            raise InputError(first, f"cannot read features: {err}") from None
        if len(shape) != 2:
            raise InputError(first, f"features must be [N, D], found shape {tuple(shape)}")
        dims[name] = int(shape[1])
    return dims
