"""AU Agent supervised fine-tuning: a base chat LM + LoRA, trained with the transformers Trainer.

One readable recipe driven by `au_agent_lora_config.yaml`:
    python -m my_affectgpt.training.au_sft --config au_agent_lora_config.yaml [key=value ...]
(`train_au_agent.sh` runs the same through `accelerate launch`, on 1..N GPUs or the CPU).

What this file adds to Trainer + peft, and nothing more:
- data: JSONL chat samples (DESIGN.md §4) -> token ids, labels only on the answer + end-of-turn;
- loss: the output layer and cross-entropy run only at answer positions (the vocabulary is large,
  the answers are short), same value as the full computation;
- checkpoint-best: a copy of the adapter with the lowest eval loss, loadable by
  PeftModel.from_pretrained; the last step is always evaluated and saved so it can compete.
Checkpointing, resume, best-model tracking, logging, mixed precision and multi-GPU are the Trainer's.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from my_affectgpt.common.atomic import atomic_write_text, replace_dir
from my_affectgpt.common.errors import InputError, cli_entry
from my_affectgpt.models.generation import MIN_SHARED_HEAD, head_cache
from my_affectgpt.models.text_encoders import file_sha256  # memoised: the record is read twice

IGNORE = -100  # label value the loss skips
BEST_DIR = "checkpoint-best"
RESOLVED_CONFIG = "au_agent_config.resolved.yaml"
RUN_RECORD = "au_agent_run.json"  # what the checkpoints were trained on (see run_record)
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


# ---- config ----------------------------------------------------------------------------------
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
class LoraConfig:
    r: int = 64
    alpha: int = 128
    dropout: float = 0.05
    target_modules: List[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    # LoRA on the top N decoder layers only; null = all. Backward then stops N layers down:
    # a CPU step of SmolLM2-135M with N = half the layers is ~1.4-1.6x faster (bench/RESULTS.md).
    top_layers: Optional[int] = None


def peft_lora_config(lora, num_layers: int):
    """The peft LoraConfig of a `lora` config section, for a model with `num_layers` layers."""
    from peft import LoraConfig as PeftLoraConfig

    top = lora.get("top_layers")
    if top is not None and not 1 <= int(top) <= num_layers:
        raise InputError("lora.top_layers", f"{top} is not between 1 and the model's "
                                            f"{num_layers} layers (null = all layers)")
    return PeftLoraConfig(
        r=int(lora["r"]), lora_alpha=int(lora["alpha"]), lora_dropout=float(lora["dropout"]),
        target_modules=list(lora["target_modules"]), task_type="CAUSAL_LM",
        layers_to_transform=None if top is None else list(range(num_layers - int(top), num_layers)))


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
    lora: LoraConfig = field(default_factory=LoraConfig)
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
        if not path.is_file():
            raise InputError(path, "config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise InputError(path, f"invalid YAML: {str(err).splitlines()[0]}") from None
        if data is not None and not isinstance(data, dict):
            raise InputError(path, "the config must be a mapping of keys to values")
        try:
            cfg = OmegaConf.merge(cfg, data or {})
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


# ---- data ------------------------------------------------------------------------------------

def read_chat_jsonl(path, limit=None) -> list:
    """The `messages` of each line of a DESIGN.md §4 JSONL file, validated."""
    path = Path(path)
    out = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(where, f"invalid JSON: {err.msg}") from None
            msgs = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(msgs, list) or len(msgs) < 2:
                raise InputError(where, "needs a 'messages' list (system/user/assistant)")
            for m in msgs:
                if not (isinstance(m, dict) and isinstance(m.get("role"), str)
                        and isinstance(m.get("content"), str)):
                    raise InputError(where, "each message needs string 'role' and 'content'")
            if msgs[-1]["role"] != "assistant" or not any(m["role"] == "user" for m in msgs):
                raise InputError(where, "messages must contain a user turn and end with the assistant")
            out.append(msgs)
            if limit is not None and len(out) >= limit:
                break
    if not out:
        raise InputError(path, "no samples")
    return out


def answer_text(tokenizer, messages, prompt: str) -> str:
    """What the model must produce after `prompt`: the answer and the template's end-of-turn.

    Taken from the chat template itself, so each model learns its own stop token; text after
    the last end-of-turn token (Qwen and SmolLM write a newline) is never generated, so dropped.
    """
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise InputError("chat template", "rendering with the answer does not extend the prompt")
    tail = full[len(prompt):]
    eos = tokenizer.eos_token
    cut = tail.rfind(eos) if eos else -1
    return tail[:cut + len(eos)] if cut >= 0 else tail.rstrip() + (eos or "")


def encode_chat(tokenizer, messages, max_seq_len: int):
    """(input_ids, labels) for one sample; labels are IGNORE on the prompt. None if no answer fits.

    Prompt and answer are tokenised separately, exactly as at generation time, where the
    prompt is tokenised alone and the model continues it.
    """
    from my_affectgpt.models.base_llm import render_prompt

    prompt = render_prompt(tokenizer, messages)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(answer_text(tokenizer, messages, prompt), add_special_tokens=False)["input_ids"]
    ids = (p_ids + a_ids)[:max_seq_len]
    labels = ([IGNORE] * len(p_ids) + a_ids)[:max_seq_len]
    if len(p_ids) >= len(ids):
        return None
    return ids, labels


class TokenizedChats:
    """A map-style dataset of pre-tokenised samples (what Trainer and its samplers need)."""

    def __init__(self, tokenizer, conversations, max_seq_len: int, desc="tokenising", show=True):
        from tqdm import tqdm

        self.items = []
        self.truncated = self.dropped = 0
        for msgs in tqdm(conversations, desc=desc, disable=not show, mininterval=1.0):
            enc = encode_chat(tokenizer, msgs, max_seq_len)
            if enc is None:
                self.dropped += 1
                continue
            ids, labels = enc
            if len(ids) == max_seq_len and labels[-1] != tokenizer.eos_token_id:
                self.truncated += 1
            self.items.append({"input_ids": ids, "labels": labels})
        if not self.items:
            raise InputError("data.max_seq_len", f"{max_seq_len} leaves no room for any answer")

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class PadCollator:
    """Right-pads a batch; padding gets attention 0 and label IGNORE."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, features):
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ---- loss ------------------------------------------------------------------------------------

