"""The AffectGPT config: one YAML file with `model`, `datasets`, `run` and `inference` sections.

    cfg = load_affectgpt_config("train_configs/affectgpt_tiny_cpu.yaml", ["run.max_epoch=1"])

The schema below is the single list of keys a config may hold, with their defaults and types
(OmegaConf structured dataclasses). Loading a file:
- checks every key of the file and of the `--options` overrides against the schema first, so a
  misspelt key fails with the file, the full dotted key and a "did you mean" hint instead of
  being silently ignored or reported by OmegaConf without context;
- merges schema <- file <- options (types are checked by OmegaConf here) and resolves `${...}`;
- resolves relative values of path keys (PATH_KEYS): values from the file against the file's
  folder, values from `--options` and defaults (`run.output_dir: output`) against the current
  directory (where the user typed them), so the resolved config holds absolute paths only;
  absolute paths, null and embedded model names (`smollm2-135m-instruct`) stay as they are;
- checks the enumerated values (fusion kinds, au_mode, label_type, amp, resume; CHOICE_KEYS, whose
  options a misspelt key's hint names too), parses each dataset's `face_or_frame`, and validates
  the AU Agent keys of a dataset that uses the AU branch with the runtime's own
  `AUAgentConfig.from_mapping` (with au_mode values only its frame rule: no AU Agent is used).

The AU Agent keys of a dataset entry are generated from `au_agent.CONFIG_KEYS` (types and
defaults from `AUAgentConfig`), so the runtime and this schema cannot drift apart.

Why here, in datasets/: every reader of this config (the MER-Caption+ dataset, the training loop,
inference) can import this layer, and checking it needs the layers below (models: the AU Agent
keys, the LoRA settings and the au_mode values; datasets: face_or_frame). The generic YAML
plumbing (reading, --options, did-you-mean) is common/config.py.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from my_affectgpt.common.config import (check_keys, choice_error, full_key, matches, parse_options,
                                        read_yaml)
from my_affectgpt.common.errors import InputError
from my_affectgpt.models.au_agent import CONFIG_KEYS, AUAgentConfig
from my_affectgpt.models.au_modes import AU_AGENT_MODES, AU_MODES
from my_affectgpt.models.lora import LoraSettings

FUSIONS = ("qformer", "attention", "mean")
LABEL_TYPES = ("description", "openset", "hybird")
AMP_MODES = ("auto", "bf16", "fp16", "no")


# ---- schema ---------------------------------------------------------------------------------

@dataclass
class LLMTiny:
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 128
    vocab_size: int = 1000


@dataclass
class AudioTiny:
    hidden_size: int = 32
    num_layers: int = 1
    num_heads: int = 2
    intermediate_size: int = 64


@dataclass
class VisualTiny(AudioTiny):  # the same transformer sizes, plus the image patching
    patch_size: int = 8
    image_size: int = 32


@dataclass
class Fusion:
    multi: str = "qformer"
    audio: str = "qformer"
    face: str = "qformer"
    frame: str = "qformer"


@dataclass
class ModelConfig:
    llm_model: Optional[str] = None          # null: tiny random Qwen2 from llm_tiny
    tokenizer: Optional[str] = None          # null: llm_model's, or built from the dataset's text
    llm_tiny: LLMTiny = field(default_factory=LLMTiny)
    visual_encoder: Optional[str] = None     # null: tiny random CLIPVisionModel from visual_tiny
    visual_tiny: VisualTiny = field(default_factory=VisualTiny)
    audio_encoder: Optional[str] = None      # null: tiny random HubertModel from audio_tiny
    audio_tiny: AudioTiny = field(default_factory=AudioTiny)
    encoder_feature_dir: Optional[str] = None
    fusion: Fusion = field(default_factory=Fusion)
    num_query_token: int = 8
    num_au_query_token: int = 8
    qformer_layers: int = 2
    qformer_hidden_size: int = 768
    qformer_heads: int = 12
    au_mode: str = "features"                # features | text | values | hybrid (AU_MODES)
    lora: LoraSettings = field(default_factory=LoraSettings)  # the AU Agent recipe's LoRA keys
    max_length: int = 1024
    max_new_tokens: int = 128


def _au_agent_fields() -> list:
    """(config key, type, default) for every AU Agent key, from AUAgentConfig's own fields."""
    hints = typing.get_type_hints(AUAgentConfig)
    defaults = {f.name: f.default for f in dataclasses.fields(AUAgentConfig)}
    out = []
    for key, attr in CONFIG_KEYS.items():
        hint = hints[attr]
        args = typing.get_args(hint)
        if type(None) in args:  # `str | None` -> Optional[str], the spelling OmegaConf knows
            hint = Optional[next(a for a in args if a is not type(None))]
        default = defaults[attr]
        if key == "au_agent_backend":
            default = "hf"
        out.append((key, hint, field(default=default)))
    return out


