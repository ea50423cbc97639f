"""AffectGPT training recipe: one plain loop (nanoGPT / torchtune style) driven by one YAML config.

    python train.py --cfg-path train_configs/affectgpt_tiny_cpu.yaml [--options run.max_epoch=1]
    accelerate launch --num_processes 4 train.py --cfg-path train_configs/config_with_au_agent.yaml

Read it top to bottom in `train()`:
1. the job folder `<run.output_dir>/<config stem>/<run.job_name>/` gets the resolved `config.yaml`;
2. datasets (MER-Caption+ layout) and their AU features (missing ones computed before the first
   step, each process taking its share of the videos);
3. the model (frozen encoders, fusion, AU branch, LLM + LoRA) and its tokenizer (saved in the job
   folder so inference reloads the identical one);
4. AdamW on the trainable parameters only, linear warmup + cosine to run.min_lr (transformers);
5. accelerate: DDP on N GPUs, mixed precision from run.amp, gradient accumulation;
6. each epoch: `checkpoint_<epoch:06d>.safetensors` (trainable weights only, with the model's
   `au_mode` and input widths in its metadata; epochs count from 0 as in upstream AffectGPT) and
   `checkpoint_<epoch:06d>.state/` (accelerate's optimizer, scheduler and RNG state, plus
   `trainer_state.json`: epoch, global step, batches done);
7. resume (`run.resume`: auto | a checkpoint | false) restores all of it and continues the global
   step, the learning-rate schedule and the loss curve (TensorBoard purges the abandoned tail); a
   checkpoint of another `model.au_mode` is refused in one line before anything loads.

Logs: TensorBoard scalars `train/loss`, `train/lr` under `<job>/tensorboard/`, the same numbers
as JSON lines in `<job>/metrics.jsonl`. `run.max_steps` stops early (quick runs, tests); a stop in
the middle of an epoch still writes that epoch's checkpoint, marked incomplete, and a resume
skips the batches already seen.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from my_affectgpt.common.atomic import atomic_write_text, replace_dir
from my_affectgpt.common.errors import InputError
from my_affectgpt.models.affectgpt_checkpoints import (CONFIG_NAME, STATE_SUFFIX, TRAINER_STATE, build_model,
                                                       check_au_mode, checkpoint_metadata, checkpoint_path,
                                                       job_dir, list_checkpoints, load_checkpoint,
                                                       mixed_precision, read_trainer_state, save_trainable,
                                                       state_dir)

log = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


# ---- resume (the job folder and checkpoints: models/affectgpt_checkpoints.py) -----------------

def last_resumable(folder) -> Path | None:
    """The newest checkpoint whose weights and training state were both written completely."""
    for ckpt in reversed(list_checkpoints(folder)):
        if read_trainer_state(ckpt) is not None:
            return ckpt
    return None


def resolve_resume(resume, folder: Path) -> Path | None:
    """run.resume -> a checkpoint file to resume from, or None (a fresh start)."""
    if resume is None or resume is False or str(resume).strip().lower() in ("false", "no", "none", ""):
        return None
    if str(resume).strip().lower() == "auto":
        return last_resumable(folder)
    path = Path(str(resume))
    if path.is_dir() and path.name.endswith(STATE_SUFFIX):
        path = path.with_suffix(".safetensors")
    if path.is_dir():  # a job folder: its newest complete checkpoint
        found = last_resumable(path)
        if found is None:
            raise InputError("run.resume", f"{path}: no complete checkpoint (weights + .state) in this folder")
        return found
    if not path.is_file():
        raise InputError("run.resume", f"{path}: checkpoint not found")
    if read_trainer_state(path) is None:
        raise InputError("run.resume", f"{path}: its training state {state_dir(path)}/{TRAINER_STATE} "
                                       "is missing or unreadable (an interrupted save?)")
    return path


def build_datasets(cfg: DictConfig, *, data_roots: dict | None = None):
    """(dataset, modalities) for every entry of `cfg.datasets` (concatenated when several).

    `data_roots` maps an entry name to another folder of the same layout (a test split)."""
    from torch.utils.data import ConcatDataset

    from my_affectgpt.datasets.mercaptionplus import MERCaptionPlusDataset
    from my_affectgpt.datasets.modalities import parse_face_or_frame

    if not cfg.datasets:
        raise InputError("datasets", "no dataset entry (add datasets.mercaptionplus.data_root)")
    parts, modalities = [], None
    for name, entry in cfg.datasets.items():
        if data_roots and name in data_roots:
            entry = OmegaConf.merge(entry, {"data_root": str(data_roots[name])})
        mods = parse_face_or_frame(entry.face_or_frame)
        if modalities is not None and mods != modalities:
            raise InputError(f"datasets.{name}.face_or_frame",
                             "every dataset entry must use the same modalities (one model)")
        modalities = mods
        parts.append(MERCaptionPlusDataset.from_config(
            entry, mods, encoder_feature_dir=cfg.model.encoder_feature_dir, seed=cfg.run.seed,
            au_mode=cfg.model.au_mode))
    return (parts[0] if len(parts) == 1 else ConcatDataset(parts)), modalities


def dataset_parts(dataset) -> list:
    from torch.utils.data import ConcatDataset

    return list(dataset.datasets) if isinstance(dataset, ConcatDataset) else [dataset]


def tokenizer_corpus(cfg: DictConfig, dataset) -> list[str]:
    """Text a tokenizer built for a tiny LLM learns from: answers, subtitles and, when they go
    into the prompt as words (au_mode text), the AU descriptions. Empty for a real LLM."""
    if cfg.model.tokenizer or cfg.model.llm_model:
        return []
    texts: list[str] = []
    for part in dataset_parts(dataset):
        for by_name in part.labels.values():
            texts.extend(by_name.values())
        texts.extend(part.subtitles.values())
        if cfg.model.au_mode == "text" and "au" in part.modalities:
            for name in part.names:
                try:
                    texts.extend(str(t) for t in part.au_store.load(name)[1].get("descriptions", []))
                except Exception:  # noqa: BLE001 - a video without features fails later, logged there
                    continue
    return texts


def feature_dims(dataset, modalities) -> dict:
    """Input widths the config cannot tell: the AU text encoder's D, read from a sample (none
    with au_mode values: its 18 values per frame are fixed)."""
    if "au" not in modalities:
        return {}
    for i in range(len(dataset)):
        sample = dataset[i]
        if sample is not None:
            return {"au": int(sample["au"].shape[-1])} if "au" in sample else {}
    raise InputError("datasets", "no sample could be loaded (see the warnings above)")


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters only; no weight decay on biases and norms (LAVIS/AffectGPT habit)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name.endswith(".bias") or "norm" in name.lower() else decay).append(p)
    if not decay and not no_decay:
        raise InputError("model", "the model has no trainable parameters")
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# ---- the training loop ----------------------------------------------------------------------

@dataclass
class TrainResult:
    job_dir: Path
    checkpoint: Path | None           # the last checkpoint written (or resumed from, if none new)
    global_step: int
    epoch: int                        # the last epoch trained (0-based)
    resumed_from: Path | None = None
    skipped_batches: int = 0          # batches in which every sample failed to load
    losses: list = field(default_factory=list)   # (global step, loss) logged by this process


def train(cfg: DictConfig, cfg_path) -> TrainResult:
    """Train AffectGPT as configured; see the module docstring for what is written where."""
    run = cfg.run
    out = job_dir(cfg, cfg_path)
    resume_from = resolve_resume(run.resume, out)  # a bad path fails before anything is loaded
    if resume_from is not None:
        check_au_mode(resume_from, cfg.model.au_mode)

    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, set_seed
    from torch.utils.data import DataLoader
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    from my_affectgpt.common.config import config_to_yaml
    from my_affectgpt.datasets.mercaptionplus import collate_samples

    accelerator = Accelerator(
        mixed_precision=mixed_precision(run.amp),
        gradient_accumulation_steps=run.grad_accum_steps,
        # The shuffle order depends only on (seed, epoch): a resumed run sees the same batches.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=run.seed),
        log_with="tensorboard", project_dir=str(out))
    main = accelerator.is_main_process
    set_seed(run.seed)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / CONFIG_NAME, config_to_yaml(cfg))
    accelerator.wait_for_everyone()

    # -- data; the AU features of every video exist before the first step
    dataset, modalities = build_datasets(cfg)
    if "au" in modalities:  # each process computes its share of the missing videos
        for part in dataset_parts(dataset):
            part.ensure_au_features(progress=main, rank=accelerator.process_index,
                                    world=accelerator.num_processes)
        accelerator.wait_for_everyone()
    dims = feature_dims(dataset, modalities)
    loader = DataLoader(dataset, batch_size=run.batch_size_train, shuffle=True,
                        collate_fn=collate_samples, num_workers=run.num_workers,
                        pin_memory=torch.cuda.is_available(), drop_last=False)

    # -- model; a tiny LLM's tokenizer is built on the main process first, the others load it
    with accelerator.main_process_first():
        model = build_model(cfg, modalities, corpus=tokenizer_corpus(cfg, dataset), work_dir=out, dims=dims)
    optimizer = torch.optim.AdamW(param_groups(model, run.weight_decay), lr=run.lr)
    steps_per_epoch = math.ceil(len(loader) / accelerator.num_processes / run.grad_accum_steps)
    total_steps = steps_per_epoch * run.max_epoch
    # A prepared scheduler steps once per process per optimizer step (accelerate's convention),
    # so both lengths are given in those units.
    scheduler = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, num_warmup_steps=run.warmup_steps * accelerator.num_processes,
        num_training_steps=total_steps * accelerator.num_processes, min_lr=run.min_lr)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    steps_per_epoch = math.ceil(len(loader) / run.grad_accum_steps)  # per process, after sharding

    # The frozen LLM and encoders are not checkpointed: the weights that change live in the
    # checkpoint_*.safetensors beside the state, so accelerate's state skips the model.
    accelerator.register_save_state_pre_hook(lambda models, weights, folder: weights.clear())
    accelerator.register_load_state_pre_hook(lambda models, folder: models.clear())

    # -- resume
    global_step, start_epoch, skip_batches = 0, 0, 0
    if resume_from is not None:
        progress = read_trainer_state(resume_from)
        load_checkpoint(accelerator.unwrap_model(model), resume_from)
        accelerator.load_state(str(state_dir(resume_from)))
        global_step = int(progress["global_step"])
        if progress["epoch_complete"]:
            start_epoch = int(progress["epoch"]) + 1
        else:
            start_epoch, skip_batches = int(progress["epoch"]), int(progress["batches_done"])
        accelerator.print(f"resumed from {resume_from} at global step {global_step} "
                          f"(epoch {progress['epoch']}, {'complete' if progress['epoch_complete'] else 'partial'})")
    elif run.resume not in (None, False) and str(run.resume).lower() == "auto":
        accelerator.print(f"no checkpoint in {out}: starting from step 0")

    # TensorBoard hides events of an abandoned run at steps >= purge_step; metrics.jsonl likewise.
    accelerator.init_trackers(TENSORBOARD_DIR, init_kwargs={"tensorboard": {"purge_step": global_step + 1}}
                              if global_step else {})
    if main:
        _truncate_metrics(out / METRICS_NAME, global_step)
    accelerator.print(f"job folder {out}: {len(dataset)} samples, {steps_per_epoch} optimizer steps per "
                      f"epoch x {run.max_epoch} epochs, {accelerator.num_processes} process(es), "
                      f"mixed precision {accelerator.mixed_precision}")

    result = TrainResult(job_dir=out, checkpoint=resume_from, global_step=global_step,
                         epoch=start_epoch - 1, resumed_from=resume_from)
    max_steps = run.max_steps if run.max_steps else None
    bar = tqdm(total=total_steps if max_steps is None else min(total_steps, max_steps),
               initial=global_step, desc="train", unit="step", dynamic_ncols=True,
               disable=not accelerator.is_local_main_process)
    started = time.monotonic()
    window: list[torch.Tensor] = []  # micro-batch losses since the last optimizer step
    stop = max_steps is not None and global_step >= max_steps
    epoch = start_epoch
    for epoch in range(start_epoch, run.max_epoch):
        if stop:
            break
        for part in dataset_parts(dataset):
            if hasattr(part, "set_epoch"):  # hybird questions vary per (seed, epoch, index)
                part.set_epoch(epoch)
        loader.set_epoch(epoch)
        batches = loader
        batches_done = 0
        if epoch == start_epoch and skip_batches:
            batches = accelerator.skip_first_batches(loader, skip_batches)
            batches_done = skip_batches
        model.train()
        optimizer.zero_grad(set_to_none=True)  # nothing left over from a window cut short
        window.clear()
        for batch in batches:
            batches_done += 1
            if _any_process_lacks_batch(accelerator, batch):
                result.skipped_batches += 1
                log.warning("skipped batch %d of epoch %d: no sample loaded", batches_done, epoch)
                continue
            with accelerator.accumulate(model):
                loss = model(batch).loss
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            window.append(loss.detach())
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            step_loss = accelerator.reduce(torch.stack(window).mean(), "mean").item()
            window.clear()
            lr = scheduler.get_last_lr()[0]
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{step_loss:.4f}", lr=f"{lr:.2e}")
            result.losses.append((global_step, step_loss))
            if global_step % run.log_every == 0 or global_step == 1:
                accelerator.log({"train/loss": step_loss, "train/lr": lr}, step=global_step)
                if main:
                    _append_metrics(out / METRICS_NAME, {"step": global_step, "epoch": epoch,
                                                         "loss": step_loss, "lr": lr})
            if max_steps is not None and global_step >= max_steps:
                stop = True
                break
        complete = not stop or batches_done >= len(loader)
        result.checkpoint = _save_checkpoint(accelerator, model, out, epoch, global_step,
                                             batches_done, complete, dims)
        result.epoch, result.global_step = epoch, global_step
        accelerator.print(f"epoch {epoch} {'done' if complete else 'stopped early'} at step {global_step}: "
                          f"{result.checkpoint.name}")
    bar.close()
    accelerator.end_training()
    result.global_step = global_step
    if result.skipped_batches:
        accelerator.print(f"skipped {result.skipped_batches} batch(es) in which no sample loaded")
    accelerator.print(f"training finished in {time.monotonic() - started:.1f} s at step {global_step}")
    return result


def _any_process_lacks_batch(accelerator, batch) -> bool:
    """True when this process's batch (or, under DDP, any process's) is None: all skip together,
    since one process stepping alone would hang the others in the gradient all-reduce."""
    missing = batch is None
    if accelerator.num_processes > 1:
        flag = torch.tensor([1.0 if missing else 0.0], device=accelerator.device)
        missing = bool(accelerator.reduce(flag, "sum").item() > 0)
    return missing


def _save_checkpoint(accelerator, model, out: Path, epoch: int, global_step: int,
                     batches_done: int, complete: bool, dims: dict) -> Path:
    """Trainable weights + accelerate state of one epoch; both appear atomically (temp + rename),
    the state first, so a weights file with a state beside it is always a complete pair."""
    ckpt = checkpoint_path(out, epoch)
    progress = {"epoch": epoch, "global_step": global_step, "batches_done": batches_done,
                "epoch_complete": bool(complete)}
    tmp_state = out / f".{state_dir(ckpt).name}.tmp"
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp_state))  # every process writes its own RNG state here
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_text(tmp_state / TRAINER_STATE, json.dumps(progress, indent=1) + "\n")
        replace_dir(tmp_state, state_dir(ckpt))
        weights = accelerator.unwrap_model(model).trainable_state_dict()
        save_trainable(ckpt, weights, {**progress, "feature_dims": json.dumps(dims),
                                       "au_mode": accelerator.unwrap_model(model).au_mode})
    accelerator.wait_for_everyone()
    return ckpt


def _append_metrics(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _truncate_metrics(path: Path, global_step: int) -> None:
    """Keep the records up to `global_step` (a resumed run rewrites what came after)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= global_step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
    atomic_write_text(path, "".join(f"{line}\n" for line in keep))


def read_metrics(folder) -> list[dict]:
    """The records of `<job>/metrics.jsonl` (step, epoch, loss, lr)."""
    path = Path(folder) / METRICS_NAME
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---- using a trained job --------------------------------------------------------------------

def load_trained(job, checkpoint=None):
    """(model, cfg) of a training job folder: its config.yaml, tokenizer and a checkpoint
    (default: the last one) loaded into a fresh model in eval mode."""
    from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config
    from my_affectgpt.datasets.modalities import parse_face_or_frame

    job = Path(job)
    cfg = load_affectgpt_config(job / CONFIG_NAME)
    ckpt = Path(checkpoint) if checkpoint else (list_checkpoints(job) or [None])[-1]
    if ckpt is None:
        raise InputError(job, "no checkpoint_*.safetensors in this job folder")
    entry = next(iter(cfg.datasets.values()))
    model = build_model(cfg, parse_face_or_frame(entry.face_or_frame), work_dir=job,
                        dims=json.loads(checkpoint_metadata(ckpt).get("feature_dims") or "{}"))
    load_checkpoint(model, ckpt)
    model.eval()
    return model, cfg
