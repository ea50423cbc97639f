"""Build the AU instruction dataset (DESIGN.md §4) from OpenFace CSVs, MER-Factory outputs and
existing Alpaca/ShareGPT files.

Two stages, so that a killed run resumes and still ends byte-identical to an uninterrupted one:
1. OpenFace videos are processed in fixed chunks (in parallel); each finished chunk is one
   atomically written shard in `<out>/.work/`. A rerun with the same inputs and settings keeps
   the finished shards and does the rest.
2. Assembly reads every shard in order, adds the other sources, audits the references from
   external teachers (the `audit` function build() is given: evaluation/teacher_audit.py, which
   reads them with the AU judge), drops duplicate (prompt, answer) pairs, splits by video with a
   seeded permutation, and writes the outputs atomically. Nothing in the outputs
   depends on timing, worker count or chunk completion order.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..au import prompts
from ..au.facs import ALL_CODES, DEFAULT_BANDS, IntensityBands, active_aus, au_state_text
from ..au.frames import sampled_frame_aus
from ..au.openface import DEFAULT_MIN_CONFIDENCE, find_openface_csvs, read_openface_csv
from ..au.teacher import RuleTeacher
from ..common.atomic import atomic_open, atomic_write_text
from ..common.errors import InputError
from .long_states import SOURCE as COMPOSITE_SOURCE, composite_samples, interleaved

CHUNK_VIDEOS = 32
SPLITS = ("train", "val", "test")


@dataclass
class BuildConfig:
    out_dir: Path
    openface_dirs: list = field(default_factory=list)
    mer_factory_dirs: list = field(default_factory=list)
    instruction_files: list = field(default_factory=list)   # Alpaca / ShareGPT JSONL
    teacher: str = "rule"
    api: dict = field(default_factory=dict)                  # APITeacher.from_config keys
    seed: int = 0
    frames_per_video: int = 8
    sampling: str = "uniform"
    split: tuple = (0.9, 0.05, 0.05)
    max_samples: int | None = None
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    bands: IntensityBands = DEFAULT_BANDS
    workers: int = 2
    export: str | None = None
    progress: bool = True
    audit_filter: bool = False    # drop external references the AU judge finds unfaithful
    audit_max_missed: int = 0     # ... or that miss more than this many active AUs
    long_state_share: float = 0.15  # composite long states in the train split (long_states.py)


# --- samples ---------------------------------------------------------------------------------

def make_sample(pending: dict) -> dict:
    """A finished sample in the DESIGN.md §4 layout from a pending one (prompt + answer)."""
    return {k: pending[k] for k in ("id", "video", "frame", "source", "au")} | {
        "messages": prompts.chat_messages(pending["prompt"], pending["answer"])}


def _teach_chunk(job: dict) -> dict:
    """Worker: read one chunk of CSVs, sample frames, write answers (rule teacher) or leave them
    for the API teacher. Returns {"samples": [...], "errors": [...]}; bad files are errors."""
    bands = IntensityBands(**job["bands"])
    teacher = RuleTeacher(bands) if job["teacher"] == "rule" else None
    samples, errors = [], []
    for video, path in job["videos"]:
        try:
            track = read_openface_csv(path, min_confidence=job["min_confidence"], video=video)
        except InputError as err:
            errors.append(str(err))
            continue
        for f in sampled_frame_aus(track, job["frames"], job["sampling"], bands):
            answer = teacher.describe(f.active) if teacher else None
            samples.append({"id": f"{video}_f{f.frame:04d}", "video": video, "frame": f.frame,
                            "source": f"openface+{job['teacher']}", "au": f.au,
                            "prompt": f.prompt, "answer": answer})
    return {"samples": samples, "errors": errors}


def _shard_path(work: Path, i: int) -> Path:
    return work / f"chunk_{i:06d}.json"


def _work_dir(cfg: BuildConfig, videos: list) -> Path:
    """`<out>/.work`, emptied when the inputs or settings differ from the interrupted run's."""
    work = Path(cfg.out_dir) / ".work"
    ident = {"prompt_version": prompts.PROMPT_VERSION, "seed": cfg.seed,
             "frames": cfg.frames_per_video, "sampling": cfg.sampling, "teacher": cfg.teacher,
             "min_confidence": cfg.min_confidence, "bands": asdict(cfg.bands),
             "chunk": CHUNK_VIDEOS,
             "videos": [(v, str(p), p.stat().st_size, p.stat().st_mtime_ns) for v, p in videos]}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
    marker = work / "inputs.sha256"
    if not (marker.is_file() and marker.read_text().strip() == digest):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        atomic_write_text(marker, digest + "\n")
    return work


