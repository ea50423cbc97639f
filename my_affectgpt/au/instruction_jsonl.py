"""Instruction JSONL (Alpaca, ShareGPT or OpenAI-style messages, with AU values in the text) ->
`AURecord`s (au/sources.py has the formats and the record)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Mapping

from my_affectgpt.au.sources import (SOURCE_ALPACA, SOURCE_SHAREGPT, AURecord, normalise_au_mapping,
                                     parse_au_text)
from my_affectgpt.common.errors import InputError
from my_affectgpt.common.jsonl import jsonl_rows


_USER_ROLES = {"human", "user"}
_ASSISTANT_ROLES = {"gpt", "assistant", "model", "bot"}
_OTHER_ROLES = {"system", "observation", "function_call", "tool", "function"}


def _content_text(value) -> str:
    """Message content: a string, or OpenAI-style parts `[{"type": "text", "text": ...}]`."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    raise ValueError(f"message content of type {type(value).__name__} is not text")


def _turns(obj: Mapping) -> list:
    """(role, text) of a ShareGPT `conversations` or OpenAI `messages` list."""
    key = "conversations" if "conversations" in obj else "messages"
    items = obj[key]
    if not isinstance(items, list):
        raise ValueError(f"{key} is not a list")
    turns = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"{key}[{i}] is not an object")
        role = item.get("from", item.get("role"))
        role = role.lower() if isinstance(role, str) else role
        if role in _USER_ROLES:
            role = "user"
        elif role in _ASSISTANT_ROLES:
            role = "assistant"
        elif role not in _OTHER_ROLES:
            raise ValueError(f"{key}[{i}] has unknown role {role!r}")
        turns.append((role, _content_text(item.get("value", item.get("content")))))
    return turns


def _chat_au_and_answer(obj: Mapping) -> tuple:
    # The prompt is the first user turn with AU values (else the first user turn, for lines
    # with a structured "au" object); the answer is the assistant turn that replies to it.
    turns = _turns(obj)
    users = [i for i, (role, _) in enumerate(turns) if role == "user"]
    au, prompt = {}, users[0] if users else None
    for i in users:
        au = parse_au_text(turns[i][1])
        if au:
            prompt = i
            break
    if prompt is None:
        return {}, None
    answer = None
    for role, text in turns[prompt + 1:]:
        if role == "user":
            break
        if role == "assistant":
            answer = text
            break
    return au, answer


def _alpaca_au_and_answer(obj: Mapping) -> tuple:
    texts = []
    for key in ("instruction", "input"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f'"{key}" is not text')
        texts.append(value or "")
    output = obj.get("output")
    if output is not None and not isinstance(output, str):
        raise ValueError('"output" is not text')
    # LLaMA-Factory joins instruction and input into one prompt, so either may hold the values.
    return parse_au_text("\n".join(texts)), output


def _video_name(obj: Mapping, fallback: str) -> str:
    for key in ("video", "name", "id"):
        value = obj.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, (str, int)) and str(value).strip():
            return str(value).strip()
    videos = obj.get("videos")  # MER-Factory's ShareGPT export: "videos": ["/path/clip.mp4"]
    if isinstance(videos, list) and videos and isinstance(videos[0], str) and videos[0].strip():
        return Path(videos[0].strip()).stem
    return fallback


def _record_frame(obj: Mapping) -> int:
    value = obj.get("frame", -1)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ValueError(f'"frame" {value!r} is not a frame number')
    return value


def _instruction_record(obj, stem: str, line_no: int) -> AURecord:
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if "conversations" in obj or "messages" in obj:
        source = SOURCE_SHAREGPT
        au, answer = _chat_au_and_answer(obj)
    elif any(k in obj for k in ("instruction", "input", "output")):
        source = SOURCE_ALPACA
        au, answer = _alpaca_au_and_answer(obj)
    else:
        raise ValueError("neither Alpaca (instruction/input/output) nor ShareGPT "
                         "(conversations or messages)")
    # Our own dataset lines (DESIGN.md §4) carry the values as a structured "au" object.
    if isinstance(obj.get("au"), Mapping):
        au = normalise_au_mapping(obj["au"])
    if not au:
        raise ValueError("no AU values found (expected a line like "
                         "'AU values: AU04: 2.24, AU07: 1.87')")
    answer = answer.strip() if isinstance(answer, str) and answer.strip() else None
    return AURecord(_video_name(obj, f"{stem}_{line_no}"), _record_frame(obj), au, answer, source)


def read_instruction_jsonl(path) -> Iterator[AURecord]:
    """Records from an Alpaca / ShareGPT / OpenAI-messages JSONL file, one per non-blank line,
    detecting the style per line. Raises InputError(path, "line N: <cause>") on a bad line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist" if not path.exists() else "not a file")
    count = 0
    try:
        with open(path, encoding="utf-8-sig") as f:
            for line_no, obj in jsonl_rows(f, lambda n, e: InputError(
                    path, f"line {n}: invalid JSON: {e.msg} (column {e.colno})")):
                try:
                    record = _instruction_record(obj, path.stem, line_no)
                except ValueError as e:
                    raise InputError(path, f"line {line_no}: {e}") from None
                count += 1
                yield record
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None
    if not count:
        raise InputError(path, "no records (the file is empty)")
