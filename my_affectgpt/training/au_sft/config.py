"""The AU Agent SFT recipe's config: schema (defaults = the production recipe), loading a YAML file
plus key=value overrides (load_config) and the value checks types cannot express (check_config)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from my_affectgpt.common.config import read_yaml
from my_affectgpt.common.errors import InputError
from my_affectgpt.models.lora import LoraSettings

# The defaults below are the production recipe; au_agent_lora_config.yaml restates them with
# comments. Relative paths are relative to the working directory (see the YAML header).

@dataclass
class DataConfig:
    train: str = "data/au_instructions/train.jsonl"
    val: str = "data/au_instructions/val.jsonl"
    max_seq_len: int = 384           # prompt + answer tokens; longer samples are cut at the end
    max_train_samples: Optional[int] = None  # first N lines only (quick runs); null = all
    max_val_samples: Optional[int] = None


@dataclass
class TrainConfig:
    epochs: float = 3.0
    max_steps: int = -1              # > 0 overrides epochs
    learning_rate: float = 5e-5
    lr_scheduler: str = "cosine"
    warmup: float = 0.03             # < 1: fraction of the steps; >= 1: number of steps
    weight_decay: float = 0.0
    batch_size: int = 4              # per device
    eval_batch_size: int = 8
    grad_accum: int = 4
    max_grad_norm: float = 1.0
    precision: str = "auto"          # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp16 | fp32
    gradient_checkpointing: bool = False
    compile_blocks: bool = False     # torch.compile each layer's MLP and norms (compiled_blocks.py)
    group_by_length: bool = True
    eval_steps: int = 200
    save_steps: int = 200            # a multiple of eval_steps
    save_total_limit: Optional[int] = 3  # the best checkpoint is always kept besides these
    logging_steps: int = 10
    report_to: List[str] = field(default_factory=lambda: ["tensorboard"])
    seed: int = 42
    dataloader_workers: int = 0
    resume: str = "auto"             # auto: from the last complete checkpoint | never | a path
    deepspeed: Optional[str] = None  # e.g. train_configs/deepspeed_zero3.json
    extra: Dict[str, Any] = field(default_factory=dict)  # more TrainingArguments, by name


@dataclass
class SFTConfig:
    model: str = "smollm2-135m-instruct"  # embedded model name, or a local HF folder
    cache_dir: Optional[str] = None      # null: $AU_AGENT_CACHE, else ./cache
    output_dir: str = "output/au_agent_lora"
    data: DataConfig = field(default_factory=DataConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    training: TrainConfig = field(default_factory=TrainConfig)


def _config_error(source, err: OmegaConfBaseException) -> InputError:
    key = getattr(err, "full_key", None) or "?"
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    if "Key '" in msg and "not in" in msg:
        return InputError(source, f"unknown config key '{key}'")
    return InputError(source, f"bad value for '{key}': {msg}")


def load_config(path=None, overrides=()) -> Any:
    """Defaults <- YAML file <- key=value overrides (OmegaConf dotlist), type-checked.

    Unknown keys are errors naming the key, so a typo never trains with a silent default.
    """
    cfg = OmegaConf.structured(SFTConfig)
    if path is not None:
        path = Path(path)
        data = read_yaml(path, not_mapping="the config must be a mapping of keys to values")
        try:
            cfg = OmegaConf.merge(cfg, data)
        except OmegaConfBaseException as err:
            raise _config_error(path, err) from None
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise InputError(item, "overrides look like key=value, e.g. training.epochs=1")
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as err:
        raise _config_error("override", err) from None
    return cfg


def check_config(cfg) -> None:
    """Value checks that types alone cannot express; fast, before anything heavy is loaded."""
    t = cfg.training
    if t.precision not in ("auto", "bf16", "fp16", "fp32"):
        raise InputError("training.precision", f"'{t.precision}' is not auto, bf16, fp16 or fp32")
    for key in ("batch_size", "eval_batch_size", "grad_accum", "eval_steps", "save_steps",
                "logging_steps"):
        if getattr(t, key) < 1:
            raise InputError(f"training.{key}", "must be at least 1")
    if t.save_steps % t.eval_steps:
        raise InputError("training.save_steps", f"{t.save_steps} is not a multiple of "
                         f"training.eval_steps={t.eval_steps} (the best checkpoint is chosen at saves)")
    if t.max_steps <= 0 and t.epochs <= 0:
        raise InputError("training.epochs", "must be > 0 unless training.max_steps is set")
    if cfg.lora.r < 1 or not cfg.lora.target_modules:
        raise InputError("lora", "r must be >= 1 and target_modules non-empty")
    if cfg.lora.top_layers is not None and cfg.lora.top_layers < 1:
        raise InputError("lora.top_layers", "must be at least 1 (null = all layers)")
    if cfg.data.max_seq_len < 8:
        raise InputError("data.max_seq_len", "must be at least 8")
    from my_affectgpt.models import base_llm

    if not base_llm.is_embedded(cfg.model):
        base_llm.resolve_base_model(cfg.model)  # a local folder: exists and has config.json
    for key in ("train", "val"):
        p = Path(cfg.data[key])
        if not p.is_file():
            raise InputError(p, f"data.{key}: file not found")
    if t.deepspeed:
        import importlib.util

        if not Path(t.deepspeed).is_file():
            raise InputError(t.deepspeed, "training.deepspeed: config file not found")
        if importlib.util.find_spec("deepspeed") is None:
            raise InputError(t.deepspeed, "training.deepspeed is set but DeepSpeed is not installed "
                                          "(pip install deepspeed, or set training.deepspeed=null)")
