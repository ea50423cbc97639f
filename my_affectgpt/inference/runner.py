"""Test trained checkpoints on MER-Caption+-style test datasets (upstream AffectGPT's inference).

    python inference_hybird.py --cfg-path inference_config_au_agent.yaml [--zeroshot]

For every selected checkpoint (checkpoints.py) and every `inference.test_datasets` entry, the
model answers one question per video, in batches, greedily:
- description mode (default): "Please infer the person's emotional state and provide your
  reasoning process." (MER-Caption+'s track3 question);
- `--zeroshot` / `inference.zeroshot: true`: "Please recognize all possible emotional states of
  the character." (the open-set label question).

Output per checkpoint, beside each other:

    <results_dir>/results-<dataset>/<run>/<checkpoint stem>.npz     names, reasons (string arrays)
    <results_dir>/results-<dataset>/<run>/<checkpoint stem>.jsonl    {"name", "answer"} per line

`<run>` is `<config name>_<job name>` of the checkpoint folder (`-zeroshot` appended in that
mode). The npz is what evaluation.py reads. Resuming: a checkpoint whose npz exists is skipped
(a run with nothing left to do loads no model), and a checkpoint cut short continues from its
`<checkpoint stem>.partial/` chunks (partial.py).

Test datasets. Each entry has `name`, `data_root` (MER-Caption+ layout) and optionally
`label_csv` (the ground truth evaluation.py will read), `openface_output_dir` and
`au_feature_dir` (default `<data_root>/openface_output`, `<data_root>/au_features`). Everything
else about reading a sample (face_or_frame, frame / face / clip counts, the AU Agent keys) comes
from the config's first `datasets` entry, as in training. The videos are the names of
`label_csv`, else of the MER-Caption+ label CSVs, else of `video/`, else of the OpenFace CSVs.
AU features missing from the store are computed first, in one batched AU Agent pass (none with
`model.au_mode: values`: the samples read their OpenFace CSVs, as in training).
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from my_affectgpt.common.errors import InputError
from my_affectgpt.datasets.mercaptionplus import (LABEL_CSVS, QUESTIONS, VIDEO_EXTENSIONS,
                                                  MERCaptionPlusDataset, collate_samples)
from my_affectgpt.datasets.modalities import parse_face_or_frame
from my_affectgpt.evaluation.emotion_eval import load_predictions, write_predictions
from my_affectgpt.inference import checkpoints as ckpts
from my_affectgpt.inference.partial import PartialResults

log = logging.getLogger(__name__)

DEFAULT_SAVE_EVERY = 64   # videos per progress chunk: what a kill can cost at most


def question_kind(zeroshot: bool) -> str:
    return "openset" if zeroshot else "description"


def template_entry(cfg: DictConfig) -> tuple[str, DictConfig]:
    """The `datasets` entry that says how samples are read (the first one)."""
    if not cfg.datasets:
        raise InputError("datasets", "inference needs a datasets entry: it says how a sample is read "
                                     "(face_or_frame, frame and clip counts, the AU Agent keys)")
    name = next(iter(cfg.datasets))
    return name, cfg.datasets[name]


def run_name(folder: Path, zeroshot: bool) -> str:
    return f"{folder.parent.name}_{folder.name}" + ("-zeroshot" if zeroshot else "")


# ---- test datasets --------------------------------------------------------------------------

def _csv_names(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if "name" not in (reader.fieldnames or []):
                raise InputError(path, f"needs a 'name' column, has {reader.fieldnames}")
            return [n for n in ((row.get("name") or "").strip() for row in reader) if n]
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(path, f"cannot read CSV ({err})") from None


def sample_names(data_root: Path, label_csv=None, openface_dir: Path | None = None) -> list[str]:
    """The videos of a test dataset (module docstring: label CSV, label CSVs, video/, OpenFace)."""
    from my_affectgpt.au.openface import find_openface_csvs

    if label_csv:
        label_csv = Path(label_csv)
        if not label_csv.is_file():
            raise InputError(label_csv, "label CSV not found")
        names = _csv_names(label_csv)
        if not names:
            raise InputError(label_csv, "holds no video name")
        return list(dict.fromkeys(names))
    labelled = [data_root / file for file, _ in LABEL_CSVS.values() if (data_root / file).is_file()]
    if labelled:
        return sorted({n for path in labelled for n in _csv_names(path)})
    video_dir = data_root / "video"
    if video_dir.is_dir():
        names = sorted({p.stem for p in video_dir.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS})
        if names:
            return names
    if openface_dir is not None and openface_dir.is_dir():
        names = [name for name, _ in find_openface_csvs(openface_dir)]
        if names:
            return names
    raise InputError(data_root, "no videos found: no label CSV, no video/ folder with videos and no "
                                f"OpenFace CSVs in {openface_dir}")


def test_dataset(cfg: DictConfig, test: DictConfig, zeroshot: bool) -> MERCaptionPlusDataset:
    """One `inference.test_datasets` entry as a dataset that asks the mode's question."""
    root = Path(test.data_root)
    if not root.is_dir():
        raise InputError(root, f"test dataset '{test.name}' not found")
    _, entry = template_entry(cfg)
    entry = OmegaConf.merge(entry, {"data_root": str(root), "label_type": question_kind(zeroshot),
                                    "openface_output_dir": test.openface_output_dir,
                                    "au_feature_dir": test.au_feature_dir})
    openface_dir = Path(test.openface_output_dir or root / "openface_output")
    names = sample_names(root, test.label_csv, openface_dir)
    return MERCaptionPlusDataset.from_config(entry, parse_face_or_frame(entry.face_or_frame),
                                             encoder_feature_dir=cfg.model.encoder_feature_dir,
                                             seed=cfg.run.seed, names=names, au_mode=cfg.model.au_mode)