def shared_prefix_length(input_ids, attention_mask, keep) -> int:
    """Leading columns that every row of the batch shares: same token, attended, and not scored
    (`keep[:, t]` marks positions whose next token is labelled). 0 for a batch of one."""
    if input_ids.shape[0] < 2:
        return 0
    same = (input_ids == input_ids[:1]).all(0) & attention_mask.bool().all(0) & ~keep.any(0)
    return int(same.long().cumprod(0).sum())


def answer_loss_sum(model, input_ids, attention_mask, labels, share_prefix: bool = False):
    """(summed token cross-entropy, token count, outputs) over labelled positions only.

    Position t predicts token t+1. The boolean `logits_to_keep` mask makes the model apply its
    output layer only where the next token is labelled, instead of at every position.

    share_prefix: run the prompt head that all rows share (system prompt + instruction: 38 of
    the ~150 tokens of an AU Agent sample for SmolLM2) once for the whole batch and let every
    row attend to its keys/values, instead of recomputing it per row. Same loss and gradients
    (a test pins it), fewer FLOPs. Needs one process without gradient checkpointing (the second
    forward call reuses the first one's cache); the Trainer below decides.
    """
    import torch
    import torch.nn.functional as F

    targets = labels[:, 1:]
    wanted = targets.ne(IGNORE)
    keep = F.pad(wanted, (0, 1), value=False)
    shared = shared_prefix_length(input_ids, attention_mask, keep) if share_prefix else 0
    if not MIN_SHARED_HEAD <= shared < input_ids.shape[1]:
        shared = 0
    cache = head_cache(model, input_ids[:1, :shared], attention_mask[:1, :shared]) if shared else None
    if cache is None:
        shared = 0
    else:
        cache.batch_repeat_interleave(input_ids.shape[0])  # differentiable copies of one row
    outputs = model(input_ids=input_ids[:, shared:], attention_mask=attention_mask,
                    past_key_values=cache, logits_to_keep=keep[:, shared:], use_cache=cache is not None)
    logits = outputs.logits
    if logits.dim() == 3:  # a model that ignores a mask-shaped logits_to_keep: full logits
        logits = logits[keep[:, shared:]]  # keep's last column is False: same rows as `wanted`
    flat_targets = targets[wanted]
    loss_sum = F.cross_entropy(logits.float(), flat_targets, reduction="sum")
    return loss_sum, torch.as_tensor(flat_targets.numel(), device=loss_sum.device), outputs


