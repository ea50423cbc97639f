"""The transformers Trainer of the AU Agent recipe: TrainingArguments from the config, a Trainer
whose loss is the answer-only loss, and a callback that evaluates and saves the last step."""
from __future__ import annotations

import dataclasses

from omegaconf import OmegaConf

from my_affectgpt.common.errors import InputError
from my_affectgpt.training.au_sft.loss import answer_loss_sum


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
