"""Evaluate an AU Agent (base + LoRA adapter) beside the untuned base and the rule teacher.

Inputs are a held-out JSONL of the instruction dataset (with references) or OpenFace CSVs
(sampled frames, no references). Figures: eval loss on the references, AU precision / recall /
F1, hallucination, emotion words, intensity-band agreement, ROUGE-L, length and speed, plus a
probe table on clean known states (EMFACS prototypes, single AUs per band, neutral).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..au.facs import DEFAULT_BANDS, active_aus, au_state_text
from ..au.teacher import RuleTeacher
from ..common.errors import InputError
from .au_metrics import Scored, score
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
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                msgs = row["messages"]
                au = {k: float(v) for k, v in row["au"].items()}
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                raise InputError(path, f"line {lineno}: not a sample of the AU instruction "
                                       f"dataset (needs 'au' and 'messages')") from None
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
              progress: bool = False) -> float | None:
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
        batch = {k: v.to(device) for k, v in collate(encoded[start:start + batch_size]).items()}
        with torch.inference_mode():
            loss_sum, n, _ = answer_loss_sum(model, **batch, share_prefix=True)
        total += float(loss_sum)
        count += int(n)
    return round(total / count, 4)


def _run_model(name, model, tokenizer, items, probe_states, gen_kwargs, progress):
    from ..models.generation import describe_au_texts

    texts = [au_state_text(active_aus(it.au)) for it in items]
    probe_texts = [au_state_text(active_aus(au)) for _, au in probe_states]
    # One pass over data and probes: equal prompts run once and batches fill across both.
    t0 = time.perf_counter()
    generated = describe_au_texts(model, tokenizer, texts + probe_texts, progress=progress,
                                  desc=f"{name}: describe", **gen_kwargs)
    elapsed = time.perf_counter() - t0
    outputs, probe_out = generated[:len(texts)], generated[len(texts):]
    result = score([Scored(it.au, o, it.reference) for it, o in zip(items, outputs)])
    result["unique_prompts"] = len(set(texts))
    unique = len(set(texts + probe_texts))
    result["descriptions_per_s"] = round(unique / elapsed, 3) if elapsed > 0 else None
    result["eval_loss"] = eval_loss(model, tokenizer, items, progress=progress)
    result["probe_scores"] = score([Scored(au, o) for (_, au), o in zip(probe_states, probe_out)])
    return result, outputs, probe_out


def _rule_teacher(items, probe_states):
    t = RuleTeacher()
    outs = [t.describe(active_aus(it.au), key=it.key) for it in items]
    result = score([Scored(it.au, o, it.reference) for it, o in zip(items, outs)])
    probe_out = [t.describe(active_aus(au), key=label) for label, au in probe_states]
    result["probe_scores"] = score([Scored(au, o) for (_, au), o in zip(probe_states, probe_out)])
    return result, probe_out


def evaluate(items, *, adapter, base=None, device="cpu", dtype=None, baselines=True,
             batch_size=16, max_new_tokens=96, progress=True, examples=5) -> dict:
    """The full report as a dict: the tuned model's figures at the top level, the untuned base
    and the rule teacher under `baselines`, the probe table under `probes`."""
    from ..models.base_llm import adapter_base, load_for_generation

    base = base or adapter_base(adapter)
    probe_states = probes(DEFAULT_BANDS)
    gen_kwargs = {"batch_size": batch_size, "max_new_tokens": max_new_tokens}
    model, tok = load_for_generation(base, adapter, device=device, dtype=dtype)
    tuned, outputs, tuned_probe = _run_model("tuned", model, tok, items, probe_states, gen_kwargs, progress)
    del model
    report = {"adapter": str(adapter), "base_model": str(base), "n_samples": len(items), **tuned,
              "baselines": {}, "examples": [], "probes": []}
    base_probe = [None] * len(probe_states)
    if baselines:
        model, tok = load_for_generation(base, None, device=device, dtype=dtype)
        report["baselines"]["base"], _, base_probe = _run_model(
            "base", model, tok, items, probe_states, gen_kwargs, progress)
        del model
    rule, rule_probe = _rule_teacher(items, probe_states)
    report["baselines"]["rule_teacher"] = rule
    for it, out in list(zip(items, outputs))[:examples]:
        report["examples"].append({"input": au_state_text(active_aus(it.au)), "output": out,
                                   "reference": it.reference})
    for (label, au), t_out, b_out, r_out in zip(probe_states, tuned_probe, base_probe, rule_probe):
        report["probes"].append({"probe": label, "input": au_state_text(active_aus(au)),
                                 "tuned": t_out, "base": b_out, "rule_teacher": r_out})
    return report


METRICS = ("eval_loss", "au_precision", "au_recall", "au_f1", "hallucination_rate",
           "emotion_word_rate", "band_agreement", "rouge_l", "mean_words", "descriptions_per_s")


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def format_report(report: dict) -> str:
    cols = [("tuned", report)] + list(report["baselines"].items())
    lines = [f"AU Agent evaluation: {report['n_samples']} samples, adapter {report['adapter']}, "
             f"base {report['base_model']}", ""]
    lines.append(f"{'metric':<20}" + "".join(f"{name:>16}" for name, _ in cols))
    for m in METRICS:
        lines.append(f"{m:<20}" + "".join(f"{_fmt(c.get(m)):>16}" for _, c in cols))
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
    if report["examples"]:
        lines += ["", "Examples from the data (input -> output / reference):"]
        for e in report["examples"]:
            lines += [f"- {e['input']}", f"    output:    {e['output']}",
                      f"    reference: {e['reference']}"]
    return "\n".join(lines)
