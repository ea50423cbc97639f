"""The language model and tokenizer of AffectGPT: a local folder, or tiny and random for CPU runs.

- `load_llm(model_cfg, tokenizer)`: AutoModelForCausalLM from `model.llm_model` (local only), or a
  tiny random Qwen2 from `model.llm_tiny` sizes, its vocabulary the tokenizer's.
- `load_tokenizer(model_cfg, corpus, work_dir)`: `model.tokenizer`, else the LLM folder's, else a
  byte-level BPE tokenizer trained with the `tokenizers` library on the dataset's text and the
  prompt words, saved to `<work_dir>/tokenizer` and always read back from there with
  PreTrainedTokenizerFast, so training and inference use the identical tokenizer. A folder that
  already holds one is reused (resume, inference), never retrained.

Either way the modality placeholder tokens (`PLACEHOLDERS`) are special tokens of the tokenizer.
The tiny random LLM itself is models/tiny.py.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from my_affectgpt.common.errors import InputError
from my_affectgpt.models import base_llm  # sets HF_HUB_OFFLINE=1
from my_affectgpt.models.tiny import tiny_qwen2

# One placeholder per modality token; its positions in the prompt receive the fused embeddings.
PLACEHOLDERS = {"multi": "<MultiHere>", "audio": "<AudioHere>", "face": "<FaceHere>",
                "frame": "<FrameHere>", "au": "<AUHere>"}
PAD, EOS, IM_START = "<|endoftext|>", "<|im_end|>", "<|im_start|>"

# Qwen2.5's chat format without its default system prompt: <|im_start|>role\ncontent<|im_end|>\n
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def train_tokenizer(corpus: Iterable[str], vocab_size: int, folder) -> None:
    """Train a byte-level BPE tokenizer on `corpus` and save it to `folder`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [PAD, EOS, IM_START, *PLACEHOLDERS.values()]
    trainer = trainers.BpeTrainer(vocab_size=int(vocab_size), special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator((str(t) for t in corpus if t), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD,
                                   unk_token=None, bos_token=None, chat_template=TINY_CHAT_TEMPLATE,
                                   additional_special_tokens=[IM_START, *PLACEHOLDERS.values()])
    fast.save_pretrained(str(folder))


def _reload(folder):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def load_tokenizer(model_cfg: Mapping, corpus: Iterable[str] = (), work_dir=None):
    """The tokenizer for this config, with the placeholder tokens registered as special."""
    if model_cfg.get("tokenizer"):
        tok = base_llm.load_tokenizer(_folder(model_cfg["tokenizer"], "model.tokenizer"))
    elif model_cfg.get("llm_model"):
        tok = base_llm.load_tokenizer(_folder(model_cfg["llm_model"], "model.llm_model"))
    elif work_dir is None:  # nowhere to keep it: still make the save/reload round trip
        with tempfile.TemporaryDirectory() as tmp:
            train_tokenizer(corpus, model_cfg["llm_tiny"]["vocab_size"], tmp)
            tok = _reload(tmp)
    else:
        folder = Path(work_dir) / "tokenizer"
        if not (folder / "tokenizer.json").is_file():
            train_tokenizer(corpus, model_cfg["llm_tiny"]["vocab_size"], folder)
        tok = _reload(folder)
    missing = [p for p in PLACEHOLDERS.values() if p not in tok.get_vocab()]
    if missing:  # a real LLM's tokenizer: add them (same order, so the same ids every time)
        tok.add_special_tokens({"additional_special_tokens": missing})
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.eos_token is None:
        raise InputError("model.tokenizer", "tokenizer has no end-of-sequence token")
    return tok


def _folder(path, key: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InputError(folder, f"{key}: folder not found")
    return folder


def load_llm(model_cfg: Mapping, tokenizer):
    """The causal LM, its vocabulary large enough for every token of `tokenizer`."""
    if model_cfg.get("llm_model"):
        folder = base_llm.resolve_base_model(_folder(model_cfg["llm_model"], "model.llm_model"))
        model = base_llm.load_base_model(folder, local_files_only=True)
        # Placeholder ids never reach the embedding table (their rows are overwritten by the
        # fused modality tokens), but every id must be a valid row.
        if len(tokenizer) > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        return model
    return tiny_qwen2(model_cfg["llm_tiny"], tokenizer)