@dataclass
class _DatasetBase:
    data_root: str = MISSING
    label_type: str = "hybird"
    face_or_frame: str = "multiface_audio_face_frame_au_text"
    num_frames: int = 8
    num_faces: int = 8
    num_audio_clips: int = 8
    clip_seconds: float = 2.0
    sample_rate: int = 16000
    image_size: int = 224
    use_au_agent: bool = True                # false: read au_feature_dir as it is, compute nothing


DatasetConfig = dataclasses.make_dataclass("DatasetConfig", _au_agent_fields(), bases=(_DatasetBase,))
DatasetConfig.__doc__ = "One MER-Caption+ dataset entry; AU Agent keys as au_agent.CONFIG_KEYS."
DatasetConfig.__module__ = __name__


@dataclass
class RunConfig:
    output_dir: str = "output"
    job_name: str = "default"
    seed: int = 42
    max_epoch: int = 3
    max_steps: Optional[int] = None
    batch_size_train: int = 2
    batch_size_eval: int = 8
    grad_accum_steps: int = 1
    lr: float = 1.0e-4
    min_lr: float = 1.0e-6
    warmup_steps: int = 100
    weight_decay: float = 0.05
    amp: str = "auto"
    num_workers: int = 2
    log_every: int = 10
    resume: Any = "auto"                     # auto | a checkpoint path | false


@dataclass
class TestDataset:
    name: str = MISSING
    data_root: str = MISSING
    label_csv: Optional[str] = None
    openface_output_dir: Optional[str] = None   # null: <data_root>/openface_output
    au_feature_dir: Optional[str] = None        # null: <data_root>/au_features


@dataclass
class InferenceConfig:
    test_epoch: Optional[int] = None
    test_epochs: Optional[str] = None        # "30-60", with skip_epoch
    skip_epoch: int = 1
    ckpt_dir: Optional[str] = None
    test_datasets: List[TestDataset] = field(default_factory=list)
    batch_size: int = 8
    max_new_tokens: int = 128
    zeroshot: bool = False
    results_dir: str = "output"
    openface_bin: Optional[str] = None       # FeatureExtraction for --video (else $OPENFACE_BIN, PATH)


