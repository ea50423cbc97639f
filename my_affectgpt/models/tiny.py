"""A tiny random Qwen2 for CPU runs and tests (`model.llm_tiny` sizes), its vocabulary a tokenizer's.
Its weights come from a fixed seed, so a new process builds the same frozen base model."""
from __future__ import annotations

from typing import Mapping

import torch

TINY_INIT_SEED = 0
# With 32-64 dims, the usual 0.02 init gives near-uniform logits through the frozen lm_head, which
# LoRA can hardly sharpen; a larger init lets a tiny model learn within a few hundred steps.
TINY_INITIALIZER_RANGE = 0.2


def tiny_qwen2(sizes: Mapping, tokenizer):
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    eos_id = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    pad_id = tokenizer.convert_tokens_to_ids(tokenizer.pad_token)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=sizes["hidden_size"],
        intermediate_size=sizes["intermediate_size"], num_hidden_layers=sizes["num_layers"],
        num_attention_heads=sizes["num_heads"], num_key_value_heads=sizes["num_kv_heads"],
        max_position_embeddings=4096, tie_word_embeddings=False,
        initializer_range=TINY_INITIALIZER_RANGE,
        bos_token_id=None, eos_token_id=eos_id, pad_token_id=pad_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_INIT_SEED)
        model = Qwen2ForCausalLM(config).float()
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)
    return model