# ---- one checkpoint on one dataset ----------------------------------------------------------

@torch.no_grad()
def predict_in_chunks(model, dataset, indices: list[int], *, batch_size: int, max_new_tokens: int,
                      chunk: int, num_workers: int = 0, autocast=None, progress: bool = True):
    """Yield {name: answer} every `chunk` videos (and at the end); failed samples are skipped."""
    import contextlib

    from torch.utils.data import DataLoader, Subset

    loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False,
                        collate_fn=collate_samples, num_workers=num_workers)
    pending: dict[str, str] = {}
    bar = tqdm(total=len(indices), desc="generate", unit="video", disable=not progress, dynamic_ncols=True)
    try:
        for i, batch in enumerate(loader):
            if batch is not None:
                batch.pop("answers", None)
                with autocast or contextlib.nullcontext():
                    texts = model.generate(batch, max_new_tokens=max_new_tokens)
                pending.update(zip(batch["names"], texts))
            bar.update(min(batch_size, len(indices) - i * batch_size))
            if len(pending) >= chunk:
                yield pending
                pending = {}
    finally:
        bar.close()
    if pending:
        yield pending


@dataclass
class CheckpointResult:
    dataset: str
    checkpoint: Path
    npz: Path
    status: str                      # done | skipped (npz existed)
    predictions: int = 0
    resumed: int = 0                 # videos taken from an interrupted run
    generated: int = 0
    failed: list = field(default_factory=list)


def output_paths(results_dir, dataset: str, run: str, checkpoint: Path) -> tuple[Path, Path]:
    folder = Path(results_dir) / f"results-{dataset}" / run
    return folder / f"{checkpoint.stem}.npz", folder / f"{checkpoint.stem}.jsonl"


def partial_results(npz: Path, checkpoint: Path, question: str, max_new_tokens: int,
                    data_root) -> PartialResults:
    """The progress folder of one npz, keyed by what its answers depend on."""
    meta = ckpts.checkpoint_metadata(checkpoint)
    identity = {"checkpoint": checkpoint.name, "bytes": checkpoint.stat().st_size,
                "global_step": meta.get("global_step"), "question": question,
                "max_new_tokens": int(max_new_tokens), "dataset": str(data_root)}
    return PartialResults(npz.with_suffix(".partial"), identity)


def _repair_jsonl(npz: Path, jsonl: Path) -> None:
    """A kill between the npz and the JSONL leaves the npz alone: rebuild the readable copy."""
    if npz.is_file() and not jsonl.is_file():
        preds = load_predictions(npz)
        write_predictions(preds, npz, jsonl)


def run_checkpoint(model, dataset: MERCaptionPlusDataset, checkpoint: Path, npz: Path, jsonl: Path, *,
                   dataset_name: str, question: str, batch_size: int, max_new_tokens: int,
                   save_every: int, num_workers: int = 0, autocast=None,
                   progress: bool = True) -> CheckpointResult:
    """Answer every video of `dataset` with the loaded `model`, resuming from partial chunks."""
    partial = partial_results(npz, checkpoint, question, max_new_tokens, dataset.root)
    done = partial.load()
    result = CheckpointResult(dataset_name, checkpoint, npz, "done", resumed=len(done))
    todo = [i for i, name in enumerate(dataset.names) if name not in done]
    if done:
        print(f"{dataset_name} / {checkpoint.name}: resuming, {len(done)} of {len(dataset)} videos "
              f"already answered", flush=True)
    for chunk in predict_in_chunks(model, dataset, todo, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                   chunk=save_every, num_workers=num_workers, autocast=autocast,
                                   progress=progress):
        partial.add(chunk)
        done.update(chunk)
        result.generated += len(chunk)
    ordered = {name: done[name] for name in dataset.names if name in done}
    result.failed = [name for name in dataset.names if name not in done]
    if not ordered:
        raise InputError(dataset.root, f"no video of test dataset '{dataset_name}' could be loaded "
                                       "(see the warnings above)")
    write_predictions(ordered, npz, jsonl)
    partial.remove()
    result.predictions = len(ordered)
    return result


