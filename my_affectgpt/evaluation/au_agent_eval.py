"""Evaluate an AU Agent (base + LoRA adapter) beside the untuned base and the rule teacher.

Inputs are a held-out JSONL of the instruction dataset (with references) or OpenFace CSVs
(sampled frames, no references). Figures: eval loss on the references, AU precision / recall /
F1, hallucination, emotion words, intensity-band agreement, ROUGE-L, length and speed, plus a
probe table on clean known states (EMFACS prototypes, single AUs per band, neutral).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..au.facs import DEFAULT_BANDS, active_aus, au_state_text
from ..au.teacher import RuleTeacher
from ..common.errors import InputError
from ..common.jsonl import jsonl_rows
from .au_metrics import Scored, omission_by_count, score
from .au_probes import probes


@dataclass
class EvalItem:
    key: str            # sample id, or video:frame
    au: dict            # OpenFace column -> value
    messages: list      # chat messages incl. the reference answer when there is one
    reference: str | None


def items_from_jsonl(path, limit=None) -> list:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist")
    items = []

    def bad(lineno, err=None):
        return InputError(path, f"line {lineno}: not a sample of the AU instruction dataset (needs 'au' "
                                f"and 'messages')")

    with path.open(encoding="utf-8") as f:
        for lineno, row in jsonl_rows(f, bad):
            try:
                msgs = row["messages"]
                au = {k: float(v) for k, v in row["au"].items()}
            except (KeyError, TypeError, ValueError, AttributeError):
                raise bad(lineno) from None
            ref = msgs[-1]["content"] if msgs and msgs[-1].get("role") == "assistant" else None
            items.append(EvalItem(str(row.get("id", lineno)), au, msgs, ref))
            if limit and len(items) >= limit:
                break
    if not items:
        raise InputError(path, "no samples")
    return items


def items_from_openface(folder, frames: int = 8, limit=None) -> list:
    from ..au.frames import sampled_frame_aus
    from ..au.openface import find_openface_csvs, read_openface_csv
    from ..au.prompts import chat_messages
    from ..common.errors import report

    items = []
    for video, path in find_openface_csvs(folder):
        try:
            track = read_openface_csv(path, video=video)
        except InputError as err:
            report(InputError(None, f"{err} (skipped)"))
            continue
        for f in sampled_frame_aus(track, frames):
            items.append(EvalItem(f"{video}:{f.frame}", f.au, chat_messages(f.prompt), None))
        if limit and len(items) >= limit:
            break
    if not items:
        raise InputError(folder, "no usable OpenFace frames")
    return items[:limit] if limit else items


def eval_loss(model, tokenizer, items, batch_size: int = 32, max_seq_len: int = 512,
              progress: bool = False, before_batch=None) -> float | None:
    """Mean cross-entropy per answer token on the references (None without references).

    Its own batch size, not the generation's: on 2 CPU cores 32 rows took 43-46 s for the 143
    test samples, 64 rows 54-59 s (wider length spread, more padding; bench/RESULTS.md)."""
    import torch

    from ..training.au_sft import PadCollator, answer_loss_sum, encode_chat

    encoded = [encode_chat(tokenizer, it.messages, max_seq_len) for it in items if it.reference]
    encoded = [{"input_ids": e[0], "labels": e[1]} for e in encoded if e is not None]
    if not encoded:
        return None
    encoded.sort(key=lambda e: len(e["input_ids"]))
    collate = PadCollator(tokenizer.pad_token_id)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in tqdm(range(0, len(encoded), batch_size), desc="eval loss", disable=not progress):
        if before_batch is not None:
            before_batch()
        batch = {k: v.to(device) for k, v in collate(encoded[start:start + batch_size]).items()}
        with torch.inference_mode():
            loss_sum, n, _ = answer_loss_sum(model, **batch, share_prefix=True)
        total += float(loss_sum)
        count += int(n)
    return round(total / count, 4)


def _prompts(items, probe_states) -> list:
    """Canonical AU texts of the data, then of the probes: one generation pass covers both, so
    equal prompts run once and batches fill across the two."""
    return ([au_state_text(active_aus(it.au)) for it in items]
            + [au_state_text(active_aus(au)) for _, au in probe_states])


def _describe(name, model, tokenizer, prompts, gen_kwargs, progress, bar_position=None):
    """(descriptions, seconds spent generating)."""
    from ..models.generation import describe_au_texts

    t0 = time.perf_counter()
    out = describe_au_texts(model, tokenizer, prompts, progress=progress, desc=f"{name}: describe",
                            bar_position=bar_position, **gen_kwargs)
    return out, time.perf_counter() - t0


def _figures(items, probe_states, prompts, generated, elapsed, loss, timed_prompts=None):
    """(figures, data outputs, probe outputs) of one model's descriptions; `timed_prompts`: all
    prompts generated in `elapsed` seconds (default `prompts`)."""
    outputs, probe_out = generated[:len(items)], generated[len(items):]
    result = score([Scored(it.au, o, it.reference) for it, o in zip(items, outputs)])
    result["unique_prompts"] = len(set(prompts[:len(items)]))
    timed = len(set(timed_prompts or prompts))
    result["descriptions_per_s"] = round(timed / elapsed, 3) if elapsed > 0 else None
    result["eval_loss"] = loss
    result["probe_scores"] = score([Scored(au, o) for (_, au), o in zip(probe_states, probe_out)])
    return result, outputs, probe_out


def _describe_in_worker(base, dtype, prompts, gen_kwargs, progress, threads):
    """Runs in a spawned process: the untuned base model's descriptions on `threads` threads."""
    import torch

    from ..models.base_llm import load_for_generation

    torch.set_num_threads(threads)
    model, tok = load_for_generation(base, None, device="cpu", dtype=dtype)
    return _describe("base", model, tok, prompts, gen_kwargs, progress, bar_position=1)


