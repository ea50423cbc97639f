"""The AU Agent recipe, top to bottom: build (tokenizer, data, base model + LoRA, Trainer) and run
(train or resume, then export checkpoint-best)."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

from omegaconf import OmegaConf

from my_affectgpt.common.atomic import atomic_write_text
from my_affectgpt.common.errors import InputError
from my_affectgpt.models.lora import peft_lora_config
from my_affectgpt.training.au_sft.checkpoints import BEST_DIR, RUN_RECORD, export_best, resume_point, run_record
from my_affectgpt.training.au_sft.config import check_config
from my_affectgpt.training.au_sft.data import PadCollator, TokenizedChats, read_chat_jsonl
from my_affectgpt.training.au_sft.trainer import make_trainer_class, training_arguments

RESOLVED_CONFIG = "au_agent_config.resolved.yaml"


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
        from my_affectgpt.training.compiled_blocks import compile_layer_blocks

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
