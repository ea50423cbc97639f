"""Batched greedy generation of AU descriptions with a Hugging Face causal LM.

Prompts are rendered with the model's own chat template, equal prompts are generated once,
batches are formed from prompts of similar length (sorted, left-padded) so little compute goes
to padding, and generation stops at EOS / end of turn or `max_new_tokens`.
"""
from __future__ import annotations

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
                   desc: str = "generate") -> list:
    """Completions of already rendered prompts, in input order. Equal prompts share one run."""
    import torch

    unique = sorted(set(rendered))
    enc = {p: tokenizer(p, add_special_tokens=False)["input_ids"] for p in unique}
    unique.sort(key=lambda p: len(enc[p]))  # similar lengths share a batch: little padding
    stop = _stop_ids(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0]
    device = next(model.parameters()).device
    out: dict = {}
    bar = tqdm(total=len(unique), desc=desc, unit="prompt", disable=not progress)
    for start in range(0, len(unique), batch_size):
        batch = unique[start:start + batch_size]
        width = max(len(enc[p]) for p in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, p in enumerate(batch):  # left padding: every prompt ends where generation starts
            ids[i, width - len(enc[p]):] = torch.tensor(enc[p])
            mask[i, width - len(enc[p]):] = 1
        with torch.inference_mode():
            gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                 max_new_tokens=max_new_tokens, do_sample=do_sample,
                                 eos_token_id=stop, pad_token_id=pad_id,
                                 **({} if do_sample else {"temperature": None, "top_p": None,
                                                          "top_k": None}))
        for i, p in enumerate(batch):
            out[p] = tokenizer.decode(gen[i, width:], skip_special_tokens=True).strip()
        bar.update(len(batch))
    bar.close()
    return [out[p] for p in rendered]


def describe_au_texts(model, tokenizer, au_texts: Sequence[str], **kwargs) -> list:
    """Descriptions for canonical AU texts (facs.au_state_text) with the versioned prompt."""
    rendered = [render_prompt(tokenizer, au_prompts.chat_messages(t)) for t in au_texts]
    return generate_texts(model, tokenizer, rendered, **kwargs)
