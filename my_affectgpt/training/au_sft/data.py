"""AU Agent SFT data: JSONL chat samples (DESIGN.md §4) -> token ids, labels only on the answer and
the end-of-turn; the map-style dataset and the padding collator the Trainer uses."""
from __future__ import annotations

from pathlib import Path

from my_affectgpt.common.errors import InputError
from my_affectgpt.common.jsonl import jsonl_rows

IGNORE = -100  # label value the loss skips


def read_chat_jsonl(path, limit=None) -> list:
    """The `messages` of each line of a DESIGN.md §4 JSONL file, validated."""
    path = Path(path)
    out = []
    with path.open(encoding="utf-8") as f:
        for lineno, row in jsonl_rows(f, lambda n, err: InputError(f"{path}:{n}", f"invalid JSON: {err.msg}")):
            where = f"{path}:{lineno}"
            msgs = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(msgs, list) or len(msgs) < 2:
                raise InputError(where, "needs a 'messages' list (system/user/assistant)")
            for m in msgs:
                if not (isinstance(m, dict) and isinstance(m.get("role"), str)
                        and isinstance(m.get("content"), str)):
                    raise InputError(where, "each message needs string 'role' and 'content'")
            if msgs[-1]["role"] != "assistant" or not any(m["role"] == "user" for m in msgs):
                raise InputError(where, "messages must contain a user turn and end with the assistant")
            out.append(msgs)
            if limit is not None and len(out) >= limit:
                break
    if not out:
        raise InputError(path, "no samples")
    return out


def answer_text(tokenizer, messages, prompt: str) -> str:
    """What the model must produce after `prompt`: the answer and the template's end-of-turn.

    Taken from the chat template itself, so each model learns its own stop token; text after
    the last end-of-turn token (Qwen and SmolLM write a newline) is never generated, so dropped.
    """
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise InputError("chat template", "rendering with the answer does not extend the prompt")
    tail = full[len(prompt):]
    eos = tokenizer.eos_token
    cut = tail.rfind(eos) if eos else -1
    return tail[:cut + len(eos)] if cut >= 0 else tail.rstrip() + (eos or "")


def encode_chat(tokenizer, messages, max_seq_len: int):
    """(input_ids, labels) for one sample; labels are IGNORE on the prompt. None if no answer fits.

    Prompt and answer are tokenised separately, exactly as at generation time, where the
    prompt is tokenised alone and the model continues it.
    """
    from my_affectgpt.models.base_llm import render_prompt

    prompt = render_prompt(tokenizer, messages)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(answer_text(tokenizer, messages, prompt), add_special_tokens=False)["input_ids"]
    ids = (p_ids + a_ids)[:max_seq_len]
    labels = ([IGNORE] * len(p_ids) + a_ids)[:max_seq_len]
    if len(p_ids) >= len(ids):
        return None
    return ids, labels


class TokenizedChats:
    """A map-style dataset of pre-tokenised samples (what Trainer and its samplers need)."""

    def __init__(self, tokenizer, conversations, max_seq_len: int, desc="tokenising", show=True):
        from tqdm import tqdm

        self.items = []
        self.truncated = self.dropped = 0
        for msgs in tqdm(conversations, desc=desc, disable=not show, mininterval=1.0):
            enc = encode_chat(tokenizer, msgs, max_seq_len)
            if enc is None:
                self.dropped += 1
                continue
            ids, labels = enc
            if len(ids) == max_seq_len and labels[-1] != tokenizer.eos_token_id:
                self.truncated += 1
            self.items.append({"input_ids": ids, "labels": labels})
        if not self.items:
            raise InputError("data.max_seq_len", f"{max_seq_len} leaves no room for any answer")

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class PadCollator:
    """Right-pads a batch; padding gets attention 0 and label IGNORE."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, features):
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
