"""LoRA settings shared by the AU Agent recipe (training/au_sft) and AffectGPT's LLM (models/affectgpt.py):
the `lora` config section (LoraSettings; named apart from peft's LoraConfig) and the peft config
built from it (peft_lora_config)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from my_affectgpt.common.errors import InputError


@dataclass
class LoraSettings:
    r: int = 64
    alpha: int = 128
    dropout: float = 0.05
    target_modules: List[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    # LoRA on the top N decoder layers only; null = all. Backward then stops N layers down:
    # a CPU step of SmolLM2-135M with N = half the layers is ~1.4-1.6x faster (bench/RESULTS.md).
    top_layers: Optional[int] = None


def peft_lora_config(lora, num_layers: int):
    """The peft LoraConfig of a `lora` config section, for a model with `num_layers` layers."""
    from peft import LoraConfig as PeftLoraConfig

    top = lora.get("top_layers")
    if top is not None and not 1 <= int(top) <= num_layers:
        raise InputError("lora.top_layers", f"{top} is not between 1 and the model's "
                                            f"{num_layers} layers (null = all layers)")
    return PeftLoraConfig(
        r=int(lora["r"]), lora_alpha=int(lora["alpha"]), lora_dropout=float(lora["dropout"]),
        target_modules=list(lora["target_modules"]), task_type="CAUSAL_LM",
        layers_to_transform=None if top is None else list(range(num_layers - int(top), num_layers)))
