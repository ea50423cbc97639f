"""Time one LoRA training step of the CPU recipe under different settings, side by side.

What it measures: forward + backward + AdamW step of the AU Agent SFT (answer-only loss, output
layer at answer positions only) on real batches of the instruction dataset, for each variant
below, interleaved round-robin so that load from other processes falls on all of them alike.
Prints the median seconds per step and each variant's ratio to the first.

    python bench/bench_sft_step.py --data data/au_instructions/train.jsonl [--rounds 4] [--bf16]

Variants (fp32 unless said): LoRA on all layers with dropout 0.05 and a plain forward (the
production recipe's settings); the same without LoRA dropout (drawing the dropout masks is a large
share of a CPU step); the CPU recipe as shipped: no dropout and the prompt head that all rows share
computed once per batch (au_sft.answer_loss_sum share_prefix); that with LoRA on the top N layers
only (backward stops there; --top-layers, default none); with --compile, the CPU recipe with each
layer's MLP and norms under torch.compile (training.compile_blocks); with --fused-lora, the CPU recipe with each LoRA update
added to the layer's output inside one addmm (an experiment, not used by training:
bench/RESULTS.md); a forward pass alone; with --bf16 bf16 autocast. Batches are formed from
samples of similar length, as the length-grouped sampler does.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def fused_lora_class():
    """peft's LoRA Linear computing base(x) + B(A(x)) * scaling as one addmm (no full-size
    product and sum copies); the plain-LoRA case only, which is what the CPU recipe uses."""
    import torch
    import torch.nn.functional as F
    from peft.tuners.lora import Linear as LoraLinear

    class FusedLoraLinear(LoraLinear):
        def forward(self, x, *args, **kwargs):
            (name,) = self.active_adapters
            assert not (args or kwargs or self.merged or name in self.lora_variant)
            assert isinstance(self.lora_dropout[name], torch.nn.Identity)
            result = self.base_layer(x)
            down = F.linear(x, self.lora_A[name].weight)
            out = torch.addmm(result.reshape(-1, result.shape[-1]), down.reshape(-1, down.shape[-1]),
                              self.lora_B[name].weight.t(), alpha=self.scaling[name])
            return out.view(result.shape)

    return LoraLinear, FusedLoraLinear


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/au_instructions/train.jsonl")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--top-layers", type=int, nargs="*", default=None, metavar="N",
                   help="also the CPU recipe with LoRA on the top N layers only")
    p.add_argument("--profile", action="store_true",
                   help="also print torch.profiler's top operators for one step of each variant")
    p.add_argument("--bf16", action="store_true", help="also bf16 autocast (very slow on CPUs without bf16 units)")
    p.add_argument("--fused-lora", action="store_true",
                   help="also the CPU recipe with base(x) + B(A(x)) * scaling as one addmm per LoRA layer")
    p.add_argument("--compile", action="store_true",
                   help="also the CPU recipe with each layer's MLP and norms compiled (training.compile_blocks)")
    args = p.parse_args()

    import torch
    from peft import get_peft_model

    from my_affectgpt.models import base_llm
    from my_affectgpt.models.lora import LoraSettings, peft_lora_config
    from my_affectgpt.training.au_sft import PadCollator, TokenizedChats, answer_loss_sum, read_chat_jsonl

    LoraLinear, FusedLoraLinear = fused_lora_class()

    torch.manual_seed(0)
    folder = base_llm.resolve_base_model(args.model)
    tok = base_llm.load_tokenizer(folder)
    n = args.batch_size * args.rounds
    data = TokenizedChats(tok, read_chat_jsonl(args.data, n), 320, show=False)
    collate = PadCollator(tok.pad_token_id)
    items = sorted(data.items, key=lambda it: len(it["input_ids"]))  # as group_by_length does
    batches = [collate(items[i:i + args.batch_size]) for i in range(0, n, args.batch_size)]
    tokens = statistics.mean(int(b["attention_mask"].sum()) for b in batches) / args.batch_size

    def lora_model(top_layers=None, dropout=0.05):
        """A LoRA model built by the recipe's own peft_lora_config, and its optimizer."""
        torch.manual_seed(0)  # the same adapter initialisation in every variant
        base = base_llm.load_base_model(folder, dtype=torch.float32)
        lora = LoraSettings(r=args.lora_r, alpha=2 * args.lora_r, dropout=dropout,
                            top_layers=top_layers)
        m = get_peft_model(base, peft_lora_config(vars(lora), base.config.num_hidden_layers))
        m.train()
        return m, torch.optim.AdamW([q for q in m.parameters() if q.requires_grad], lr=1e-5)

    production = lora_model()
    no_dropout = lora_model(dropout=0.0)
    # name -> ((model, optimizer), mode, bf16 autocast, share the prompt head)
    variants = {"all layers, dropout 0.05": (production, "train", False, False),
                "all layers, no dropout": (no_dropout, "train", False, False),
                "no dropout, shared head (CPU recipe)": (no_dropout, "train", False, True)}
    for top in args.top_layers or []:
        variants[f"CPU recipe, LoRA on top {top} layers"] = (lora_model(top, 0.0), "train", False, True)
    if args.fused_lora:
        fused = lora_model(dropout=0.0)
        for module in fused[0].modules():
            if type(module) is LoraLinear:
                module.__class__ = FusedLoraLinear  # same object and parameters, fused forward
        variants["CPU recipe, LoRA update fused"] = (fused, "train", False, True)
    if args.compile:
        from my_affectgpt.training.compiled_blocks import compile_layer_blocks

        compiled = lora_model(dropout=0.0)
        if not compile_layer_blocks(compiled[0]):  # the warm-up step compiles them
            raise SystemExit("--compile: no C++ compiler found (CXX or g++)")
        variants["CPU recipe, MLP + norms compiled"] = (compiled, "train", False, True)
    variants["forward only (no grad)"] = (no_dropout, "forward", False, False)
    if args.bf16:
        variants["bf16 autocast, all layers"] = (production, "train", True, False)
    times = {k: [] for k in variants}

    def step(batch, variant):
        (model, opt), mode, bf16, share = variant
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16), torch.set_grad_enabled(mode == "train"):
            loss_sum, count, _ = answer_loss_sum(model, batch["input_ids"], batch["attention_mask"],
                                                 batch["labels"], share_prefix=share)
        if mode == "train":
            (loss_sum / count).backward()
            opt.step()
            opt.zero_grad()

    for name, variant in variants.items():  # warm-up (and compilation)
        t = time.perf_counter()
        step(batches[0], variant)
        print(f"  warm-up {name}: {time.perf_counter() - t:.1f} s", flush=True)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for name, variant in variants.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step(batches[0], variant)
            print(f"== {name}\n" + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
    for batch in batches:
        for name, variant in variants.items():
            t = time.perf_counter()
            step(batch, variant)
            times[name].append(time.perf_counter() - t)
            print(f"  {name}: {times[name][-1]:.2f} s", flush=True)
    if args.compile:
        # What evaluation inside training would pay: a forward without autograd compiles a second
        # set of graphs, unless the compiled modules are told to run eagerly (as the Trainer does).
        model = compiled[0]
        for label, stance in (("first call", "default"), ("second call", "default"),
                              ("force_eager", "force_eager")):
            t = time.perf_counter()
            with torch.no_grad(), torch.compiler.set_stance(stance):
                answer_loss_sum(model, batches[-1]["input_ids"], batches[-1]["attention_mask"],
                                batches[-1]["labels"], share_prefix=True)
            print(f"  compiled model, forward without autograd, {label}: "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size} x "
          f"{tokens:.0f} tokens (mean), LoRA r={args.lora_r}, load average {os.getloadavg()[0]:.2f}")
    first = None
    for name, ts in times.items():
        med = statistics.median(ts)
        first = first or med
        print(f"{name:<38} median {med:.2f} s/step  ({first / med:.2f}x the first), total "
              f"{sum(ts):.1f} s  all: "
              + " ".join(f"{t:.2f}" for t in ts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