# Side by side only for small models: a 135M model's greedy decoding is bound by per-step
# overhead and gains only 1.29-1.33x from a second core (bench/RESULTS.md), while a large
# model's would be bound by memory bandwidth, and two copies of it may not fit in memory.
SIDE_BY_SIDE_MAX_BYTES = 2 << 30


def _side_by_side_threads(base, device):
    """(threads for the tuned model here, threads for the base in a worker process), or None
    to run the two one after the other."""
    import torch

    from ..models.base_llm import resolve_base_model

    threads = torch.get_num_threads()
    if str(device) != "cpu" or threads < 2:
        return None
    folder = resolve_base_model(base)
    weights = sum(f.stat().st_size for f in folder.glob("*") if f.suffix in (".safetensors", ".bin"))
    if not 0 < weights <= SIDE_BY_SIDE_MAX_BYTES:
        return None
    return threads - threads // 2, threads // 2


def _rule_teacher(items, probe_states):
    t = RuleTeacher()
    outs = [t.describe(active_aus(it.au)) for it in items]
    result = score([Scored(it.au, o, it.reference) for it, o in zip(items, outs)])
    probe_out = [t.describe(active_aus(au)) for _, au in probe_states]
    result["probe_scores"] = score([Scored(au, o) for (_, au), o in zip(probe_states, probe_out)])
    return result, probe_out


def _repaired(model, tok, prompts, outputs, gen_kwargs, progress) -> tuple:
    """The tuned model's outputs as au_agent_verify=repair leaves them: (outputs, statuses,
    seconds), every distinct prompt checked once and repaired once (models/au_agent/verify.py)."""
    from ..models.au_agent import verify
    from ..models.generation import describe_au_texts

    def regenerate(items):
        return verify.second_attempts(
            items, lambda texts: describe_au_texts(model, tok, texts, progress=progress, **gen_kwargs))

    t0 = time.perf_counter()
    first = dict(zip(prompts, outputs))
    distinct = list(first)
    finals, statuses = verify.verified(distinct, [first[p] for p in distinct], "repair", regenerate)
    final, status = dict(zip(distinct, finals)), dict(zip(distinct, statuses))
    return [final[p] for p in prompts], [status[p] for p in prompts], time.perf_counter() - t0


def _verify_section(items, prompts, raw, repaired, statuses, seconds) -> dict:
    """Both readings side by side: figures without and with repair, the checks' counts, the
    fallback rate and omission by number of active AUs (frames of the data, not the probes)."""
    from ..models.au_agent import verify

    counts = verify.counts(statuses)
    off = score([Scored(it.au, o, it.reference) for it, o in zip(items, raw)])
    rep = score([Scored(it.au, o, it.reference) for it, o in zip(items, repaired)])
    return {"off": off, "repair": rep, "verified": counts,
            "fallback_rate": round(counts["fell_back"] / counts["checked"], 4) if counts["checked"] else None,
            "repair_seconds": round(seconds, 2),
            "omission_by_active": {"off": omission_by_count(Scored(it.au, o) for it, o in zip(items, raw)),
                                   "repair": omission_by_count(Scored(it.au, o) for it, o in zip(items, repaired))}}


