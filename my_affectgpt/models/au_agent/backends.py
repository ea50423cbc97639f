"""The AU Agent's describers, one output contract (a list of descriptions in input order):
- ``hf``: transformers + peft (base model + LoRA merged for inference), the default;
- ``template``: the FACS rule teacher (teacher.RuleTeacher), no LLM, for tests and baselines;
- ``vllm``: vLLM on a GPU where installed (the adapter is merged once into the cache first).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Iterator, Sequence

from tqdm import tqdm

from my_affectgpt.au import prompts as au_prompts
from my_affectgpt.au.facs import parse_au_state_text
from my_affectgpt.au.teacher import RuleTeacher
from my_affectgpt.common.errors import InputError
from my_affectgpt.models import base_llm
from my_affectgpt.models.au_agent.config import CPU_BATCH, GPU_BATCH, AUAgentConfig
from my_affectgpt.models.au_agent.identity import adapter_fingerprint, base_fingerprint
from my_affectgpt.models.feature_store import identity_hash

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
    return "cpu"


class TemplateBackend:
    """The rule teacher: its canonical wording gives equal prompts equal descriptions."""

    name = "template"
    uses_cache = False  # instant; a cache would only cost disk

    def __init__(self, config: AUAgentConfig):
        self.teacher = RuleTeacher(bands=config.bands)

    def identity(self) -> dict:
        return {"backend": self.name, "teacher": "rule",
                "bands": dataclasses.asdict(self.teacher.bands)}

    def generate(self, texts: Sequence[str], progress: bool = False) -> Iterator[tuple[list, list]]:
        yield list(texts), [self.teacher.describe(parse_au_state_text(t)) for t in texts]


class HFBackend:
    """transformers generation: base + LoRA merged, batched greedy (generation.generate_texts)."""

    name = "hf"
    uses_cache = True

    def __init__(self, config: AUAgentConfig, model=None, tokenizer=None):
        self.config = config
        self.device = resolve_device(config.device)
        self.model, self.tokenizer = model, tokenizer
        if model is not None:
            self.device = str(next(model.parameters()).device)
        self.batch_size = config.batch_size or (GPU_BATCH if self.device.startswith("cuda") else CPU_BATCH)

    def _dtype_name(self) -> str:
        import torch

        if self.model is not None:
            dt = next(self.model.parameters()).dtype
        else:
            dt = base_llm.pick_dtype(self.device, self.config.dtype)
        return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dt, str(dt))

    def identity(self) -> dict:
        cfg = self.config
        ident = {"backend": self.name}
        base = cfg.base_model or base_llm.adapter_base(cfg.adapter)
        ident.update(base_fingerprint(base, cfg.model_cache_dir))
        ident.update(adapter_fingerprint(cfg.adapter) if cfg.adapter else {"adapter": None})
        ident.update({"dtype": self._dtype_name(), "max_new_tokens": cfg.max_new_tokens,
                      "do_sample": cfg.do_sample})
        if cfg.do_sample:
            ident["seed"] = cfg.seed
        return ident

    def load(self):
        if self.model is None:
            cfg = self.config
            log.info("loading AU Agent model %s (adapter %s) on %s", cfg.base_model, cfg.adapter, self.device)
            self.model, self.tokenizer = base_llm.load_for_generation(
                cfg.base_model, cfg.adapter, device=self.device, dtype=cfg.dtype,
                cache_dir=cfg.model_cache_dir, merge=True)
            base_llm.check_chat_template(self.tokenizer, cfg.base_model or "model")
        return self.model, self.tokenizer

    def render(self, texts: Sequence[str]) -> list:
        _, tok = self.load()
        return [base_llm.render_prompt(tok, au_prompts.chat_messages(t)) for t in texts]

    def generate(self, texts: Sequence[str], progress: bool = False) -> Iterator[tuple[list, list]]:
        """Yields (texts, descriptions) per batch, longest prompts last, so callers can persist."""
        from my_affectgpt.models.generation import generate_texts

        model, tok = self.load()
        rendered = self.render(texts)
        lengths = [len(ids) for ids in tok(rendered, add_special_tokens=False)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        bar = tqdm(total=len(texts), desc="describe", unit="prompt", disable=not progress, leave=False)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.config.do_sample:
                import torch

                torch.manual_seed(self.config.seed + start)
            outs = generate_texts(model, tok, [rendered[i] for i in idx], batch_size=len(idx),
                                  max_new_tokens=self.config.max_new_tokens, do_sample=self.config.do_sample)
            bar.update(len(idx))
            yield [texts[i] for i in idx], outs
        bar.close()


class VLLMBackend(HFBackend):
    """vLLM offline engine (GPU). The adapter is merged once into <model cache>/merged/."""

    name = "vllm"
    uses_cache = True
    CHUNK = 2048  # prompts per engine call: vLLM batches internally; chunks let callers persist

    def __init__(self, config: AUAgentConfig):
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise InputError("au_agent_backend", "vllm is not installed (pip install vllm; GPU only), "
                                                 "use --backend hf") from None
        super().__init__(config)
        self.engine = None

    def _merged_folder(self) -> Path:
        from my_affectgpt.models.lora_merge import merge

        cfg = self.config
        base = cfg.base_model or base_llm.adapter_base(cfg.adapter)
        ident = {**base_fingerprint(base, cfg.model_cache_dir), **adapter_fingerprint(cfg.adapter)}
        out = base_llm.cache_root(cfg.model_cache_dir) / "merged" / identity_hash(ident)
        if not (out / "config.json").is_file():
            merge(cfg.adapter, out, base=base, cache_dir=cfg.model_cache_dir, overwrite=True)
        return out

    def load(self):
        if self.engine is None:
            from vllm import LLM

            cfg = self.config
            folder = self._merged_folder() if cfg.adapter else base_llm.resolve_base_model(cfg.base_model, cfg.model_cache_dir)
            self.tokenizer = base_llm.load_tokenizer(folder)
            base_llm.check_chat_template(self.tokenizer, str(folder))
            dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[self._dtype_name()]
            self.engine = LLM(model=str(folder), tokenizer=str(folder), dtype=dtype, seed=cfg.seed)
        return self.engine, self.tokenizer

    def _dtype_name(self) -> str:
        if self.config.dtype != "auto":
            return self.config.dtype
        return super()._dtype_name()

    def generate(self, texts: Sequence[str], progress: bool = False) -> Iterator[tuple[list, list]]:
        from vllm import SamplingParams

        from my_affectgpt.models.generation import _stop_ids

        engine, tok = self.load()
        params = SamplingParams(temperature=0.7 if self.config.do_sample else 0.0,
                                max_tokens=self.config.max_new_tokens, seed=self.config.seed,
                                stop_token_ids=_stop_ids(tok), skip_special_tokens=True)
        for start in range(0, len(texts), self.CHUNK):
            chunk = list(texts[start:start + self.CHUNK])
            # Token ids, not text: vLLM would add a BOS that the chat template already has.
            ids = [tok(r, add_special_tokens=False)["input_ids"] for r in self.render(chunk)]
            outs = engine.generate([{"prompt_token_ids": i} for i in ids], params, use_tqdm=progress)
            yield chunk, [o.outputs[0].text.strip() for o in outs]


def make_backend(config: AUAgentConfig, model=None, tokenizer=None):
    """The backend `config.backend` names (`model`/`tokenizer`: an already loaded hf model)."""
    if config.backend == "template":
        return TemplateBackend(config)
    if config.backend == "vllm":
        return VLLMBackend(config)
    return HFBackend(config, model=model, tokenizer=tokenizer)
