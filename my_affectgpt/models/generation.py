"""Batched greedy generation of AU descriptions with a Hugging Face causal LM.

Prompts are rendered with the model's own chat template, equal prompts are generated once,
batches are formed from prompts of similar length (sorted, padded) so little compute goes
to padding, the leading tokens that all prompts share (system prompt + instruction) are computed
once and reused by every row, and generation stops at EOS / end of turn or `max_new_tokens`.
Greedy decoding runs our own short loop in which a row that has stopped leaves the batch
(transformers' `generate` keeps computing it until the last row stops): same tokens, 1.14x
faster on CPU for the untuned base, both in batches of 32 (bench/RESULTS.md). Sampling goes
through `generate` and its settings.
"""
from __future__ import annotations

import copy
import os
from typing import Sequence

from tqdm import tqdm

from ..au import prompts as au_prompts
from .base_llm import render_prompt


def _stop_ids(tokenizer) -> list:
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    for tok in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
            ids.add(tid)
    return sorted(ids)


def generate_texts(model, tokenizer, rendered: Sequence[str], *, batch_size: int = 16,
                   max_new_tokens: int = 160, do_sample: bool = False, progress: bool = False,
                   desc: str = "generate", bar_position: int | None = None) -> list:
    """Completions of already rendered prompts, in input order. Equal prompts share one run.
    `bar_position` puts the progress bar on its own line when another process shows one."""
    import torch

    unique = sorted(set(rendered))
    enc = {p: tokenizer(p, add_special_tokens=False)["input_ids"] for p in unique}
    unique.sort(key=lambda p: len(enc[p]))  # similar lengths share a batch: little padding
    stop = _stop_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0]
    device = next(model.parameters()).device
    head, head_cache = _shared_head(model, [enc[p] for p in unique], device)
    out: dict = {}
    bar = tqdm(total=len(unique), desc=desc, unit="prompt", disable=not progress,
               position=bar_position)
    for start in range(0, len(unique), batch_size):
        batch = unique[start:start + batch_size]
        width = max(len(enc[p]) for p in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, p in enumerate(batch):
            # [shared head][padding][rest of the prompt]: every prompt ends where generation
            # starts; position ids come from the mask, so the padding takes no position.
            ids[i, :head], mask[i, :head] = torch.tensor(enc[p][:head]), 1
            ids[i, width - len(enc[p]) + head:] = torch.tensor(enc[p][head:])
            mask[i, width - len(enc[p]) + head:] = 1
        with torch.inference_mode():
            cache = None
            if head_cache is not None:
                cache = copy.deepcopy(head_cache)  # decoding appends to it
                cache.batch_repeat_interleave(len(batch))
            decode = _transformers_generate if do_sample else _greedy
            new_tokens = decode(model, ids.to(device), mask.to(device), head, cache, max_new_tokens,
                                stop, pad_id)
        for p, tokens in zip(batch, new_tokens):
            out[p] = tokenizer.decode(tokens, skip_special_tokens=True).strip()
        bar.update(len(batch))
    bar.close()
    return [out[p] for p in rendered]


def _greedy(model, ids, mask, head, cache, max_new_tokens, stop_ids, pad_id) -> list:
    """New tokens per row (stop token excluded) of greedy decoding; a row that stops leaves the
    batch at once. `cache` holds the first `head` tokens of every row (or is None)."""
    import torch

    stop = torch.tensor(stop_ids, device=ids.device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # padding takes no position
    prefill = model(input_ids=ids[:, head:], attention_mask=mask, position_ids=positions[:, head:],
                    past_key_values=cache, use_cache=True, logits_to_keep=1)
    cache, logits = prefill.past_key_values, prefill.logits
    rows = list(range(ids.shape[0]))  # which input row each live batch row is
    new_tokens = [[] for _ in rows]
    next_position = mask.sum(-1)
    for step in range(max_new_tokens):
        token = logits[:, -1].argmax(-1)
        stopped = torch.isin(token, stop)
        for row, t, s in zip(rows, token.tolist(), stopped.tolist()):
            if not s:
                new_tokens[row].append(t)
        if step == max_new_tokens - 1 or bool(stopped.all()):
            break
        if bool(stopped.any()):
            live = (~stopped).nonzero().squeeze(1)
            cache.batch_select_indices(live)
            rows = [rows[i] for i in live.tolist()]
            mask, token, next_position = mask[live], token[live], next_position[live]
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        logits = model(input_ids=token[:, None], attention_mask=mask,
                       position_ids=next_position[:, None], past_key_values=cache,
                       use_cache=True).logits
        next_position = next_position + 1
    return new_tokens


def _transformers_generate(model, ids, mask, head, cache, max_new_tokens, stop_ids, pad_id,
                           do_sample=True) -> list:
    """New tokens per row (stop token excluded) from transformers' `generate`, which applies the
    model's sampling settings (temperature, top-p ...) and runs every row until the last stops."""
    extra = {"past_key_values": cache} if cache is not None else {}
    if not do_sample:
        extra.update(temperature=None, top_p=None, top_k=None)
    gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                         do_sample=do_sample, eos_token_id=stop_ids, pad_token_id=pad_id, **extra)
    stop = set(stop_ids)
    rows = gen[:, ids.shape[1]:].tolist()
    return [row[:next((i for i, t in enumerate(row) if t in stop), len(row))] for row in rows]


# Below this many shared tokens the separate forward call costs more than it saves (generation
# here, and the training loss in training/au_sft/loss.py).
MIN_SHARED_HEAD = 8


def _shared_head(model, token_lists, device):
    """(length, key/value cache) of the leading tokens every prompt shares, computed once; (0,
    None) when there are too few of them, a single prompt, or the model has no Cache object."""
    import torch

    if len(token_lists) < 2:
        return 0, None
    head = len(os.path.commonprefix(token_lists))
    head = min(head, min(len(t) for t in token_lists) - 1)  # every row needs one token of its own
    if head < MIN_SHARED_HEAD:
        return 0, None
    with torch.inference_mode():
        cache = head_cache(model, torch.tensor([token_lists[0][:head]], device=device))
    return (head, cache) if cache is not None else (0, None)


def head_cache(model, head_ids, head_mask=None):
    """Key/value cache of a prompt head (one row) that every row of a batch will attend to; the
    caller repeats it per row. None for a model without a Cache object: use a plain forward."""
    cache = model(input_ids=head_ids, attention_mask=head_mask, use_cache=True,
                  logits_to_keep=1).past_key_values
    return cache if hasattr(cache, "batch_repeat_interleave") else None


def describe_au_texts(model, tokenizer, au_texts: Sequence[str], **kwargs) -> list:
    """Descriptions for canonical AU texts (facs.au_state_text) with the versioned prompt."""
    rendered = [render_prompt(tokenizer, au_prompts.chat_messages(t)) for t in au_texts]
    return generate_texts(model, tokenizer, rendered, **kwargs)