def _openface_samples(cfg: BuildConfig, log) -> tuple:
    """Stage 1 for every OpenFace folder: (samples in video order, error lines)."""
    videos, seen = [], {}
    for d in cfg.openface_dirs:
        found = find_openface_csvs(d)
        if not found:
            raise InputError(d, "no OpenFace CSVs found (expected <dir>/<video>.csv or "
                                "<dir>/<video>/<video>.csv)")
        for video, path in found:
            if video in seen:
                raise InputError(path, f"video name {video!r} also found at {seen[video]}")
            seen[video] = path
            videos.append((video, path))
    if not videos:
        return [], []
    work = _work_dir(cfg, videos)
    chunks = [videos[i:i + CHUNK_VIDEOS] for i in range(0, len(videos), CHUNK_VIDEOS)]
    todo = [i for i in range(len(chunks)) if not _shard_path(work, i).is_file()]
    if len(todo) < len(chunks):
        log(f"resuming: {len(chunks) - len(todo)} of {len(chunks)} chunks already done")
    base = {"bands": asdict(cfg.bands), "seed": cfg.seed, "teacher": cfg.teacher,
            "min_confidence": cfg.min_confidence, "frames": cfg.frames_per_video,
            "sampling": cfg.sampling}
    bar = tqdm(total=len(videos), initial=len(videos) - sum(len(chunks[i]) for i in todo),
               unit="video", desc="OpenFace CSVs", disable=not cfg.progress)

    def finish(i, result):
        with atomic_open(_shard_path(work, i), "w", encoding="utf-8") as f:
            json.dump(result, f, ensure_ascii=False)
        bar.update(len(chunks[i]))

    jobs = {i: dict(base, videos=[(v, str(p)) for v, p in chunks[i]]) for i in todo}
    if cfg.workers <= 1 or len(todo) <= 1:
        for i in todo:
            finish(i, _teach_chunk(jobs[i]))
    else:
        with ProcessPoolExecutor(max_workers=cfg.workers) as pool:
            futures = {pool.submit(_teach_chunk, jobs[i]): i for i in todo}
            for fut in as_completed(futures):
                finish(futures[fut], fut.result())
    bar.close()

    samples, errors = [], []
    for i in range(len(chunks)):
        shard = json.loads(_shard_path(work, i).read_text(encoding="utf-8"))
        samples.extend(shard["samples"])
        errors.extend(shard["errors"])
    return samples, errors


def _record_samples(cfg: BuildConfig, errors: list) -> list:
    """MER-Factory and Alpaca/ShareGPT records as pending samples (answer may be None). A
    malformed MER-Factory video is reported in `errors` and skipped."""
    if not (cfg.mer_factory_dirs or cfg.instruction_files):
        return []
    from ..au.instruction_jsonl import read_instruction_jsonl
    from ..au.mer_factory import read_mer_factory_dir

    out = []
    records = [r for d in cfg.mer_factory_dirs
               for r in read_mer_factory_dir(d, on_error=lambda e: errors.append(str(e)))]
    records += [r for f in cfg.instruction_files for r in read_instruction_jsonl(f)]
    per_video: dict = {}
    for r in records:
        k = per_video[r.video] = per_video.get(r.video, -1) + 1
        sid = f"{r.video}_f{r.frame:04d}" if r.frame >= 0 else f"{r.video}_{k:04d}"
        source = r.source if r.answer is not None else f"{r.source}+{cfg.teacher}"
        out.append({"id": sid, "video": r.video, "frame": r.frame, "source": source,
                    "au": dict(r.au), "prompt": au_state_text(active_aus(r.au, cfg.bands)),
                    "answer": r.answer})
    return out


def _fill_answers(cfg: BuildConfig, pending: list, log) -> None:
    """Answers for samples that have none: the rule teacher, or the API teacher's cache+calls."""
    missing = [s for s in pending if s["answer"] is None]
    if not missing:
        return
    if cfg.teacher == "rule":
        teacher = RuleTeacher(cfg.bands)
        for s in missing:
            s["answer"] = teacher.describe(active_aus(s["au"], cfg.bands))
        return
    from ..au.api_teacher import APITeacher

    api_cfg = dict(cfg.api)
    api_cfg.setdefault("cache_path", str(Path(cfg.out_dir) / ".cache" / "api_teacher.sqlite"))
    teacher = APITeacher.from_config(api_cfg)
    log(f"API teacher {api_cfg.get('model')}: {len({s['prompt'] for s in missing})} distinct prompts")
    answers = teacher.describe_many([s["prompt"] for s in missing], progress=cfg.progress)
    for s, a in zip(missing, answers):
        s["answer"] = a