def evaluate(items, *, adapter, base=None, device="cpu", dtype=None, baselines=True,
             batch_size=16, max_new_tokens=96, progress=True, examples=5,
             side_by_side=None, real=None, verify_mode="repair") -> dict:
    """The full report as a dict: the tuned model's figures at the top level, the untuned base
    and the rule teacher under `baselines`, the probe table under `probes`.

    real: optional (items, provenance) of real OpenFace frames (au_real_frames.py); the tuned
    model and the rule teacher are then also scored on them, under `real_frames`.

    side_by_side (None: automatic): on a CPU with >= 2 threads and a small model, the untuned
    base generates in a second process while this one generates with the tuned model and then
    computes both eval losses, the threads split between the two processes until the second
    one is done (bench/bench_evaluation.py). Same outputs as one after the other;
    `descriptions_per_s` is then per share of the threads, for both models alike."""
    import torch

    from ..models.base_llm import adapter_base, load_for_generation

    base = base or adapter_base(adapter)
    probe_states = probes(DEFAULT_BANDS)
    prompts = _prompts(items, probe_states)
    gen_kwargs = {"batch_size": batch_size, "max_new_tokens": max_new_tokens}
    split = _side_by_side_threads(base, device) if baselines and side_by_side is not False else None
    if side_by_side and split is None:
        raise InputError(None, "side by side evaluation needs a CPU device with >= 2 threads "
                               "and a model of at most 2 GiB")
    pool = base_job = None
    all_threads = torch.get_num_threads()
    if split:
        import multiprocessing

        # spawn: a forked copy of a process that has run torch's thread pools can hang.
        pool = multiprocessing.get_context("spawn").Pool(1)
        base_job = pool.apply_async(_describe_in_worker,
                                    (base, dtype, prompts, gen_kwargs, progress, split[1]))
        torch.set_num_threads(split[0])
    try:
        model, tok = load_for_generation(base, adapter, device=device, dtype=dtype)
        real_prompts = [au_state_text(active_aus(it.au)) for it in real[0]] if real else []
        raw, elapsed = _describe("tuned", model, tok, prompts + real_prompts, gen_kwargs, progress)
        fixed, statuses, repair_s = _repaired(model, tok, prompts + real_prompts, raw, gen_kwargs, progress)
        # the figures at the top level are those of the mode asked (flag keeps the outputs)
        generated = fixed if verify_mode == "repair" else raw
        generated, real_out = generated[:len(prompts)], generated[len(prompts):]
        n = len(items)
        checks = _verify_section(items, prompts[:n], raw[:n], fixed[:n], statuses[:n], repair_s)
        real_checks = (_verify_section(real[0], real_prompts, raw[len(prompts):], fixed[len(prompts):],
                                       statuses[len(prompts):], repair_s) if real else None)
        loss = eval_loss(model, tok, items, progress=progress)
        tuned, outputs, tuned_probe = _figures(items, probe_states, prompts, generated, elapsed, loss,
                                               prompts + real_prompts)
        del model
        base_result = None
        if baselines:
            model, tok = load_for_generation(base, None, device=device, dtype=dtype)
            if base_job is not None:
                # The base's eval loss here while its generation may still run there; the
                # freed threads join in as soon as it is done.
                def take_freed_threads():
                    if base_job.ready():
                        torch.set_num_threads(all_threads)

                loss = eval_loss(model, tok, items, progress=progress, before_batch=take_freed_threads)
                generated, elapsed = base_job.get()
            else:
                generated, elapsed = _describe("base", model, tok, prompts, gen_kwargs, progress)
                loss = eval_loss(model, tok, items, progress=progress)
            base_result = _figures(items, probe_states, prompts, generated, elapsed, loss)
            del model
    finally:
        torch.set_num_threads(all_threads)
        if pool is not None:
            pool.terminate()  # done by now, or stop it: this process failed
    report = {"adapter": str(adapter), "base_model": str(base), "n_samples": len(items), **tuned,
              "verify": verify_mode, "verified": checks["verified"], "verify_checks": checks,
              "generation": (f"tuned and untuned base side by side, {split[0]} + {split[1]} threads"
                             if split else f"one model at a time, {all_threads} threads on {device}"),
              "baselines": {}, "examples": [], "probes": []}
    base_probe = [None] * len(probe_states)
    if base_result is not None:
        report["baselines"]["base"], _, base_probe = base_result
    rule, rule_probe = _rule_teacher(items, probe_states)
    report["baselines"]["rule_teacher"] = rule
    for it, out in list(zip(items, outputs))[:examples]:
        report["examples"].append({"input": au_state_text(active_aus(it.au)), "output": out,
                                   "reference": it.reference})
    for (label, au), t_out, b_out, r_out in zip(probe_states, tuned_probe, base_probe, rule_probe):
        report["probes"].append({"probe": label, "input": au_state_text(active_aus(au)),
                                 "tuned": t_out, "base": b_out, "rule_teacher": r_out})
    if real:
        report["real_frames"] = _real_section(*real, real_out, real_checks)
    return report