# ---- everything -----------------------------------------------------------------------------

def run_inference(cfg: DictConfig, cfg_path, *, zeroshot: bool | None = None, checkpoint=None,
                  save_every: int = DEFAULT_SAVE_EVERY, progress: bool = True) -> list[CheckpointResult]:
    """Every selected checkpoint on every test dataset (module docstring); returns what happened."""
    inf = cfg.inference
    zeroshot = bool(inf.zeroshot) if zeroshot is None else bool(zeroshot)
    if not inf.test_datasets:
        raise InputError("inference.test_datasets", "no test dataset: add entries with name and "
                                                    "data_root (MER-Caption+ layout)")
    if inf.batch_size < 1 or inf.max_new_tokens < 1 or save_every < 1:
        raise InputError("inference", "batch_size, max_new_tokens and the chunk size must be >= 1")
    names = [str(t.name) for t in inf.test_datasets]
    if len(set(names)) != len(names):
        raise InputError("inference.test_datasets", f"dataset names must be unique, got {names}")
    template_entry(cfg)
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise InputError(checkpoint, "checkpoint not found")
        folder, selected = checkpoint.parent, [checkpoint]
    else:
        folder = ckpts.checkpoint_folder(cfg, cfg_path)
        selected = ckpts.select_checkpoints(folder, inf.test_epoch, inf.test_epochs, inf.skip_epoch)
    ckpts.check_modes(cfg, selected)
    run = run_name(folder, zeroshot)
    question = QUESTIONS[question_kind(zeroshot)]

    # What is left to do; a finished run stops here, before any model or dataset is loaded.
    results, todo = [], []
    for test in inf.test_datasets:
        for ckpt in selected:
            npz, jsonl = output_paths(inf.results_dir, test.name, run, ckpt)
            if npz.is_file():
                _repair_jsonl(npz, jsonl)
                results.append(CheckpointResult(str(test.name), ckpt, npz, "skipped"))
                print(f"{test.name} / {ckpt.name}: {npz} exists, skipped", flush=True)
            else:
                todo.append((test, ckpt, npz, jsonl))
    if not todo:
        print("nothing to do: every checkpoint has its predictions", flush=True)
        return results

    datasets = {}
    for test in {str(t.name): t for t, *_ in todo}.values():
        ds = test_dataset(cfg, test, zeroshot)
        if "au" in ds.modalities:
            counts = ds.ensure_au_features(progress=progress)
            if counts["failed"] or counts["no_csv"]:
                log.warning("%s: %d video(s) without usable AU features (see the warnings above)",
                            test.name, counts["failed"] + counts["no_csv"])
        datasets[str(test.name)] = ds
    modalities = next(iter(datasets.values())).modalities
    device = ckpts.device_for()
    model, loaded = None, None
    # Checkpoint-major order: each checkpoint's weights are loaded once for all datasets.
    for ckpt in selected:
        for test, c, npz, jsonl in todo:
            if c != ckpt:
                continue
            if model is None:
                model = ckpts.build_inference_model(cfg, modalities, folder, ckpt, device)
            elif loaded != ckpt:
                ckpts.load_weights(model, ckpt)
            loaded = ckpt
            res = run_checkpoint(model, datasets[str(test.name)], ckpt, npz, jsonl, dataset_name=str(test.name),
                                 question=question, batch_size=int(inf.batch_size),
                                 max_new_tokens=int(inf.max_new_tokens), save_every=save_every,
                                 num_workers=int(cfg.run.num_workers),
                                 autocast=ckpts.autocast(cfg, device), progress=progress)
            results.append(res)
            failed = f", {len(res.failed)} failed to load" if res.failed else ""
            print(f"{test.name} / {ckpt.name}: {res.predictions} predictions ({res.generated} generated, "
                  f"{res.resumed} resumed{failed}) -> {npz}", flush=True)
            if test.label_csv:
                print(f"  evaluate: python evaluation.py --pred {npz} --gt {test.label_csv}", flush=True)
    return results