def _split_videos(videos: list, fractions: tuple, seed: int) -> dict:
    """{video: split}: a seeded permutation cut by the fractions; every non-empty fraction gets
    at least one video when there are enough videos."""
    order = sorted(videos)
    random.Random(seed).shuffle(order)
    n = len(order)
    counts = [int(round(f * n)) for f in fractions]
    for i in (1, 2):
        if fractions[i] > 0 and counts[i] == 0 and n >= 3:
            counts[i] = 1
    counts[0] = n - counts[1] - counts[2]
    out, start = {}, 0
    for name, c in zip(SPLITS, counts):
        for v in order[start:start + c]:
            out[v] = name
        start += c
    return out


def _percentiles(values: list) -> dict:
    if not values:
        return {}
    a = np.asarray(values, float)
    return {"min": int(a.min()), "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)),
            "max": int(a.max()), "mean": round(float(a.mean()), 2)}


def _stats(cfg: BuildConfig, by_split: dict, dropped: int, errors: list, audit) -> dict:
    sources: dict = {}
    au_freq = {c: 0 for c in ALL_CODES}
    words, chars = [], []
    n_total = 0
    for split, samples in by_split.items():
        for s in samples:
            sources.setdefault(s["source"], {k: 0 for k in SPLITS})[split] += 1
            for code in active_aus(s["au"], cfg.bands):
                au_freq[code] += 1
            answer = s["messages"][-1]["content"]
            words.append(len(answer.split()))
            chars.append(len(answer))
            n_total += 1
    neutral = sum(1 for ss in by_split.values() for s in ss if not active_aus(s["au"], cfg.bands))
    return {
        "samples": {k: len(v) for k, v in by_split.items()} | {"total": n_total},
        "videos": {k: len({s["video"] for s in v}) for k, v in by_split.items()},
        "sources": dict(sorted(sources.items())),
        "duplicates_dropped": dropped,
        "skipped_inputs": errors,
        "au_frequency": {c: {"count": n, "share": round(n / max(n_total, 1), 4)}
                         for c, n in au_freq.items()},
        "neutral_share": round(neutral / max(n_total, 1), 4),
        "answer_words": _percentiles(words),
        "answer_chars": _percentiles(chars),
        "teacher_audit": audit,
        "settings": {"seed": cfg.seed, "teacher": cfg.teacher, "prompt_version": prompts.PROMPT_VERSION,
                     "frames_per_video": cfg.frames_per_video, "sampling": cfg.sampling,
                     "split": list(cfg.split), "min_confidence": cfg.min_confidence,
                     "max_samples": cfg.max_samples, "bands": asdict(cfg.bands),
                     "audit_filter": cfg.audit_filter, "audit_max_missed": cfg.audit_max_missed,
                     "long_state_share": cfg.long_state_share},
    }


def _write_jsonl(path: Path, samples: list) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        for s in samples:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")


def _export_llamafactory(out: Path, by_split: dict) -> None:
    """Alpaca and ShareGPT files plus the dataset_info.json LLaMA-Factory reads."""
    lf = out / "llamafactory"
    info = {}
    for split, samples in by_split.items():
        alpaca, sharegpt = [], []
        for s in samples:
            system, user, answer = (m["content"] for m in s["messages"])
            alpaca.append({"instruction": user, "input": "", "output": answer, "system": system})
            sharegpt.append({"conversations": [{"from": "human", "value": user},
                                               {"from": "gpt", "value": answer}],
                             "system": system})
        for fmt, rows in (("alpaca", alpaca), ("sharegpt", sharegpt)):
            name = f"au_agent_{split}_{fmt}"
            with atomic_open(lf / f"{name}.json", "w", encoding="utf-8") as f:
                json.dump(rows, f, ensure_ascii=False, indent=1)
            entry = {"file_name": f"{name}.json"}
            if fmt == "alpaca":
                entry["columns"] = {"prompt": "instruction", "query": "input",
                                    "response": "output", "system": "system"}
            else:
                entry["formatting"] = "sharegpt"
                entry["columns"] = {"messages": "conversations", "system": "system"}
            info[name] = entry
    atomic_write_text(lf / "dataset_info.json", json.dumps(info, indent=2) + "\n")


