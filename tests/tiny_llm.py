"""A tiny random Qwen2 causal LM with a tokenizer trained on the spot, for fast real-model tests.

`make_tiny_qwen2(folder)` writes a Hugging Face folder (config, safetensors weights, tokenizer with a
Qwen-style chat template) that `my_affectgpt.models.base_llm` loads like any local base model. The
weights are random, so the model writes gibberish, but every code path (chat template, LoRA, Trainer,
merge, generation) runs for real in well under a second.
"""
from __future__ import annotations

from pathlib import Path

# Qwen2.5's chat format without its default-system-prompt branch: <|im_start|>role\ncontent<|im_end|>\n
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def _corpus() -> list:
    """Text like the AU Agent's prompts and answers, so the BPE learns useful merges."""
    from my_affectgpt.au import facs, prompts

    lines = [prompts.SYSTEM_PROMPT, prompts.USER_TEMPLATE, prompts.API_TEACHER_SYSTEM]
    for code, au in facs.ACTION_UNITS.items():
        lines.append(f"{code} {au.name} 1.0; {code} {au.name} 2.5; {au.region}")
        lines.extend(au.phrases)
    lines.append("slight marked strong maximal faint neutral brows eyes cheeks nose mouth chin and jaw "
                 "0 1 2 3 4 5 6 7 8 9 . , ; : ( ) system user assistant")
    return lines


def make_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer trained here, wrapped as PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token=None, bos_token=None, chat_template=CHAT_TEMPLATE,
        additional_special_tokens=["<|im_start|>"])


def make_tiny_qwen2(folder, *, hidden_size: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Save a random tiny Qwen2ForCausalLM + tokenizer to `folder`; returns the folder."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    tokenizer = make_tokenizer()
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, tie_word_embeddings=False,
        # Larger than the usual 0.02: with 32 dims, small weights give near-uniform logits that
        # a LoRA adapter can hardly move, and tests want to see learning within a few steps.
        initializer_range=0.2,
        bos_token_id=None, eos_token_id=eos_id, pad_token_id=pad_id)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).float()
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
