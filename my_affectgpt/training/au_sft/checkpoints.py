"""The AU Agent recipe's output folder: Trainer checkpoints (the last complete one, resume rules that
never continue another run), the run record, and checkpoint-best (the adapter with the lowest eval
loss, loadable by PeftModel.from_pretrained)."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from my_affectgpt.common.atomic import replace_dir
from my_affectgpt.common.errors import InputError
from my_affectgpt.models.text_encoders import file_sha256  # memoised: the record is read twice

BEST_DIR = "checkpoint-best"
RUN_RECORD = "au_agent_run.json"  # what the checkpoints were trained on (see run_record)
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


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