@dataclass
class AffectGPTConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    datasets: Dict[str, DatasetConfig] = field(default_factory=dict)
    run: RunConfig = field(default_factory=RunConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


# Path keys, as dotted patterns (`*`: any dataset name or list index).
PATH_KEYS = (
    "model.llm_model", "model.tokenizer", "model.visual_encoder", "model.audio_encoder",
    "model.encoder_feature_dir",
    "datasets.*.data_root", "datasets.*.au_agent_base_model", "datasets.*.au_agent_lora_weights",
    "datasets.*.openface_output_dir", "datasets.*.au_feature_dir", "datasets.*.au_agent_cache",
    "datasets.*.au_agent_model_cache_dir", "datasets.*.au_text_encoder_pretrained",
    "datasets.*.au_text_encoder",
    "run.output_dir", "run.resume",
    "inference.ckpt_dir", "inference.results_dir",
    "inference.test_datasets.*.data_root", "inference.test_datasets.*.label_csv",
    "inference.test_datasets.*.openface_output_dir", "inference.test_datasets.*.au_feature_dir",
    "inference.openface_bin",
)
# Keys with enumerated values (dotted patterns, as PATH_KEYS): checked after loading, and named
# with their options when a misspelt key is close to one of them.
CHOICE_KEYS = {"model.au_mode": AU_MODES, "model.fusion.*": FUSIONS, "datasets.*.label_type": LABEL_TYPES,
               "run.amp": AMP_MODES}
# Values of path keys that are names, not paths.
_NOT_PATHS = {"auto", "none", "null", "openai", "random", "minilm", "clip"}
_TEXT_ENCODER_PREFIXES = ("sentence-transformers:", "sentence_transformers:", "st:", "open_clip:",
                          "open-clip:", "openclip:")


# ---- paths ----------------------------------------------------------------------------------

def is_path_key(dotted: str) -> bool:
    return any(matches(dotted, p) for p in PATH_KEYS)


def _resolve_value(key: str, value, base: Path):
    if not isinstance(value, str) or not value.strip() or "${" in value:
        return value  # null, booleans (run.resume: false), interpolations (resolved later)
    text = value.strip()
    if text.lower() in _NOT_PATHS:
        return value
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "au_agent_base_model":
        from my_affectgpt.models import base_llm

        if base_llm.is_embedded(text):
            return value
    if leaf == "au_text_encoder":
        # `kind:model`: only a model part that is a path (a folder, a config JSON) is resolved.
        for prefix in _TEXT_ENCODER_PREFIXES:
            if text.lower().startswith(prefix):
                model = text[len(prefix):]
                sub = model[len("local-dir:"):] if model.startswith("local-dir:") else model
                if "/" in sub or sub.endswith(".json"):
                    resolved = _resolve_value("x", sub, base)
                    return text[:len(text) - len(sub)] + resolved
                return value
        return value
    if leaf == "au_text_encoder_pretrained" and "/" not in text and "." not in text:
        return value  # an open_clip pretrained tag such as `laion2b_s34b_b79k`
    p = Path(text).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _resolve_paths(node, base: Path, prefix: str = "") -> None:
    """Resolve path values of a container (plain or OmegaConf) in place (see PATH_KEYS)."""
    if isinstance(node, (dict, DictConfig)):
        items = list(node.items())
    elif isinstance(node, (list, ListConfig)):
        items = list(enumerate(node))
    else:
        return
    for key, value in items:
        dotted = f"{prefix}{key}"
        if isinstance(value, (dict, list, DictConfig, ListConfig)):
            _resolve_paths(value, base, f"{dotted}.")
        elif is_path_key(dotted):
            node[key] = _resolve_value(dotted, value, base)


# ---- loading --------------------------------------------------------------------------------

def load_affectgpt_config(path, options: Sequence[str] = ()) -> DictConfig:
    """The merged, validated config of a YAML file plus `key=value` overrides (module docstring)."""
    path = Path(path)
    data = read_yaml(path, not_mapping="config must be a mapping with model/datasets/run/inference sections")
    check_keys(data, AffectGPTConfig, "", str(path), "", CHOICE_KEYS)
    _resolve_paths(data, path.resolve().parent)
    opts = parse_options(options, path)
    check_keys(opts, AffectGPTConfig, "", str(path), " (from --options)", CHOICE_KEYS)
    _resolve_paths(opts, Path.cwd())
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(AffectGPTConfig), data, opts)
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as err:
        msg = str(err).splitlines()[0]
        raise InputError(path, f"{full_key(err)}{msg}") from None
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise InputError(path, f"required value missing: {', '.join(repr(m) for m in missing)}")
    # What is still relative came from a default or an interpolation: the current directory,
    # as for --options, so the saved resolved config holds absolute paths only.
    _resolve_paths(cfg, Path.cwd())
    _validate_values(cfg, str(path))
    return cfg


