"""Fold a trained LoRA adapter into its base model and export one plain model folder
(safetensors + tokenizer + au_agent_merge.json). The export loads with AutoModelForCausalLM, vLLM or
`base_llm.load_for_generation(base=OUT)` and generates as fast as the base model, with no peft at
serving time. Used by the vLLM backend of the AU Agent and by `python -m my_affectgpt.training.merge`.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from my_affectgpt.common.atomic import replace_dir
from my_affectgpt.common.errors import InputError

RECORD = "au_agent_merge.json"


def adapter_digest(adapter) -> str:
    """sha256 of the adapter weights: identifies what was merged."""
    files = sorted(Path(adapter).glob("adapter_model.*"))
    if not files:
        raise InputError(adapter, "no adapter_model.safetensors in the adapter folder")
    h = hashlib.sha256()
    for f in files:
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def merge(adapter, out, base=None, dtype="auto", cache_dir=None, overwrite=False) -> Path:
    """Merge `adapter` into `base` (default: the base the adapter records); write `out` atomically."""
    from peft import PeftModel

    from my_affectgpt.models import base_llm

    adapter, out = Path(adapter), Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(out, "output folder exists and is not empty (use --overwrite)")
    base = base or base_llm.adapter_base(adapter)
    digest = adapter_digest(adapter)
    folder = base_llm.resolve_base_model(base, cache_dir)
    torch_dtype = None if dtype == "auto" else base_llm.pick_dtype("cpu", dtype)
    tokenizer = base_llm.load_tokenizer(folder)
    model = base_llm.load_base_model(folder, dtype=torch_dtype)  # auto: the dtype it was saved in
    try:
        model = PeftModel.from_pretrained(model, str(adapter))
    except (ValueError, RuntimeError, KeyError) as err:
        raise InputError(adapter, f"adapter does not fit base model {base}: "
                                  f"{str(err).splitlines()[0]}") from None
    model = model.merge_and_unload()

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / RECORD).write_text(json.dumps({
            "base_model": base_llm.base_model_id(base), "adapter": str(adapter.resolve()),
            "adapter_sha256": digest, "dtype": str(model.dtype).replace("torch.", "")},
            indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