def make_trainer_class():
    from transformers import Trainer, TrainerCallback

    class AnswerOnlyTrainer(Trainer):
        """Trainer whose loss is computed at answer positions only (see answer_loss_sum)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # Our compute_loss normalises by the number of answer tokens in the whole
            # (accumulated, all-device) batch, as the Trainer does for models taking loss kwargs.
            self.model_accepts_loss_kwargs = True
            # The shared prompt head's cache is reused by a second forward call: not under
            # gradient checkpointing (which recomputes layers) nor DDP/DeepSpeed wrappers.
            self.share_prefix = (not self.args.gradient_checkpointing and self.args.world_size == 1
                                 and not self.is_deepspeed_enabled)

        def prediction_step(self, *args, **kwargs):
            # Evaluation runs without autograd: compiled blocks would compile a second set of
            # graphs for it (~8 s on 2 CPU cores, bench_sft_step.py --compile) for a few short
            # evaluations. Eager instead.
            import torch

            with torch.compiler.set_stance("force_eager"):
                return super().prediction_step(*args, **kwargs)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss_sum, count, outputs = answer_loss_sum(
                model, inputs["input_ids"], inputs["attention_mask"], inputs["labels"],
                share_prefix=self.share_prefix)
            if num_items_in_batch is None:
                loss = loss_sum / count.clamp(min=1)
            else:
                loss = loss_sum / num_items_in_batch
                if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
                    loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

    class RecipeCallback(TrainerCallback):
        """Says where training starts (a resumed run starts at its checkpoint's step), and
        evaluates and saves at the last step too, so the final weights can be the best."""

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                print(f"training from global step {state.global_step} to {state.max_steps}",
                      flush=True)

        def on_step_end(self, args, state, control, **kwargs):
            if state.max_steps and state.global_step >= state.max_steps:
                control.should_evaluate = True
                control.should_save = True
            return control

    return AnswerOnlyTrainer, RecipeCallback


# ---- checkpoints -----------------------------------------------------------------------------

def last_complete_checkpoint(output_dir):
    """The highest checkpoint-N whose trainer_state.json (written last) is complete, or None."""
    best = None
    out = Path(output_dir)
    if not out.is_dir():
        return None
    for d in out.iterdir():
        m = _CHECKPOINT_RE.match(d.name)
        if not (m and d.is_dir()):
            continue
        try:
            json.loads((d / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # killed while saving
        if best is None or int(m.group(1)) > best[0]:
            best = (int(m.group(1)), d)
    return best[1] if best else None


# Resume-only state (and the pickled training_args.bin) stays in the numbered checkpoint.
_STATE_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin")


def export_best(best_checkpoint, output_dir, extra: dict) -> Path:
    """Copy the adapter files of the best checkpoint to output_dir/checkpoint-best, atomically."""
    src, out = Path(best_checkpoint), Path(output_dir)
    target = out / BEST_DIR
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=f".{BEST_DIR}.tmp-"))
    try:
        for f in src.iterdir():
            if f.is_file() and f.name not in _STATE_FILES and not f.name.startswith("rng_state"):
                shutil.copy2(f, tmp / f.name)
        (tmp / "au_agent_best.json").write_text(json.dumps(
            {"source": src.name, **extra}, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ---- recipe ----------------------------------------------------------------------------------

_RESERVED = {"output_dir", "bf16", "fp16", "deepspeed", "label_names", "remove_unused_columns",
             "activation_checkpointing", "gradient_checkpointing",
             "eval_strategy", "save_strategy", "load_best_model_at_end", "metric_for_best_model",
             "greater_is_better", "prediction_loss_only"}


def training_arguments(cfg):
    """TrainingArguments from the config (built before the model: DeepSpeed ZeRO-3 needs that)."""
    import torch
    from transformers import TrainingArguments

    t = cfg.training
    on_gpu = torch.cuda.is_available()
    precision = t.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if on_gpu else "fp32"
    if precision == "fp16" and not on_gpu:
        raise InputError("training.precision", "fp16 needs a GPU; on CPU use fp32, or bf16 "
                                               "(autocast, fast on CPUs with AVX512-BF16 or AMX)")
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    extra = OmegaConf.to_container(t.extra, resolve=True)
    for key in extra:
        if key not in names:
            raise InputError("training.extra", f"unknown TrainingArguments key '{key}'")
        if key in _RESERVED:
            raise InputError("training.extra", f"'{key}' is set by the recipe, not by extra")
    kwargs = dict(
        output_dir=cfg.output_dir,
        num_train_epochs=t.epochs, max_steps=t.max_steps,
        learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler, warmup_steps=t.warmup,
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm,
        per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.grad_accum,
        bf16=precision == "bf16", fp16=precision == "fp16",
        # Recomputes activations in backward: less memory for 7B, slower; non-reentrant works
        # with frozen embeddings (LoRA) without forcing input gradients.
        activation_checkpointing=t.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if t.gradient_checkpointing else None,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        eval_strategy="steps", eval_steps=t.eval_steps,
        save_strategy="steps", save_steps=t.save_steps, save_total_limit=t.save_total_limit,
        load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
        logging_steps=t.logging_steps, logging_first_step=True, report_to=list(t.report_to),
        seed=t.seed, dataloader_num_workers=t.dataloader_workers, dataloader_pin_memory=on_gpu,
        label_names=["labels"], remove_unused_columns=False, prediction_loss_only=True,
        ddp_find_unused_parameters=False, deepspeed=t.deepspeed or None, use_cpu=not on_gpu,
    )
    kwargs.update(extra)
    try:
        return TrainingArguments(**kwargs), precision
    except (ValueError, TypeError) as err:
        raise InputError("training", str(err).splitlines()[0]) from None


def run_record(cfg) -> dict:
    """What the checkpoints of a run depend on besides the schedule: the base model, the
    contents of the data files, how they are cut, and the LoRA layout."""
    d = cfg.data
    return {"model": str(cfg.model), "data.train sha256": file_sha256(d.train),
            "data.val sha256": file_sha256(d.val), "data.max_train_samples": d.max_train_samples,
            "data.max_val_samples": d.max_val_samples, "data.max_seq_len": d.max_seq_len,
            "lora": OmegaConf.to_container(cfg.lora, resolve=True)}


def check_same_run(cfg, checkpoint: Path) -> None:
    """Auto-resume continues a killed run, never another one: same model, data and LoRA."""
    path = Path(cfg.output_dir) / RUN_RECORD
    advice = (f"delete them, choose another output_dir, or pass training.resume={checkpoint} "
              f"to continue it anyway")
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(cfg.output_dir, f"has checkpoints but no readable {RUN_RECORD} (an older "
                                         f"version's run?): {advice}") from None
    now = run_record(cfg)
    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if changed:
        raise InputError(cfg.output_dir, f"has checkpoints of a run with other {', '.join(changed)}: "
                                         f"{advice}")


def resume_point(cfg):
    r = str(cfg.training.resume).strip()
    if r.lower() in ("auto", ""):
        last = last_complete_checkpoint(cfg.output_dir)
        if last is not None:
            check_same_run(cfg, last)
        return last
    if r.lower() in ("never", "false", "no", "none", "null"):
        if last_complete_checkpoint(cfg.output_dir) is not None:
            raise InputError(cfg.output_dir, "has checkpoints of an earlier run and training.resume="
                                             "never: choose another output_dir or delete them")
        return None
    if not (Path(r) / "trainer_state.json").is_file():
        raise InputError(r, "training.resume: not a complete Trainer checkpoint")
    return Path(r)


def build(cfg):
    """(trainer, checkpoint to resume from or None) for a checked config."""
    import torch
    from accelerate import PartialState
    from peft import get_peft_model
    from transformers import set_seed

    from my_affectgpt.models import base_llm

    args, precision = training_arguments(cfg)
    state = PartialState()
    with state.main_process_first():  # converts an embedded model once, not once per process
        folder = base_llm.resolve_base_model(cfg.model, cfg.cache_dir)
    tokenizer = base_llm.load_tokenizer(folder)
    base_llm.check_chat_template(tokenizer, where=cfg.model)

    show = state.is_main_process
    d = cfg.data
    train = TokenizedChats(tokenizer, read_chat_jsonl(d.train, d.max_train_samples), d.max_seq_len,
                           "tokenising train", show)
    val = TokenizedChats(tokenizer, read_chat_jsonl(d.val, d.max_val_samples), d.max_seq_len,
                         "tokenising val", show)
    if show:
        for name, ds in (("train", train), ("val", val)):
            if ds.truncated or ds.dropped:
                print(f"warning: {name}: {ds.truncated} samples cut at data.max_seq_len="
                      f"{d.max_seq_len}, {ds.dropped} dropped (prompt alone too long)", flush=True)

    # Half-precision weights on GPU (memory); on CPU, bf16 is autocast over fp32 weights.
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    if not torch.cuda.is_available():
        dtype = torch.float32
    model = base_llm.load_base_model(folder, dtype=dtype)
    model.config.use_cache = False
    set_seed(cfg.training.seed)  # LoRA init is random
    peft_cfg = peft_lora_config(cfg.lora, model.config.num_hidden_layers)
    try:
        model = get_peft_model(model, peft_cfg)
    except ValueError as err:
        raise InputError("lora", str(err).splitlines()[0]) from None
    # Recorded in every adapter_config.json, so an adapter finds its base on its own.
    model.peft_config["default"].base_model_name_or_path = base_llm.base_model_id(cfg.model)
    # peft looks for config.json under that name to see if the vocabulary was resized; an
    # embedded name is no folder, and the vocabulary is never resized here.
    warnings.filterwarnings("ignore", message="Could not find a config file in")
    if show:
        model.print_trainable_parameters()
    if cfg.training.compile_blocks:
        from .compiled_blocks import compile_layer_blocks

        count = compile_layer_blocks(model)
        if show:
            print(f"torch.compile: {count} MLP / norm modules, compiled at the first step" if count
                  else "torch.compile: no C++ compiler (CXX or g++) found, training runs eagerly",
                  flush=True)

    trainer_cls, recipe_callback = make_trainer_class()
    trainer = trainer_cls(model=model, args=args, train_dataset=train, eval_dataset=val,
                          data_collator=PadCollator(tokenizer.pad_token_id),
                          processing_class=tokenizer, callbacks=[recipe_callback()])
    return trainer, resume_point(cfg)


def run(cfg) -> Path:
    """Train (or resume) and export checkpoint-best; returns its folder."""
    check_config(cfg)
    trainer, resume = build(cfg)
    main = trainer.is_world_process_zero()
    if main:
        Path(cfg.output_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(cfg.output_dir) / RESOLVED_CONFIG, OmegaConf.to_yaml(cfg))
        atomic_write_text(Path(cfg.output_dir) / RUN_RECORD, json.dumps(run_record(cfg), indent=1) + "\n")
        if resume is not None:
            step = json.loads((resume / "trainer_state.json").read_text())["global_step"]
            print(f"resuming from {resume} (global step {step})", flush=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    best = trainer.state.best_model_checkpoint
    target = Path(cfg.output_dir) / BEST_DIR
    if main:
        if best is None:
            raise InputError(cfg.output_dir, "no evaluated checkpoint to export as checkpoint-best")
        target = export_best(best, cfg.output_dir, {
            "eval_loss": trainer.state.best_metric, "global_step": trainer.state.best_global_step,
            "base_model": trainer.model.peft_config["default"].base_model_name_or_path})
        shutil.copy2(Path(cfg.output_dir) / RESOLVED_CONFIG, target / RESOLVED_CONFIG)
        print(f"best checkpoint: {best} (eval_loss {trainer.state.best_metric:.4f}) -> {target}",
              flush=True)
    trainer.accelerator.wait_for_everyone()
    return target


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m my_affectgpt.training.au_sft",
        description="Fine-tune the AU Agent (LoRA SFT). Usually started by train_au_agent.sh.",
        epilog="example: python -m my_affectgpt.training.au_sft --config au_agent_lora_config.yaml "
               "model=smollm2-135m-instruct training.epochs=1")
    p.add_argument("--config", default="au_agent_lora_config.yaml",
                   help="YAML recipe (default: %(default)s)")
    p.add_argument("--print-config", action="store_true",
                   help="check the config, print it resolved, and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="OmegaConf dotlist overrides, e.g. lora.r=16 training.batch_size=8")
    return p.parse_args(argv)


@cli_entry
def main(argv=None) -> int:
    # Before torch loads OpenMP: spinning worker threads make CPU training on a busy (shared)
    # machine up to 10x slower (measured 61.6 s vs 5.4 s per step, SmolLM2-135M, 2 cores).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    a = parse_args(argv)
    cfg = load_config(a.config, a.overrides)
    if a.print_config:
        check_config(cfg)
        sys.stdout.write(OmegaConf.to_yaml(cfg))
        return 0
    if int(os.environ.get("RANK", "0")) == 0 and not os.environ.get("AU_AGENT_CONFIG_SHOWN"):
        sys.stdout.write("resolved config:\n" + OmegaConf.to_yaml(cfg))
        sys.stdout.flush()
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
