"""torch.compile for the parts of a decoder layer that are the same code in every layer.

Compiling whole decoder layers gives one graph per layer (the key/value cache is indexed by the
layer's number, which dynamo treats as a constant): ~2.8 minutes of compiling on 2 CPU cores for
SmolLM2's 30 layers. Each layer's MLP and its two RMSNorms share one graph per kind instead
(parameters are graph inputs), so compiling them costs ~35-50 s once, and the fused
element-wise work (SiLU x up-projection, the LoRA updates, the norms, forward and backward) makes
a CPU training step faster (bench/RESULTS.md, "Compiled MLP and norms").
"""
from __future__ import annotations

import shutil

# Llama / Qwen2 / Mistral module names; a model with none of them is left as it is.
BLOCK_SUFFIXES = (".mlp", ".input_layernorm", ".post_attention_layernorm")


def cxx_compiler() -> str | None:
    """The C++ compiler inductor would use for CPU code (CXX, else g++), or None."""
    from torch._inductor import config

    return next((found for name in config.cpp.cxx if name and (found := shutil.which(name))), None)


def compile_layer_blocks(model) -> int:
    """Compile (lazily, at their first call) each decoder layer's MLP and norms in place, with
    dynamic shapes (batches vary in length); returns how many modules (0: no C++ compiler for
    CPU code, so nothing compiled). State dict keys and saved adapters are unchanged."""
    import torch._dynamo

    if cxx_compiler() is None:
        return 0
    # Should compiling fail all the same, those modules run eagerly (with a warning) instead of
    # failing the run.
    torch._dynamo.config.suppress_errors = True
    count = 0
    for name, module in model.named_modules():
        if name.endswith(BLOCK_SUFFIXES):
            module.compile(dynamic=True)
            count += 1
    return count