def _real_section(items, provenance, outputs, checks) -> dict:
    """Figures of the tuned model and the rule teacher on real frames, with every output."""
    t = RuleTeacher()
    rule = [t.describe(active_aus(it.au)) for it in items]
    return {"provenance": provenance, "n_samples": len(items), "verify_checks": checks,
            "verified": checks["verified"],
            "tuned": score([Scored(it.au, o) for it, o in zip(items, outputs)]),
            "rule_teacher": score([Scored(it.au, o) for it, o in zip(items, rule)]),
            "outputs": [{"frame": it.key, "input": au_state_text(active_aus(it.au)), "output": o}
                        for it, o in zip(items, outputs)]}


METRICS = ("eval_loss", "au_precision", "au_recall", "au_f1", "hallucination_rate", "omission_rate",
           "emotion_word_rate", "band_agreement", "rouge_l", "mean_words", "descriptions_per_s")
# Read by the rule teacher's own lexicon, shown beside the judge's while the two differ.
LEXICON_ROWS = {"au_f1": "lexicon au_f1", "hallucination_rate": "lexicon halluc.",
                "band_agreement": "lexicon band"}


def _metric_rows(cols) -> list:
    lines = [f"{m:<20}" + "".join(f"{_fmt(c.get(m)):>16}" for _, c in cols)
             for m in METRICS if any(c.get(m) is not None for _, c in cols)]
    if any("lexicon" in c for _, c in cols):
        lines += [f"{label:<20}" + "".join(f"{_fmt(c.get('lexicon', c).get(m)):>16}" for _, c in cols)
                  for m, label in LEXICON_ROWS.items()]
    return lines


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def format_report(report: dict) -> str:
    cols = [("tuned", report)] + list(report["baselines"].items())
    lines = [f"AU Agent evaluation: {report['n_samples']} samples, adapter {report['adapter']}, "
             f"base {report['base_model']}", f"generation: {report['generation']}", ""]
    lines.append(f"{'metric':<20}" + "".join(f"{name:>16}" for name, _ in cols))
    lines += _metric_rows(cols)
    lines.append(f"{'probe au_f1':<20}" + "".join(f"{_fmt(c['probe_scores']['au_f1']):>16}" for _, c in cols))
    lines.append(f"{'probe hallucination':<20}"
                 + "".join(f"{_fmt(c['probe_scores']['hallucination_rate']):>16}" for _, c in cols))
    lines += ["", "Probe table (input -> tuned | untuned base | rule teacher):"]
    for p in report["probes"]:
        lines.append(f"- [{p['probe']}] {p['input']}")
        lines.append(f"    tuned: {p['tuned']}")
        if p["base"] is not None:
            lines.append(f"    base:  {p['base'][:300]}")
        lines.append(f"    rule:  {p['rule_teacher']}")
    lines += _format_checks(report["verify_checks"], report["verify"])
    if "real_frames" in report:
        lines += _format_real(report["real_frames"])
        lines += _format_checks(report["real_frames"]["verify_checks"], report["verify"])
    if report["examples"]:
        lines += ["", "Examples from the data (input -> output / reference):"]
        for e in report["examples"]:
            lines += [f"- {e['input']}", f"    output:    {e['output']}",
                      f"    reference: {e['reference']}"]
    return "\n".join(lines)


def _format_checks(checks: dict, mode: str) -> list:
    """The tuned model without and with au_agent_verify=repair, and omission by AU count."""
    from .au_metrics import COUNT_BUCKETS

    v = checks["verified"]
    lines = ["", f"Run-time check (reported: verify={mode}): {v['checked']} descriptions checked, "
                 f"{v['failed_first']} failed the judge; repair: {v['regenerated']} fixed by a second "
                 f"attempt, {v['fell_back']} replaced by the rule teacher (fallback rate "
                 f"{_fmt(checks['fallback_rate'])}, {checks['repair_seconds']} s)"]
    cols = [("verify=off", checks["off"]), ("verify=repair", checks["repair"])]
    lines.append(f"{'metric':<20}" + "".join(f"{name:>16}" for name, _ in cols))
    lines += [f"{m:<20}" + "".join(f"{_fmt(c.get(m)):>16}" for _, c in cols)
              for m in ("au_f1", "hallucination_rate", "omission_rate", "band_agreement")]
    by = checks["omission_by_active"]
    lines.append("omission by active AUs: " + "  ".join(
        f"{b}: {_fmt(by['off'][b]['omission_rate'])}->{_fmt(by['repair'][b]['omission_rate'])}"
        f" (n={by['off'][b]['frames']})" for b in COUNT_BUCKETS if by["off"][b]["frames"]))
    return lines


def _format_real(real: dict) -> list:
    from .au_real_frames import describe_provenance

    cols = [("tuned", real["tuned"]), ("rule_teacher", real["rule_teacher"])]
    lines = ["", f"Real OpenFace frames ({real['n_samples']} frames, never used in training):"]
    lines += describe_provenance(real["provenance"])
    lines.append(f"{'metric':<20}" + "".join(f"{name:>16}" for name, _ in cols))
    return lines + _metric_rows(cols)