def build(cfg: BuildConfig, log=print, audit=None) -> dict:
    """Build the dataset; returns the stats that were written to stats.json.

    audit: `evaluation.teacher_audit.audit_references` (what the CLI passes), or None for no
    teacher audit; passed in so that the data layer does not depend on the evaluation layer."""
    if not (cfg.openface_dirs or cfg.mer_factory_dirs or cfg.instruction_files):
        raise InputError(None, "no input: give --openface-dir, --mer-factory-dir or --alpaca")
    if len(cfg.split) != 3 or any(f < 0 for f in cfg.split) or abs(sum(cfg.split) - 1) > 1e-6:
        raise InputError(None, f"--split needs three fractions summing to 1, got {list(cfg.split)}")
    if cfg.frames_per_video < 1:
        raise InputError(None, "--frames-per-video must be >= 1")
    if not 0 <= cfg.long_state_share < 1:
        raise InputError(None, f"--long-states must be in [0, 1), got {cfg.long_state_share}")
    if cfg.audit_max_missed < 0:
        raise InputError(None, f"--audit-max-missed must be >= 0, got {cfg.audit_max_missed}")
    out = Path(cfg.out_dir)
    # Validate the cheap sources before the long OpenFace stage, so a typo fails in seconds.
    record_errors: list = []
    records = _record_samples(cfg, record_errors)
    samples, errors = _openface_samples(cfg, log) if cfg.openface_dirs else ([], [])
    samples += records
    errors += record_errors
    _fill_answers(cfg, samples, log)
    # Before de-duplication, so the audit and the filter see every reference whatever its order.
    if audit is None and cfg.audit_filter:
        raise ValueError("audit_filter needs an audit function (evaluation.teacher_audit)")
    samples, audit = (audit(samples, cfg.bands, drop=cfg.audit_filter, max_missed=cfg.audit_max_missed,
                            log=log) if audit else (samples, None))

    kept, seen, dropped = [], set(), 0
    for s in samples:
        key = hashlib.sha256(f"{s['prompt']}\x00{s['answer']}".encode()).digest()
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        kept.append(s)
    if cfg.max_samples is not None and len(kept) > cfg.max_samples:
        keep = sorted(random.Random(cfg.seed).sample(range(len(kept)), cfg.max_samples))
        kept = [kept[i] for i in keep]
    if not kept:  # nothing to resume either: leave no trace
        shutil.rmtree(out / ".work", ignore_errors=True)
        with contextlib.suppress(OSError):
            out.rmdir()
        gone = (audit or {}).get("dropped") or {}
        if len(errors) == 1 and not gone:
            raise InputError(None, errors[0])
        for e in errors:
            log(f"error: {e} (skipped)")
        if gone:
            raise InputError(None, f"no usable samples: --audit-filter dropped all "
                                   f"{gone['total']} references")
        raise InputError(None, f"no usable samples: all {len(errors)} inputs were skipped")

    split_of = _split_videos(list({s["video"] for s in kept}), tuple(cfg.split), cfg.seed)
    by_split = {k: [] for k in SPLITS}
    for s in kept:
        by_split[split_of[s["video"]]].append(make_sample(s))
    _add_long_states(cfg, by_split, log)
    stats = _stats(cfg, by_split, dropped, errors, audit)
    for split, rows in by_split.items():
        _write_jsonl(out / f"{split}.jsonl", rows)
    if cfg.export == "llamafactory":
        _export_llamafactory(out, by_split)
    atomic_write_text(out / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(out / ".work", ignore_errors=True)
    return stats


def _add_long_states(cfg: BuildConfig, by_split: dict, log) -> None:
    """Composite long states spread through the train split (long_states.py): only where the
    rule teacher wrote every training row, so no teacher's style is mixed with another's."""
    train = by_split["train"]
    if not cfg.long_state_share or not train or any(s["source"] != "openface+rule" for s in train):
        return
    extra = composite_samples(train, cfg.long_state_share, cfg.seed, cfg.bands)
    by_split["train"] = interleaved(train, extra)
    log(f"train split: {len(extra)} composite long states spread through it "
        f"({len(extra) / len(by_split['train']):.0%}; {COMPOSITE_SOURCE})")


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))
