"""Identities of what makes an AU description: the base model (without reading its weights),
the LoRA adapter and the prompt. They key the description cache and the feature store."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from my_affectgpt.au import prompts as au_prompts
from my_affectgpt.common.errors import InputError
from my_affectgpt.models import base_llm
from my_affectgpt.models.text_encoders import file_sha256

_MODEL_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "chat_template.jinja", "chat_template.json",
                base_llm.SOURCE_FILE, "au_agent_merge.json")


def base_fingerprint(spec, cache_dir=None) -> dict:
    """What identifies a base model without reading its weights.

    An embedded model: its converted folder name, which hashes the package version and GGUF.
    A folder: sha256 over its config, tokenizer and merge/source records plus the names and sizes
    of its weight files, so moving the folder keeps the identity and swapping weights changes it.
    """
    if base_llm.is_embedded(spec):
        return {"base_model": str(spec), "base_fingerprint": base_llm.converted_folder(str(spec), cache_dir).name}
    folder = base_llm.resolve_base_model(spec, cache_dir)
    h = hashlib.sha256()
    for name in _MODEL_FILES:
        p = folder / name
        if p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes() + b"\0")
    for p in sorted(folder.iterdir()):
        if p.suffix in (".safetensors", ".bin", ".pt", ".gguf") and p.is_file():
            h.update(f"{p.name}:{p.stat().st_size}\n".encode())
    return {"base_model": folder.resolve().name, "base_fingerprint": h.hexdigest()[:20]}


def adapter_fingerprint(adapter) -> dict:
    """sha256 of the adapter weights and config: a retrained adapter is a new identity."""
    folder = Path(adapter)
    cfg = folder / "adapter_config.json"
    if not cfg.is_file():
        raise InputError(folder, "not a LoRA adapter folder (no adapter_config.json)")
    weights = sorted(folder.glob("adapter_model.*"))
    if not weights:
        raise InputError(folder, "no adapter_model.safetensors in the adapter folder")
    h = hashlib.sha256(cfg.read_bytes())
    for w in weights:
        h.update(file_sha256(w).encode())
    return {"adapter": folder.resolve().name, "adapter_sha256": h.hexdigest()}


def prompt_identity() -> dict:
    texts = json.dumps([au_prompts.SYSTEM_PROMPT, au_prompts.USER_TEMPLATE])
    return {"prompt_version": au_prompts.PROMPT_VERSION,
            "prompt_sha256": hashlib.sha256(texts.encode()).hexdigest()[:16]}
