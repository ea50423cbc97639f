"""AU Agent settings: the AUAgentConfig dataclass, the config keys that set it (CONFIG_KEYS,
DESIGN.md §6) and reading them from a YAML file (load_agent_config, find_agent_section)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from my_affectgpt.au.facs import DEFAULT_BANDS, IntensityBands
from my_affectgpt.au.openface import DEFAULT_MIN_CONFIDENCE
from my_affectgpt.au.sampling import SAMPLING_METHODS
from my_affectgpt.common.errors import InputError
from my_affectgpt.models.text_encoders import DEFAULT_PRETRAINED, DEFAULT_SPEC

BACKENDS = ("hf", "template", "vllm")
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
    "au_agent_verify": "verify",
    "au_agent_cache": "cache_path",
    "au_agent_model_cache_dir": "model_cache_dir",
    "au_text_encoder": "text_encoder",
    "au_text_encoder_pretrained": "text_encoder_pretrained",
    "au_num_frames": "num_frames",
    "au_sampling": "sampling",
    "au_feature_dir": "feature_dir",
}
VERIFY_MODES = ("off", "flag", "repair")   # see verify.py
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
    verify: str = "repair"                # off | flag | repair: each description read by the judge
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
        if self.verify not in VERIFY_MODES:
            raise InputError("au_agent_verify", f"unknown value {self.verify!r}; choose from "
                                                f"{', '.join(VERIFY_MODES)}")
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


def load_agent_config(path=None, section: str | None = None, **overrides) -> AUAgentConfig:
    """AUAgentConfig from a YAML file (OmegaConf, interpolations resolved) plus overrides."""
    mapping: dict = {}
    source = "config"
    if path is not None:
        from my_affectgpt.common.config import read_yaml  # lazy: omegaconf only when a file is read

        p = Path(path)
        if not p.is_file():
            raise InputError(p, "config file not found")
        root = read_yaml(p, resolve=True)
        source = str(p)
        name, mapping = find_agent_section(root, section, source)
        source = f"{p}:{name}" if name else str(p)
    return AUAgentConfig.from_mapping(mapping, source, **overrides)
