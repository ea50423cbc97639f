"""AU Agent runtime: OpenFace CSV -> sampled frames -> one description per frame -> text features.

    python -m my_affectgpt.models.au_agent extract --openface-dir data/openface --out-dir data/au_features \\
        --config train_configs/config_with_au_agent.yaml
    python -m my_affectgpt.models.au_agent plot data/openface/vid0001/vid0001.csv --out vid0001.png \\
        --backend template

Why it is fast. AffectGPT reads AU features of 30K-130K videos x 8 frames; describing each frame
with a sampled `generate` call inside the data path costs tens of GPU-hours per epoch. Here:
- frames are described once, offline (`extract`), and stored per video (feature_store.py);
- equal AU states give equal canonical prompts (DESIGN.md §3), and each distinct prompt is
  generated once, greedily, in length-sorted left-padded batches that stop at EOS;
- a persistent SQLite cache keyed by prompt + prompt version + model identity + adapter hash +
  generation settings answers every prompt seen before, in any later run or process, without
  even loading the model;
- neutral shortcut: a frame with no active AU (canonical prompt ``neutral``) gets the fixed
  sentence NEUTRAL_DESCRIPTION without a model call. It is the sentence the rule teacher writes
  for neutral frames, so a fine-tuned adapter was trained towards it; it is part of the
  identity, and `au_agent_neutral_shortcut: false` sends neutral frames to the model instead.

Backends (one output contract: a list of descriptions in input order):
- ``hf``: transformers + peft (base model + LoRA merged for inference), the default;
- ``template``: the FACS rule teacher (teacher.RuleTeacher), no LLM, for tests and baselines;
- ``vllm``: vLLM on a GPU where installed (the adapter is merged once into the cache first).

Videos with fewer than T usable frames. Every usable frame is used, in time order, and slot k of T
shows usable frame floor(k * n / T) (nearest-frame upsampling, as frame samplers do for short
clips; au_values.sampled_rows, the rule the AU-values route shares), so the Q-Former still
sees T time steps with the same statistics; meta `status` is `few_frames` and `mask` is all
ones. A video with no usable frame (tracking lost throughout, or a header-only CSV) gets zero
features, `status: empty`, `valid: false` and an all-zero `mask`, so training can mask it.
A file that is not an OpenFace CSV at all is an error for that video.

Config keys (DESIGN.md §6, read from the YAML section that holds them) are listed in CONFIG_KEYS.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from my_affectgpt.au import prompts as au_prompts
from my_affectgpt.au.facs import (ACTION_UNITS, DEFAULT_BANDS, PRESENCE_ONLY, IntensityBands)
from my_affectgpt.au.frames import FrameAU, frame_aus
from my_affectgpt.au.openface import (DEFAULT_MIN_CONFIDENCE, find_openface_csvs,
                                      read_openface_csv, video_name)
from my_affectgpt.au.sampling import SAMPLING_METHODS
from my_affectgpt.au.teacher import NEUTRAL_SENTENCE, RuleTeacher
from my_affectgpt.common.errors import InputError, cli_entry
from my_affectgpt.common.answer_cache import AnswerCache
from my_affectgpt.models import base_llm
from my_affectgpt.models.au_values import is_empty_video_error, sampled_rows
from my_affectgpt.models.feature_store import FeatureStore, csv_fingerprint, identity_hash
from my_affectgpt.models.text_encoders import (DEFAULT_PRETRAINED, DEFAULT_SPEC, TextEncoderSpec,
                                               encoder_identity, file_sha256, load_text_encoder)

log = logging.getLogger(__name__)

BACKENDS = ("hf", "template", "vllm")
NEUTRAL_PROMPT = "neutral"
NEUTRAL_DESCRIPTION = NEUTRAL_SENTENCE
FEATURE_FORMAT = 1        # bump when the per-video rules above change
CPU_BATCH, GPU_BATCH = 32, 128

# Config key -> AUAgentConfig field. The first four are DESIGN.md §6; the rest are optional.
CONFIG_KEYS = {
    "au_agent_base_model": "base_model",
    "au_agent_lora_weights": "lora_weights",
    "au_agent_use_lora": "use_lora",
    "openface_output_dir": "openface_dir",
    "au_agent_backend": "backend",
    "au_agent_device": "device",
    "au_agent_dtype": "dtype",
    "au_agent_batch_size": "batch_size",
    "au_agent_max_new_tokens": "max_new_tokens",
    "au_agent_do_sample": "do_sample",
    "au_agent_seed": "seed",
    "au_agent_neutral_shortcut": "neutral_shortcut",
    "au_agent_cache": "cache_path",
    "au_agent_model_cache_dir": "model_cache_dir",
    "au_text_encoder": "text_encoder",
    "au_text_encoder_pretrained": "text_encoder_pretrained",
    "au_num_frames": "num_frames",
    "au_sampling": "sampling",
    "au_feature_dir": "feature_dir",
}
_IGNORED_KEYS = {"use_au_agent"}  # read by the AffectGPT dataset, not by the runtime


@dataclass
class AUAgentConfig:
    backend: str = "hf"
    base_model: str | None = None         # HF folder or embedded name (smollm2-135m-instruct)
    lora_weights: str | None = None       # LoRA adapter folder
    use_lora: bool | None = None          # None: use the adapter when one is given
    device: str = "auto"                  # auto: cuda:$LOCAL_RANK when available, else cpu
    dtype: str = "auto"                   # auto | bf16 | fp16 | fp32 (auto: bf16 GPU, fp32 CPU)
    batch_size: int = 0                   # 0: 32 on CPU, 128 on GPU
    max_new_tokens: int = 160
    do_sample: bool = False
    seed: int = 0                         # only used with do_sample
    neutral_shortcut: bool = True
    cache_path: str | None = "auto"       # auto: <model cache>/au_descriptions.sqlite; None: memory
    model_cache_dir: str | None = None    # converted embedded models; None: $AU_AGENT_CACHE or ./cache
    text_encoder: str = DEFAULT_SPEC
    text_encoder_pretrained: str | None = DEFAULT_PRETRAINED
    num_frames: int = 8
    sampling: str = "uniform"
    feature_dir: str | None = None
    openface_dir: str | None = None
    bands: IntensityBands = field(default_factory=lambda: DEFAULT_BANDS)
    min_confidence: float = DEFAULT_MIN_CONFIDENCE

    def __post_init__(self):
        self.validate()

    def validate(self) -> "AUAgentConfig":
        if self.backend not in BACKENDS:
            raise InputError("au_agent_backend", f"unknown backend {self.backend!r}; choose from {', '.join(BACKENDS)}")
        if self.sampling not in SAMPLING_METHODS:
            raise InputError("au_sampling", f"unknown method {self.sampling!r}; choose from {', '.join(SAMPLING_METHODS)}")
        for name, low in (("num_frames", 1), ("max_new_tokens", 1), ("batch_size", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"au_{name}", f"must be an integer >= {low}, got {value!r}")
        if self.dtype not in ("auto", "bf16", "fp16", "fp32"):
            raise InputError("au_agent_dtype", f"unknown value {self.dtype!r} (auto, bf16, fp16, fp32)")
        if self.backend != "template" and self.adapter is None and not self.base_model:
            raise InputError("au_agent_base_model", f"the {self.backend} backend needs a base model "
                                                    "(a Hugging Face folder or smollm2-135m-instruct)")
        if self.use_lora and not self.lora_weights:
            raise InputError("au_agent_use_lora", "is true but au_agent_lora_weights is not set")
        return self

    @property
    def adapter(self) -> str | None:
        use = self.use_lora if self.use_lora is not None else bool(self.lora_weights)
        return self.lora_weights if use and self.lora_weights else None

    @classmethod
    def from_mapping(cls, cfg: Mapping, source: str = "config", **overrides) -> "AUAgentConfig":
        """From a mapping of CONFIG_KEYS (unknown au_agent_* keys are errors: typos)."""
        kwargs = {}
        for key, value in cfg.items():
            if key in CONFIG_KEYS:
                kwargs[CONFIG_KEYS[key]] = value
            elif key.startswith(("au_agent_", "au_text_", "au_num_", "au_feature", "au_sampling")) \
                    and key not in _IGNORED_KEYS:
                raise InputError(f"{source}: {key}", "unknown AU Agent key; known: " + ", ".join(CONFIG_KEYS))
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("num_frames", "max_new_tokens", "batch_size", "seed"):
            if name in kwargs and isinstance(kwargs[name], str) and kwargs[name].strip().isdigit():
                kwargs[name] = int(kwargs[name])
        for name in ("base_model", "lora_weights", "cache_path", "model_cache_dir", "feature_dir",
                     "openface_dir", "text_encoder_pretrained"):
            if name in kwargs and kwargs[name] is not None:
                kwargs[name] = None if str(kwargs[name]).strip().lower() in ("", "none", "null") else str(kwargs[name])
        return cls(**kwargs)


def find_agent_section(root: Mapping, section: str | None = None, source: str = "config") -> tuple[str, dict]:
    """The mapping of a (loaded) config that holds the AU Agent keys, and its dotted name.

    `section` names it (e.g. `datasets.mercaptionplus`); otherwise the top level, `inference` and
    every `datasets.*` entry are searched, and settings that differ between them are an error.
    """
    if section:
        node = root
        for part in section.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise InputError(source, f"no section {section!r}")
            node = node[part]
        if not isinstance(node, Mapping):
            raise InputError(source, f"section {section!r} is not a mapping")
        return section, dict(node)
    candidates = [("", root)]
    if isinstance(root.get("inference"), Mapping):
        candidates.append(("inference", root["inference"]))
    if isinstance(root.get("datasets"), Mapping):
        candidates += [(f"datasets.{k}", v) for k, v in root["datasets"].items() if isinstance(v, Mapping)]
    found = [(n, dict(m)) for n, m in candidates
             if any(k in m for k in CONFIG_KEYS if k != "openface_output_dir")]
    if not found:
        return "", {k: v for k, v in root.items() if k in CONFIG_KEYS}
    agent_keys = lambda m: {k: m[k] for k in m if k in CONFIG_KEYS and k != "openface_output_dir"}  # noqa: E731
    first = agent_keys(found[0][1])
    for name, m in found[1:]:
        if agent_keys(m) != first:
            raise InputError(source, f"AU Agent settings differ between sections "
                                     f"{found[0][0] or '<top>'} and {name}; pick one with --section")
    return found[0]


def load_config(path=None, section: str | None = None, **overrides) -> AUAgentConfig:
    """AUAgentConfig from a YAML file (OmegaConf, interpolations resolved) plus overrides."""
    mapping: dict = {}
    source = "config"
    if path is not None:
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        p = Path(path)
        if not p.is_file():
            raise InputError(p, "config file not found")
        try:
            root = OmegaConf.to_container(OmegaConf.load(p), resolve=True)
        except (OmegaConfBaseException, ValueError, OSError) as err:  # yaml errors are ValueErrors
            raise InputError(p, f"cannot read config ({str(err).splitlines()[0]})") from None
        if not isinstance(root, dict):
            raise InputError(p, "config must be a mapping")
        source = str(p)
        name, mapping = find_agent_section(root, section, source)
        source = f"{p}:{name}" if name else str(p)
    return AUAgentConfig.from_mapping(mapping, source, **overrides)


# ---- identities -----------------------------------------------------------------------------

_MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "chat_template.jinja", "chat_template.json",
                base_llm.SOURCE_FILE, "au_agent_merge.json")


def base_fingerprint(spec, cache_dir=None) -> dict:
    """What identifies a base model without reading its weights.

    An embedded model: its converted folder name, which hashes the package version and GGUF.
    A folder: sha256 over its config, tokenizer and merge/source records plus the names and sizes
    of its weight files, so moving the folder keeps the identity and swapping weights changes it.
    """
    if base_llm.is_embedded(spec):
        return {"base_model": str(spec), "base_fingerprint": base_llm.converted_folder(str(spec), cache_dir).name}
    folder = base_llm.resolve_base_model(spec, cache_dir)
    h = hashlib.sha256()
    for name in _MODEL_FILES:
        p = folder / name
        if p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes() + b"\0")
    for p in sorted(folder.iterdir()):
        if p.suffix in (".safetensors", ".bin", ".pt", ".gguf") and p.is_file():
            h.update(f"{p.name}:{p.stat().st_size}\n".encode())
    return {"base_model": folder.resolve().name, "base_fingerprint": h.hexdigest()[:20]}


def adapter_fingerprint(adapter) -> dict:
    """sha256 of the adapter weights and config: a retrained adapter is a new identity."""
    folder = Path(adapter)
    cfg = folder / "adapter_config.json"
    if not cfg.is_file():
        raise InputError(folder, "not a LoRA adapter folder (no adapter_config.json)")
    weights = sorted(folder.glob("adapter_model.*"))
    if not weights:
        raise InputError(folder, "no adapter_model.safetensors in the adapter folder")
    h = hashlib.sha256(cfg.read_bytes())
    for w in weights:
        h.update(file_sha256(w).encode())
    return {"adapter": folder.resolve().name, "adapter_sha256": h.hexdigest()}


def prompt_identity() -> dict:
    texts = json.dumps([au_prompts.SYSTEM_PROMPT, au_prompts.USER_TEMPLATE])
    return {"prompt_version": au_prompts.PROMPT_VERSION,
            "prompt_sha256": hashlib.sha256(texts.encode()).hexdigest()[:16]}


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
    return "cpu"


def parse_au_text(text: str) -> dict:
    """Inverse of facs.au_state_text: `AU06 cheek raiser 2.1; AU28 lip suck present` -> {code: value}."""
    if text == NEUTRAL_PROMPT:
        return {}
    active = {}
    for part in text.split(";"):
        words = part.split()
        if not words or words[0] not in ACTION_UNITS:
            raise InputError("au_text", f"not a canonical AU text: {text!r}")
        code = words[0]
        if code in PRESENCE_ONLY:
            active[code] = 1.0
        else:
            try:
                active[code] = float(words[-1])
            except ValueError:
                raise InputError("au_text", f"no intensity for {code} in {text!r}") from None
    return active


# ---- backends -------------------------------------------------------------------------------

class TemplateBackend:
    """The rule teacher: its canonical wording gives equal prompts equal descriptions."""

    name = "template"
    uses_cache = False  # instant; a cache would only cost disk

    def __init__(self, config: AUAgentConfig):
        self.teacher = RuleTeacher(bands=config.bands)

    def identity(self) -> dict:
        return {"backend": self.name, "teacher": "rule",
                "bands": dataclasses.asdict(self.teacher.bands)}

    def generate(self, texts: Sequence[str], progress: bool = False) -> Iterator[tuple[list, list]]:
        yield list(texts), [self.teacher.describe(parse_au_text(t)) for t in texts]


class HFBackend:
    """transformers generation: base + LoRA merged, batched greedy (generation.generate_texts)."""

    name = "hf"
    uses_cache = True

    def __init__(self, config: AUAgentConfig, model=None, tokenizer=None):
        self.config = config
        self.device = resolve_device(config.device)
        self.model, self.tokenizer = model, tokenizer
        if model is not None:
            self.device = str(next(model.parameters()).device)
        self.batch_size = config.batch_size or (GPU_BATCH if self.device.startswith("cuda") else CPU_BATCH)

    def _dtype_name(self) -> str:
        import torch

        if self.model is not None:
            dt = next(self.model.parameters()).dtype
        else:
            dt = base_llm.pick_dtype(self.device, self.config.dtype)
        return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dt, str(dt))

    def identity(self) -> dict:
        cfg = self.config
        ident = {"backend": self.name}
        base = cfg.base_model or base_llm.adapter_base(cfg.adapter)
        ident.update(base_fingerprint(base, cfg.model_cache_dir))
        ident.update(adapter_fingerprint(cfg.adapter) if cfg.adapter else {"adapter": None})
        ident.update({"dtype": self._dtype_name(), "max_new_tokens": cfg.max_new_tokens,
                      "do_sample": cfg.do_sample})
        if cfg.do_sample:
            ident["seed"] = cfg.seed
        return ident

    def load(self):
        if self.model is None:
            cfg = self.config
            log.info("loading AU Agent model %s (adapter %s) on %s", cfg.base_model, cfg.adapter, self.device)
            self.model, self.tokenizer = base_llm.load_for_generation(
                cfg.base_model, cfg.adapter, device=self.device, dtype=cfg.dtype,
                cache_dir=cfg.model_cache_dir, merge=True)
            base_llm.check_chat_template(self.tokenizer, cfg.base_model or "model")
        return self.model, self.tokenizer

    def render(self, texts: Sequence[str]) -> list:
        _, tok = self.load()
        return [base_llm.render_prompt(tok, au_prompts.chat_messages(t)) for t in texts]

    def generate(self, texts: Sequence[str], progress: bool = False) -> Iterator[tuple[list, list]]:
        """Yields (texts, descriptions) per batch, longest prompts last, so callers can persist."""
        from my_affectgpt.models.generation import generate_texts

        model, tok = self.load()
        rendered = self.render(texts)
        lengths = [len(ids) for ids in tok(rendered, add_special_tokens=False)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        bar = tqdm(total=len(texts), desc="describe", unit="prompt", disable=not progress, leave=False)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.config.do_sample:
                import torch

                torch.manual_seed(self.config.seed + start)
            outs = generate_texts(model, tok, [rendered[i] for i in idx], batch_size=len(idx),
                                  max_new_tokens=self.config.max_new_tokens, do_sample=self.config.do_sample)
            bar.update(len(idx))
            yield [texts[i] for i in idx], outs
        bar.close()


class VLLMBackend(HFBackend):
    """vLLM offline engine (GPU). The adapter is merged once into <model cache>/merged/."""

    name = "vllm"
    uses_cache = True
    CHUNK = 2048  # prompts per engine call: vLLM batches internally; chunks let callers persist

    def __init__(self, config: AUAgentConfig):
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise InputError("au_agent_backend", "vllm is not installed (pip install vllm; GPU only), "
                                                 "use --backend hf") from None
        super().__init__(config)
        self.engine = None

    def _merged_folder(self) -> Path:
        from my_affectgpt.training.merge import merge

        cfg = self.config
        base = cfg.base_model or base_llm.adapter_base(cfg.adapter)
        ident = {**base_fingerprint(base, cfg.model_cache_dir), **adapter_fingerprint(cfg.adapter)}
        out = base_llm.cache_root(cfg.model_cache_dir) / "merged" / identity_hash(ident)
        if not (out / "config.json").is_file():
            merge(cfg.adapter, out, base=base, cache_dir=cfg.model_cache_dir, overwrite=True)
        return out

    def load(self):
        if self.engine is None:
            from vllm import LLM

            cfg = self.config
            folder = self._merged_folder() if cfg.adapter else base_llm.resolve_base_model(cfg.base_model, cfg.model_cache_dir)
            self.tokenizer = base_llm.load_tokenizer(folder)
            base_llm.check_chat_template(self.tokenizer, str(folder))
            dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[self._dtype_name()]
            self.engine = LLM(model=str(folder), tokenizer=str(folder), dtype=dtype, seed=cfg.seed)
        return self.engine, self.tokenizer

    def _dtype_name(self) -> str:
        if self.config.dtype != "auto":
            return self.config.dtype
        return super()._dtype_name()

    def generate(self, texts: Sequence[str], progress: bool = False) -> Iterator[tuple[list, list]]:
        from vllm import SamplingParams

        from my_affectgpt.models.generation import _stop_ids

        engine, tok = self.load()
        params = SamplingParams(temperature=0.7 if self.config.do_sample else 0.0,
                                max_tokens=self.config.max_new_tokens, seed=self.config.seed,
                                stop_token_ids=_stop_ids(tok), skip_special_tokens=True)
        for start in range(0, len(texts), self.CHUNK):
            chunk = list(texts[start:start + self.CHUNK])
            # Token ids, not text: vLLM would add a BOS that the chat template already has.
            ids = [tok(r, add_special_tokens=False)["input_ids"] for r in self.render(chunk)]
            outs = engine.generate([{"prompt_token_ids": i} for i in ids], params, use_tqdm=progress)
            yield chunk, [o.outputs[0].text.strip() for o in outs]


# ---- the agent ------------------------------------------------------------------------------

@dataclass
class AgentStats:
    frames: int = 0           # frames asked for
    unique_prompts: int = 0   # distinct prompts per describe() call, summed
    neutral_frames: int = 0   # answered by the neutral shortcut
    memory_hits: int = 0      # distinct prompts answered from this process's memory
    cache_hits: int = 0       # distinct prompts answered from the persistent cache
    generated: int = 0        # distinct prompts the backend generated
    generate_s: float = 0.0

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["duplicate_rate"] = round(1 - self.unique_prompts / self.frames, 4) if self.frames else 0.0
        return d


class AUAgent:
    """Descriptions and text features of OpenFace frames; see the module docstring.

    `model`/`tokenizer` inject an already loaded hf model (benchmarks, notebooks); otherwise the
    model loads on the first prompt that neither the neutral shortcut nor a cache answers.
    """

    def __init__(self, config: AUAgentConfig | None = None, *, model=None, tokenizer=None,
                 text_encoder=None, **overrides):
        if config is None:
            config = AUAgentConfig(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        if config.backend == "template":
            self.backend = TemplateBackend(config)
        elif config.backend == "vllm":
            self.backend = VLLMBackend(config)
        else:
            self.backend = HFBackend(config, model=model, tokenizer=tokenizer)
        self._identity = None
        self._memory: dict = {}
        self._cache = None
        self._encoder = text_encoder
        self.stats = AgentStats()

    # -- identity -----------------------------------------------------------------------------

    def identity(self) -> dict:
        """Everything that changes a description (no model is loaded to compute it)."""
        if self._identity is None:
            ident = {**self.backend.identity(), **prompt_identity()}
            ident["neutral_shortcut"] = NEUTRAL_DESCRIPTION if self.config.neutral_shortcut else None
            self._identity = ident
        return self._identity

    def encoder_spec(self) -> TextEncoderSpec:
        return TextEncoderSpec.parse(self.config.text_encoder, self.config.text_encoder_pretrained)

    def feature_identity(self) -> dict:
        """Identity of a video's features: describer + encoder + frame selection rules."""
        cfg = self.config
        return {"format": FEATURE_FORMAT, "describer": self.identity(),
                "text_encoder": encoder_identity(self.encoder_spec()),
                "num_frames": cfg.num_frames, "sampling": cfg.sampling,
                "bands": dataclasses.asdict(cfg.bands), "min_confidence": cfg.min_confidence}

    def cache_key(self, prompt: str) -> str:
        blob = json.dumps([prompt, identity_hash(self.identity())], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _persistent_cache(self) -> AnswerCache | None:
        if not self.backend.uses_cache:
            return None
        if self._cache is None:
            path = self.config.cache_path
            if path == "auto":
                path = base_llm.cache_root(self.config.model_cache_dir) / "au_descriptions.sqlite"
            self._cache = AnswerCache(path)
        return self._cache

    # -- descriptions -------------------------------------------------------------------------

    def describe(self, frames: Iterable[FrameAU | str], progress: bool = False) -> list:
        """One description per frame (FrameAU or canonical AU text), in input order."""
        texts = [f.prompt if isinstance(f, FrameAU) else str(f) for f in frames]
        self.stats.frames += len(texts)
        distinct = list(dict.fromkeys(texts))
        self.stats.unique_prompts += len(distinct)
        answers: dict = {}
        if self.config.neutral_shortcut and NEUTRAL_PROMPT in distinct:
            answers[NEUTRAL_PROMPT] = NEUTRAL_DESCRIPTION
            self.stats.neutral_frames += texts.count(NEUTRAL_PROMPT)
        todo = [t for t in distinct if t not in answers]
        for t in todo:
            if t in self._memory:
                answers[t] = self._memory[t]
        self.stats.memory_hits += len(answers) - (NEUTRAL_PROMPT in answers)
        todo = [t for t in todo if t not in answers]
        cache = self._persistent_cache()
        if cache is not None and todo:
            keys = {t: self.cache_key(t) for t in todo}
            found = cache.get_many(keys.values())
            for t in todo:
                if keys[t] in found:
                    answers[t] = self._memory[t] = found[keys[t]]
                    self.stats.cache_hits += 1
            todo = [t for t in todo if t not in answers]
        if todo:
            start = time.perf_counter()
            tag = identity_hash(self.identity())
            for chunk, outs in self.backend.generate(todo, progress=progress):
                for t, o in zip(chunk, outs):
                    answers[t] = self._memory[t] = o
                if cache is not None:  # per batch: a killed run keeps what it generated
                    cache.put_many([(self.cache_key(t), o) for t, o in zip(chunk, outs)],
                                   model=tag, prompt_version=au_prompts.PROMPT_VERSION)
                self.stats.generated += len(chunk)
            self.stats.generate_s += time.perf_counter() - start
        return [answers[t] for t in texts]

    # -- per video ----------------------------------------------------------------------------

    def text_encoder(self):
        if self._encoder is None:
            self._encoder = load_text_encoder(self.encoder_spec(), device=resolve_device(self.config.device))
        return self._encoder

    def plan_video(self, csv, video: str | None = None, num_frames: int | None = None,
                   sampling: str | None = None) -> dict:
        """Read and sample one video: {video, track, slots (T FrameAU or []), status, ...}.

        Raises InputError for a file that is not a usable OpenFace CSV; a CSV without any usable
        frame gives status `empty` (see the module docstring).
        """
        csv = Path(csv)
        video = video or video_name(csv)
        T = num_frames or self.config.num_frames
        sampling = sampling or self.config.sampling
        plan = {"video": video, "csv": str(csv), "track": None, "slots": [], "n_rows": 0,
                "n_usable": 0, "face_id": None, "n_faces": 0, "reason": None,
                "num_frames": T, "sampling": sampling}
        try:
            track = read_openface_csv(csv, min_confidence=self.config.min_confidence, video=video)
        except InputError as err:
            if not is_empty_video_error(err):
                raise
            plan.update(status="empty", reason=err.cause, n_rows=_count_rows(csv))
            return plan
        rows, status = sampled_rows(track, T, sampling)  # nearest-frame upsampling when short
        plan.update(track=track, slots=frame_aus(track, rows, self.config.bands),
                    status=status, n_rows=len(track.frames),
                    n_usable=int(track.usable.sum()), face_id=track.face_id, n_faces=track.n_faces)
        return plan

    def videos_features(self, items: Sequence[tuple[str, Path]], progress: bool = False,
                        num_frames: int | None = None, sampling: str | None = None) -> list:
        """[(video, features | None, meta | None, error | None)] for (video, csv) pairs.

        All frames of all videos are described in one call (distinct prompts once) and all
        distinct descriptions are encoded once. A bad CSV fails its own video only.
        """
        plans, out = [], []
        for video, csv in items:
            try:
                plans.append(self.plan_video(csv, video, num_frames, sampling))
            except InputError as err:
                out.append((video, None, None, err))
        slots = [s for p in plans for s in p["slots"]]
        descriptions = self.describe(slots, progress=progress) if slots else []
        distinct = list(dict.fromkeys(descriptions))
        enc = self.text_encoder()
        vectors = enc.encode(distinct) if distinct else np.zeros((0, enc.dim), np.float32)
        row = {d: i for i, d in enumerate(distinct)}
        pos = 0
        for p in plans:
            T = p["num_frames"]
            k = len(p["slots"])
            descs = descriptions[pos:pos + k]
            pos += k
            feats = np.zeros((T, enc.dim), dtype=np.float16)
            if k:
                feats[:] = vectors[[row[d] for d in descs]].astype(np.float16)
            out.append((p["video"], feats, self._meta(p, descs), None))
        return out

    def video_features(self, csv, num_frames: int | None = None, sampling: str | None = None):
        """(features float16 [T, D], meta) of one OpenFace CSV (see the module docstring).

        T and the sampling method default to the config's; the feature store only accepts
        features made with the config's values (they are part of its identity).
        """
        csv = Path(csv)
        _, feats, meta, err = self.videos_features([(video_name(csv), csv)], num_frames=num_frames,
                                                   sampling=sampling)[0]
        if err is not None:
            raise err
        return feats, meta

    def _meta(self, plan: dict, descriptions: list) -> dict:
        T = plan["num_frames"]
        slots = plan["slots"]
        valid = bool(slots)
        try:
            fp = csv_fingerprint(plan["csv"])
        except OSError:
            fp = None
        return {
            "csv": plan["csv"], "input": fp, "status": plan["status"], "valid": valid,
            "reason": plan["reason"], "num_frames": T, "sampling": plan["sampling"],
            "face_id": plan["face_id"], "n_faces": plan["n_faces"], "n_rows": plan["n_rows"],
            "n_usable": plan["n_usable"], "n_distinct_frames": len({s.frame for s in slots}),
            "mask": [1 if valid else 0] * T,
            "frames": [s.frame for s in slots], "timestamps": [s.timestamp for s in slots],
            "prompts": [s.prompt for s in slots], "descriptions": list(descriptions),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def __enter__(self) -> "AUAgent":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _count_rows(csv) -> int:
    try:
        with open(csv, "rb") as f:
            return max(0, sum(1 for line in f if line.strip()) - 1)
    except OSError:
        return 0


# ---- extraction over a folder ---------------------------------------------------------------

def dist_share() -> tuple[int, int]:
    """(rank, world size) from the variables `accelerate launch` / torchrun set; (0, 1) alone."""
    try:
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    except ValueError:
        raise InputError("RANK/WORLD_SIZE", "must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise InputError("RANK/WORLD_SIZE", f"rank {rank} is not within world size {world}")
    return rank, world


def extract(agent: AUAgent, openface_dir, out_dir, *, rank: int = 0, world: int = 1,
            chunk_videos: int = 64, force: bool = False, limit: int | None = None,
            progress: bool = True, errors=None) -> dict:
    """Write features for every CSV under `openface_dir` that has no up-to-date feature files.

    Process `rank` of `world` takes every world-th video of the sorted list, so processes share
    nothing but the description cache. Finished videos are skipped (resume); missing, stale,
    corrupt ones and those whose CSV changed are (re)computed. Returns counts.
    """
    if chunk_videos < 1:
        raise InputError("--chunk-videos", f"must be >= 1, got {chunk_videos}")
    items = find_openface_csvs(openface_dir)
    if not items:
        raise InputError(openface_dir, "no OpenFace CSV found (<dir>/<video>.csv or <dir>/<video>/<video>.csv)")
    if limit is not None:
        items = items[:limit]
    share = items[rank::world]
    store = FeatureStore(out_dir, agent.feature_identity())
    counts = {"videos": len(items), "share": len(share), "skipped": 0, "written": 0, "empty": 0,
              "few_frames": 0, "failed": 0, "missing": 0, "stale": 0, "changed_input": 0, "corrupt": 0}
    todo = []
    for video, csv in share:
        state = "missing" if force else store.status(video, csv)
        if state == "done":
            counts["skipped"] += 1
        else:
            counts[state] += 1
            todo.append((video, csv))
    start = time.perf_counter()
    bar = tqdm(total=len(share), initial=counts["skipped"], desc=f"AU features [{rank}/{world}]" if world > 1
               else "AU features", unit="video", disable=not progress, dynamic_ncols=True)
    try:
        for i in range(0, len(todo), chunk_videos):
            for video, feats, meta, err in agent.videos_features(todo[i:i + chunk_videos], progress=progress):
                if err is not None:
                    counts["failed"] += 1
                    print(f"error: {err}", file=errors or sys.stderr)
                    continue
                store.save(video, feats, meta)
                counts["written"] += 1
                counts["empty"] += meta["status"] == "empty"
                counts["few_frames"] += meta["status"] == "few_frames"
            bar.update(len(todo[i:i + chunk_videos]))
            s = agent.stats
            bar.set_postfix(generated=s.generated, cache_hits=s.cache_hits, neutral=s.neutral_frames, refresh=False)
    finally:
        bar.close()
    counts["seconds"] = round(time.perf_counter() - start, 2)
    counts["stats"] = agent.stats.as_dict()
    return counts


# ---- command line ---------------------------------------------------------------------------

_EPILOG = """examples:
  # features for every CSV of an OpenFace folder, settings from an AffectGPT config (DESIGN.md §6)
  python -m my_affectgpt.models.au_agent extract --openface-dir data/openface \\
      --out-dir data/au_features --config train_configs/config_with_au_agent.yaml
  # no LLM, offline text encoder (rule-teacher descriptions, MiniLM 384-d)
  python -m my_affectgpt.models.au_agent extract --openface-dir data/openface \\
      --out-dir data/au_features_template --backend template --text-encoder minilm
  # one process per GPU (torchrun sets RANK/WORLD_SIZE), each a disjoint share of the videos
  accelerate launch --multi_gpu --num_processes 8 -m my_affectgpt.models.au_agent extract \\
      --openface-dir data/openface --out-dir data/au_features \\
      --config train_configs/config_with_au_agent.yaml
A rerun skips finished videos and recomputes stale ones (another adapter, prompt version,
encoder, T or sampling method) and those whose CSV changed."""


def _agent_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("AU Agent (flags override the config)")
    g.add_argument("--config", help="YAML config holding the au_agent_* keys (an AffectGPT config works)")
    g.add_argument("--section", help="dotted config section holding them, e.g. datasets.mercaptionplus "
                                     "(default: searched)")
    g.add_argument("--backend", choices=BACKENDS, help="hf (default), template (rule teacher, no LLM), vllm (GPU)")
    g.add_argument("--base-model", help="base model: Hugging Face folder or smollm2-135m-instruct")
    g.add_argument("--lora-weights", help="LoRA adapter folder (merged into the base for inference)")
    g.add_argument("--no-lora", action="store_true", help="ignore the adapter (au_agent_use_lora: false)")
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    g.add_argument("--dtype", choices=("auto", "bf16", "fp16", "fp32"))
    g.add_argument("--batch-size", type=int, help=f"prompts per generate call (default {CPU_BATCH} CPU, {GPU_BATCH} GPU)")
    g.add_argument("--max-new-tokens", type=int, help="longest description in tokens (default 160)")
    g.add_argument("--cache", help="description cache (SQLite file; 'none' for memory only; default "
                                   "<model cache>/au_descriptions.sqlite)")
    g.add_argument("--model-cache-dir", help="where embedded models are converted (default $AU_AGENT_CACHE or ./cache)")
    g.add_argument("--num-frames", type=int, help="frames per video, T (default 8)")
    g.add_argument("--sampling", choices=SAMPLING_METHODS, help="uniform in time (default) or AU peaks")


def _config_from_args(args, **extra) -> AUAgentConfig:
    overrides = dict(backend=args.backend, base_model=args.base_model, lora_weights=args.lora_weights,
                     use_lora=False if args.no_lora else None, device=args.device, dtype=args.dtype,
                     batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, cache_path=args.cache,
                     model_cache_dir=args.model_cache_dir, num_frames=args.num_frames, sampling=args.sampling)
    overrides.update(extra)
    return load_config(args.config, args.section, **overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m my_affectgpt.models.au_agent",
        description="AU Agent runtime: describe sampled OpenFace frames and store their text features.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{extract,plot}")
    ex = sub.add_parser("extract", help="features for every video of an OpenFace folder (resumable)",
                        description="Write <out-dir>/<video>.npy (float16 [T, D]) and <video>.json per "
                                    "OpenFace CSV, skipping videos whose features are up to date.",
                        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("--openface-dir", help="OpenFace outputs (default: config openface_output_dir)")
    ex.add_argument("--out-dir", help="feature folder (default: config au_feature_dir)")
    _agent_args(ex)
    ex.add_argument("--text-encoder", help="open_clip:ViT-B-32 (default), minilm (offline, 384-d), "
                                          "sentence-transformers:FOLDER, open_clip:CONFIG.json")
    ex.add_argument("--text-encoder-pretrained", help="open_clip pretrained tag (default openai) or checkpoint file")
    ex.add_argument("--chunk-videos", type=int, default=64, help="videos described together (default 64)")
    ex.add_argument("--force", action="store_true", help="recompute every video")
    ex.add_argument("--limit", type=int, help="only the first N videos (quick trials)")
    ex.add_argument("--no-progress", action="store_true", help="no progress bar")
    pl = sub.add_parser("plot", help="picture of one video: AU curves, sampled frames, descriptions",
                        description="AU intensities over time (one line per active AU, failed frames "
                                    "shaded), the sampled frames marked, their descriptions below.")
    pl.add_argument("csv", help="one OpenFace CSV")
    pl.add_argument("--out", required=True, help="PNG file to write")
    pl.add_argument("--title", help="figure title (default: the video name and backend)")
    _agent_args(pl)
    return parser


def _run_extract(args) -> int:
    cfg = _config_from_args(args, text_encoder=args.text_encoder,
                            text_encoder_pretrained=args.text_encoder_pretrained)
    openface_dir = args.openface_dir or cfg.openface_dir
    out_dir = args.out_dir or cfg.feature_dir
    if not openface_dir:
        raise InputError("--openface-dir", "missing (or set openface_output_dir in the config)")
    if not out_dir:
        raise InputError("--out-dir", "missing (or set au_feature_dir in the config)")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit", f"must be >= 1, got {args.limit}")
    rank, world = dist_share()
    with AUAgent(cfg) as agent:
        counts = extract(agent, openface_dir, out_dir, rank=rank, world=world,
                         chunk_videos=args.chunk_videos, force=args.force, limit=args.limit,
                         progress=not args.no_progress)
    s = counts["stats"]
    print(f"extract [{rank}/{world}]: {counts['share']} of {counts['videos']} videos: "
          f"{counts['written']} written ({counts['empty']} empty, {counts['few_frames']} with fewer "
          f"than {cfg.num_frames} frames), {counts['skipped']} up to date, {counts['failed']} failed; "
          f"{s['frames']} frames, {s['unique_prompts']} distinct prompts, {s['neutral_frames']} neutral, "
          f"{s['cache_hits']} cache hits, {s['generated']} generated in {counts['seconds']:.1f} s -> {out_dir}")
    return 1 if counts["failed"] else 0


def _run_plot(args) -> int:
    from my_affectgpt.models.au_plot import plot_video

    cfg = _config_from_args(args)
    with AUAgent(cfg) as agent:
        plan = agent.plan_video(args.csv)
        if plan["status"] == "empty":
            raise InputError(args.csv, f"nothing to plot: {plan['reason']}")
        descriptions = agent.describe(plan["slots"])
    title = args.title or f"{plan['video']}  (AU Agent: {cfg.backend}" + \
        (f", {Path(cfg.base_model).name}" if cfg.backend != "template" and cfg.base_model else "") + ")"
    out = plot_video(plan["track"], plan["slots"], descriptions, args.out, bands=cfg.bands, title=title)
    print(f"plot: {len(plan['slots'])} sampled frames of {plan['video']} -> {out}")
    return 0


@cli_entry
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "extract":
        return _run_extract(args)
    return _run_plot(args)


if __name__ == "__main__":
    sys.exit(main())