def _choice(value, choices, key: str, source: str) -> None:
    message = choice_error(value, choices)
    if message:
        raise InputError(source, f"'{key}': {message}")


def _validate_values(cfg: DictConfig, source: str) -> None:
    from my_affectgpt.datasets.modalities import parse_face_or_frame

    for kind in ("multi", "audio", "face", "frame"):
        _choice(cfg.model.fusion[kind], FUSIONS, f"model.fusion.{kind}", source)
    _choice(cfg.model.au_mode, AU_MODES, "model.au_mode", source)
    _choice(cfg.run.amp, AMP_MODES, "run.amp", source)
    resume = cfg.run.resume
    if not (resume is False or resume is None or (isinstance(resume, str) and resume.strip())):
        raise InputError(source, f"'run.resume': must be auto, false or a checkpoint path, got {resume!r}")
    for key in ("max_epoch", "batch_size_train", "batch_size_eval", "grad_accum_steps", "log_every"):
        if cfg.run[key] < 1:
            raise InputError(source, f"'run.{key}': must be >= 1, got {cfg.run[key]}")
    for name, entry in cfg.datasets.items():
        prefix = f"datasets.{name}"
        _choice(entry.label_type, LABEL_TYPES, f"{prefix}.label_type", source)
        for key in ("num_frames", "num_faces", "num_audio_clips", "sample_rate", "image_size"):
            if entry[key] < 1:
                raise InputError(source, f"'{prefix}.{key}': must be >= 1, got {entry[key]}")
        if not entry.clip_seconds > 0:
            raise InputError(source, f"'{prefix}.clip_seconds': must be > 0, got {entry.clip_seconds}")
        try:
            modalities = parse_face_or_frame(entry.face_or_frame)
        except InputError as err:
            raise InputError(source, f"'{prefix}.face_or_frame': {err.cause}") from None
        if "au" in modalities:  # values mode reads only the frame rule: no AU Agent settings needed
            au_agent_config(entry, source=source, section=prefix,
                            describer=cfg.model.au_mode in AU_AGENT_MODES)


def au_agent_config(entry: Mapping, *, source: str = "config", section: str = "datasets",
                    describer: bool = True) -> AUAgentConfig:
    """The AU Agent settings of one dataset entry, with the data_root defaults filled in:
    openface_output_dir -> <data_root>/openface_output, au_feature_dir -> <data_root>/au_features.

    `describer=False` (au_mode values): only the frame rule (au_num_frames, au_sampling) and the
    OpenFace folder are used, so the describer keys are not checked (backend taken as template)."""
    mapping = {key: entry[key] for key in CONFIG_KEYS if key in entry}
    root = Path(str(entry["data_root"]))
    if mapping.get("openface_output_dir") is None:
        mapping["openface_output_dir"] = str(root / "openface_output")
    if mapping.get("au_feature_dir") is None:
        mapping["au_feature_dir"] = str(root / "au_features")
    try:
        return AUAgentConfig.from_mapping(mapping, f"{source}: {section}",
                                          **({} if describer else {"backend": "template"}))
    except InputError as err:
        if err.path and err.path.startswith(source):
            raise  # from_mapping already named the file and section
        raise InputError(source, f"'{section}.{err.path}': {err.cause}") from None


# ---- command line ---------------------------------------------------------------------------

def add_config_args(parser: argparse.ArgumentParser, example: str = "run.max_epoch=1 model.au_mode=text") -> None:
    """AffectGPT's usual `--cfg-path X.yaml --options key=value ...` (--options may repeat)."""
    parser.add_argument("--cfg-path", required=True, metavar="YAML",
                        help="config with model / datasets / run / inference sections")
    parser.add_argument("--options", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help=f"override config values, e.g. {example} (may be repeated; relative "
                             "paths resolve against the current directory)")


def config_from_args(args: argparse.Namespace) -> DictConfig:
    return load_affectgpt_config(args.cfg_path, args.options)
