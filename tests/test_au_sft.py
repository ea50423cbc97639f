"""AU Agent SFT: masking, answer-only loss, Trainer path, checkpoint-best, resume, merge, config.

Everything runs on a tiny random Qwen2 (tests/tiny_llm.py) on CPU, through the real Trainer,
peft, subprocess CLIs and the shell launcher.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from my_affectgpt.au import facs, prompts
from my_affectgpt.common.errors import InputError
from my_affectgpt.models import base_llm, generation
from my_affectgpt.training import au_sft

sys.path.insert(0, str(Path(__file__).parent))
from tiny_llm import make_tiny_qwen2  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# One thread: the tiny model gains nothing from more, and on a busy shared machine two spinning
# OpenMP threads can make it 100x slower.
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHON": sys.executable,
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_thread")


def _sample(rng) -> dict:
    codes = rng.sample(facs.INTENSITY_CODES, rng.randint(1, 3))
    active = {c: round(rng.uniform(1.0, 4.5), 1) for c in sorted(codes)}
    answer = " ".join(f"A {facs.ACTION_UNITS[c].name} ({c})." for c in active)
    return {"messages": prompts.chat_messages(facs.au_state_text(active), answer)}


def _write_jsonl(path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    rng = random.Random(0)
    make_tiny_qwen2(root / "tiny")
    batch = [_sample(rng) for _ in range(4)]
    _write_jsonl(root / "train.jsonl", batch * 4)  # one batch of 4, repeated
    _write_jsonl(root / "val.jsonl", [_sample(rng) for _ in range(4)])
    _write_jsonl(root / "long.jsonl", [_sample(rng) for _ in range(48)])
    return root


def _cfg(work, out, **over):
    base = {"model": str(work / "tiny"), "output_dir": str(out),
            "data.train": str(work / "train.jsonl"), "data.val": str(work / "val.jsonl"),
            "data.max_seq_len": 256, "lora.r": 8, "lora.alpha": 16, "lora.dropout": 0.0,
            "training.batch_size": 4, "training.eval_batch_size": 4, "training.grad_accum": 1,
            "training.max_steps": 12, "training.eval_steps": 3, "training.save_steps": 3,
            "training.learning_rate": 3e-2, "training.warmup": 0, "training.lr_scheduler": "constant",
            "training.logging_steps": 1, "training.report_to": "[]", "training.save_total_limit": 2}
    base.update(over)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="module")
def tok(work):
    return base_llm.load_tokenizer(work / "tiny")


# ---- data ------------------------------------------------------------------------------------

def test_prompt_tokens_masked_answer_and_end_token_labelled(work, tok):
    msgs = _sample(random.Random(5))["messages"]
    ids, labels = au_sft.encode_chat(tok, msgs, 1000)
    prompt_ids = tok(base_llm.render_prompt(tok, msgs), add_special_tokens=False)["input_ids"]
    n = len(prompt_ids)
    assert ids[:n] == prompt_ids
    assert labels[:n] == [au_sft.IGNORE] * n
    assert labels[n:] == ids[n:] and au_sft.IGNORE not in labels[n:]
    assert labels[-1] == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.decode(ids[n:]) == msgs[-1]["content"] + "<|im_end|>"
    # truncation keeps the prompt, cuts the answer; no room for an answer drops the sample
    ids2, labels2 = au_sft.encode_chat(tok, msgs, n + 3)
    assert len(ids2) == n + 3 and labels2[n:] == ids[n:n + 3]
    assert au_sft.encode_chat(tok, msgs, n) is None


def test_collator_pads_right_with_ignored_labels(tok):
    batch = au_sft.PadCollator(tok.pad_token_id)([
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [-100]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, tok.pad_token_id, tok.pad_token_id]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [-100, -100, -100]]


def test_jsonl_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": prompts.chat_messages("neutral", "x")}) + "\n{oops\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:2"):
        au_sft.read_chat_jsonl(bad)
    bad.write_text(json.dumps({"messages": prompts.chat_messages("neutral")}) + "\n")
    with pytest.raises(InputError, match="end with the assistant"):
        au_sft.read_chat_jsonl(bad)


# ---- loss ------------------------------------------------------------------------------------

def _lora_model_and_batch(work, tok, seed, target_modules):
    """A tiny LoRA model with non-zero adapters and a padded batch of 3 samples."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(base_llm.load_base_model(work / "tiny", dtype=torch.float32),
                           LoraConfig(r=4, lora_alpha=8, target_modules=target_modules,
                                      init_lora_weights=False))
    rng = random.Random(seed)
    feats = []
    for _ in range(3):
        ids, labels = au_sft.encode_chat(tok, _sample(rng)["messages"], 256)
        feats.append({"input_ids": ids, "labels": labels})
    assert len({len(f["input_ids"]) for f in feats}) > 1  # real padding in the batch
    return model, au_sft.PadCollator(tok.pad_token_id)(feats)


def test_answer_only_loss_equals_full_logits_loss(work, tok):
    model, b = _lora_model_and_batch(work, tok, 1, ["q_proj", "v_proj"])

    loss_sum, count, out = au_sft.answer_loss_sum(model, b["input_ids"], b["attention_mask"], b["labels"])
    assert out.logits.dim() == 2 and out.logits.shape[0] == count  # only answer rows computed
    fast = loss_sum / count
    fast.backward()
    g_fast = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    full = model(**b).loss  # the model's own loss over all logits
    full.backward()
    g_full = [p.grad for p in model.parameters() if p.requires_grad]
    assert torch.allclose(fast, full, rtol=1e-5, atol=1e-6)
    assert all(torch.allclose(a, c, rtol=1e-4, atol=1e-7) for a, c in zip(g_fast, g_full))


def test_shared_prompt_head_gives_the_same_loss_and_gradients(work, tok):
    model, b = _lora_model_and_batch(work, tok, 2, ["q_proj", "v_proj", "down_proj"])
    keep = torch.nn.functional.pad(b["labels"][:, 1:].ne(au_sft.IGNORE), (0, 1), value=False)
    shared = au_sft.shared_prefix_length(b["input_ids"], b["attention_mask"], keep)
    head = tok(base_llm.render_prompt(tok, prompts.chat_messages("x")), add_special_tokens=False)
    # the system prompt and instruction are shared; the AU text and the answer are not
    assert generation.MIN_SHARED_HEAD <= shared < len(head["input_ids"])
    assert b["input_ids"][:, shared].unique().numel() > 1

    results = []
    for share in (False, True):
        model.zero_grad()
        loss_sum, count, _ = au_sft.answer_loss_sum(model, **b, share_prefix=share)
        (loss_sum / count).backward()
        results.append((loss_sum.detach(), count, [p.grad.clone() for p in model.parameters()
                                                    if p.requires_grad]))
    (plain, n1, g1), (fast, n2, g2) = results
    assert n1 == n2 and torch.allclose(plain, fast, rtol=1e-5)
    assert all(torch.allclose(a, c, rtol=1e-4, atol=1e-6) for a, c in zip(g1, g2))
    # rows that differ from the first token share nothing: the plain forward runs
    other = {k: v.clone() for k, v in b.items()}
    other["input_ids"][0, 0] = tok.pad_token_id
    keep = torch.nn.functional.pad(other["labels"][:, 1:].ne(au_sft.IGNORE), (0, 1), value=False)
    assert au_sft.shared_prefix_length(other["input_ids"], other["attention_mask"], keep) == 0


def test_compiled_blocks_give_the_same_loss_and_gradients(work, tok):
    """training.compile_blocks: each layer's MLP and norms under torch.compile (the CPU recipe)
    compute what the eager modules do, forward and backward, with the shared prompt head, and
    leave the parameter names (so the saved adapter) unchanged."""
    from torch._dynamo.utils import counters

    from my_affectgpt.training.compiled_blocks import compile_layer_blocks

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    results = []
    for compiled in (False, True):
        model, b = _lora_model_and_batch(work, tok, 4, targets)
        names = [name for name, _ in model.named_parameters()]
        if compiled:
            assert compile_layer_blocks(model) == 3 * model.config.num_hidden_layers
            assert [name for name, _ in model.named_parameters()] == names
        frames = counters["frames"]["ok"]
        loss_sum, count, _ = au_sft.answer_loss_sum(model, **b, share_prefix=True)
        (loss_sum / count).backward()
        assert (counters["frames"]["ok"] > frames) == compiled  # compiled, not an eager fallback
        results.append((loss_sum.detach(), [p.grad for p in model.parameters() if p.requires_grad]))
    (eager, g1), (fast, g2) = results
    assert torch.allclose(eager, fast, rtol=1e-5)
    assert all(torch.allclose(a, c, rtol=1e-4, atol=1e-6) for a, c in zip(g1, g2))


def test_top_layers_adapt_only_the_upper_layers(work, tok):
    from peft import get_peft_model

    base = base_llm.load_base_model(work / "tiny")
    n = base.config.num_hidden_layers
    lora = au_sft.load_config(None, ["lora.top_layers=1", "lora.r=4"]).lora
    model = get_peft_model(base, au_sft.peft_lora_config(lora, n))
    layer_of = {name: int(re.search(r"\.layers\.(\d+)\.", name).group(1))
                for name, _ in model.named_parameters() if "lora_" in name}
    assert layer_of and set(layer_of.values()) == {n - 1}
    assert len(layer_of) == 2 * len(lora.target_modules)  # lora_A + lora_B per projection
    enc = au_sft.encode_chat(tok, _sample(random.Random(3))["messages"], 256)
    b = au_sft.PadCollator(tok.pad_token_id)([{"input_ids": enc[0], "labels": enc[1]}])
    loss_sum, count, _ = au_sft.answer_loss_sum(model, **b)
    (loss_sum / count).backward()
    assert all(p.grad is not None for name, p in model.named_parameters() if p.requires_grad)
    with pytest.raises(InputError, match="lora.top_layers"):
        au_sft.peft_lora_config(au_sft.load_config(None, [f"lora.top_layers={n + 1}"]).lora, n)


# ---- training through the Trainer ------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(work):
    out = work / "run"
    cfg = au_sft.load_config(None, _cfg(work, out, **{"training.report_to": "[tensorboard]"}))
    best = au_sft.run(cfg)
    return out, best


def _state(folder) -> dict:
    return json.loads((Path(folder) / "trainer_state.json").read_text())


def test_repeated_batch_loss_goes_down(trained):
    out, _ = trained
    losses = [h["loss"] for h in _state(out / "checkpoint-12")["log_history"] if "loss" in h]
    assert len(losses) == 12
    assert losses[-1] < 0.7 * losses[0]
    assert list(out.glob("runs/*/events.out.tfevents.*"))  # tensorboard logs


def test_checkpoint_best_is_lowest_eval_loss_and_loads(work, trained):
    from peft import PeftModel
    from safetensors.torch import load_file

    out, best = trained
    evals = [h for h in _state(out / "checkpoint-12")["log_history"] if "eval_loss" in h]
    assert [h["step"] for h in evals] == [3, 6, 9, 12]
    low = min(evals, key=lambda h: h["eval_loss"])
    record = json.loads((best / "au_agent_best.json").read_text())
    assert record["global_step"] == low["step"] and record["source"] == f"checkpoint-{low['step']}"
    w_best = load_file(best / "adapter_model.safetensors")
    w_src = load_file(out / f"checkpoint-{low['step']}" / "adapter_model.safetensors")
    assert w_best.keys() == w_src.keys()
    assert all(torch.equal(w_best[k], w_src[k]) for k in w_best)
    assert not (best / "optimizer.pt").exists()
    assert json.loads((best / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        str((work / "tiny").resolve())
    model = PeftModel.from_pretrained(base_llm.load_base_model(work / "tiny"), str(best))
    loaded = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert len(loaded) == len(w_best)


def test_merge_cli_matches_unmerged_adapter(work, trained, tmp_path):
    _, best = trained
    merged = tmp_path / "merged"
    r = subprocess.run([sys.executable, "-m", "my_affectgpt.training.merge", "--adapter", str(best),
                        "--out", str(merged)], cwd=REPO, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer.json").is_file()

    m_merged, tok = base_llm.load_for_generation(base=merged)
    m_lora, _ = base_llm.load_for_generation(adapter=best, merge=False)  # base from adapter_config
    m_base, _ = base_llm.load_for_generation(base=work / "tiny")
    text = base_llm.render_prompt(tok, _sample(random.Random(9))["messages"])
    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        a, b, c = (m(**ids).logits for m in (m_merged, m_lora, m_base))
    assert (b - c).abs().max() > 1e-2  # the adapter matters, so agreement means something
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_killed_run_resumes_from_its_checkpoint(work, tmp_path):
    out = tmp_path / "resume"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("# resume test\n")
    steps = 40
    # the real launcher: train_au_agent.sh -> accelerate launch -> au_sft (1 CPU process)
    args = ["bash", str(REPO / "train_au_agent.sh"), "--config", str(cfg)] + _cfg(
        work, out, **{"data.train": str(work / "long.jsonl"), "training.max_steps": steps,
                      "training.eval_steps": 4, "training.save_steps": 4,
                      "training.save_total_limit": "null"})
    first = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while au_sft.last_complete_checkpoint(out) is None:
        assert first.poll() is None, "training ended before its first checkpoint"
        assert time.time() < deadline
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    saved = int(au_sft.last_complete_checkpoint(out).name.split("-")[1])
    assert 4 <= saved < steps, "killed too late to test resuming"

    second = subprocess.run(args, cwd=REPO, env=ENV, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"resuming from {out / f'checkpoint-{saved}'} (global step {saved})" in second.stdout
    assert f"training from global step {saved} to {steps}" in second.stdout
    # only the remaining steps ran: one logged training loss per step
    assert len(re.findall(r"\{'loss'", second.stdout + second.stderr)) == steps - saved
    assert _state(out / f"checkpoint-{steps}")["global_step"] == steps
    assert (out / "checkpoint-best" / "adapter_model.safetensors").is_file()


def test_auto_resume_refuses_checkpoints_of_another_run(work, trained, tmp_path):
    out, _ = trained
    last = au_sft.last_complete_checkpoint(out)

    def resume(**over):
        return au_sft.resume_point(au_sft.load_config(None, _cfg(work, out, **over)))

    assert resume(**{"training.max_steps": 20}) == last  # a longer schedule continues the run
    with pytest.raises(InputError, match="other data.train sha256: delete them"):
        resume(**{"data.train": str(work / "long.jsonl")})
    with pytest.raises(InputError, match="other lora"):
        resume(**{"lora.r": 4})
    assert resume(**{"lora.r": 4, "training.resume": str(last)}) == last  # the user's explicit choice
    old = tmp_path / "old"  # checkpoints without a run record
    shutil.copytree(last, old / last.name)
    with pytest.raises(InputError, match="no readable au_agent_run.json"):
        au_sft.resume_point(au_sft.load_config(None, _cfg(work, old)))


# ---- config ----------------------------------------------------------------------------------

def test_unknown_config_key_exits_2_naming_it(work, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"model: {work / 'tiny'}\ndata:\n  train: {work / 'train.jsonl'}\n"
                   f"  val: {work / 'val.jsonl'}\n")
    r = subprocess.run(["bash", str(REPO / "train_au_agent.sh"), "--config", str(cfg),
                        "training.learning_rat=1e-4"], cwd=tmp_path, env=ENV,
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: override: unknown config key 'training.learning_rat'"]
    cfg.write_text(cfg.read_text() + "lora:\n  rank: 8\n")
    with pytest.raises(InputError, match=r"unknown config key 'lora\.rank'"):
        au_sft.load_config(cfg)
    cfg.write_text("lora: [\n")  # the same YAML reader as every other config: one line, no traceback
    with pytest.raises(InputError, match="cfg.yaml: cannot read config"):
        au_sft.load_config(cfg)


def test_config_value_checks(work, tmp_path):
    def check(*over):
        au_sft.check_config(au_sft.load_config(None, _cfg(work, tmp_path / "o", **dict(over))))

    check()
    with pytest.raises(InputError, match="multiple"):
        check(("training.save_steps", 5))
    with pytest.raises(InputError, match="not found"):
        check(("model", tmp_path / "missing"))
    with pytest.raises(InputError, match="DeepSpeed is not installed"):
        check(("training.deepspeed", REPO / "train_configs" / "deepspeed_zero3.json"))
    with pytest.raises(InputError, match="lora.r"):
        au_sft.load_config(None, ["lora.r=abc"])
    with pytest.raises(InputError, match="lora.top_layers"):
        check(("lora.top_layers", 0))


def test_chat_template_required(tok):
    tok2 = type(tok).from_pretrained(tok.name_or_path)
    tok2.chat_template = None
    with pytest.raises(InputError, match="no chat template"):
        base_llm.check_chat_template(tok2)
    base_llm.check_chat_template(tok)


@pytest.mark.skipif(not os.environ.get("AU_AGENT_SLOW_TESTS"),
                    reason="converts the embedded SmolLM2 (~30 s); set AU_AGENT_SLOW_TESTS=1")
def test_embedded_smollm2_converts_once_and_has_a_working_chat_template(tmp_path):
    from transformers import AutoTokenizer

    folder = base_llm.resolve_base_model("smollm2-135m-instruct", tmp_path)
    assert (folder / "model.safetensors").is_file()
    assert base_llm.resolve_base_model("smollm2-135m-instruct", tmp_path) == folder  # reused
    tok = base_llm.load_tokenizer(folder)
    base_llm.check_chat_template(tok)
    gguf = base_llm.embedded_gguf("smollm2-135m-instruct")
    ref = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    msgs = _sample(random.Random(3))["messages"]
    text = base_llm.render_prompt(tok, msgs)
    assert text.endswith("<|im_start|>assistant\n") and msgs[1]["content"] in text
    assert tok(text)["input_ids"] == ref(text)["input_ids"]
    ids, labels = au_sft.encode_chat(tok, msgs, 512)
    assert labels[-1] == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")


def test_length_grouped_batches_pad_less(work, tmp_path):
    def padding(group):
        cfg = au_sft.load_config(None, _cfg(work, tmp_path / f"g{group}", **{
            "data.train": str(work / "long.jsonl"), "training.group_by_length": group}))
        trainer, _ = au_sft.build(cfg)
        return sum(int((b["attention_mask"] == 0).sum()) for b in trainer.get_train_dataloader())

    grouped, shuffled = padding("true"), padding("false")
    assert grouped < shuffled / 2, (grouped, shuffled)


def test_gradient_accumulation_matches_one_big_batch(work, tmp_path):
    """Loss normalised over all answer tokens of the accumulated batch, as the Trainer expects."""
    from safetensors.torch import load_file

    def one_step(batch, accum):
        out = tmp_path / f"b{batch}x{accum}"
        au_sft.run(au_sft.load_config(None, _cfg(work, out, **{
            "data.train": str(work / "long.jsonl"), "training.batch_size": batch,
            "training.grad_accum": accum, "training.max_steps": 1, "training.eval_steps": 1,
            "training.save_steps": 1, "training.max_grad_norm": 1e9})))
        loss = _state(out / "checkpoint-1")["log_history"][0]["loss"]
        return loss, load_file(out / "checkpoint-1" / "adapter_model.safetensors")

    loss_a, w_a = one_step(4, 1)
    loss_b, w_b = one_step(2, 2)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    # Adam's first step moves each weight by about +-lr (3e-2); float noise in tiny gradients
    # moves some by ~1e-6, a wrongly weighted micro-batch would move them by ~lr
    assert all(torch.allclose(w_a[k], w_b[k], atol=1e-5) for k in w_a)


def test_compile_blocks_without_a_cxx_compiler_trains_eagerly(work, tmp_path):
    """Inductor's CPU code needs a C++ compiler: without one the run says so and trains eagerly."""
    out = tmp_path / "eager"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("# compile test\n")
    args = [sys.executable, "-m", "my_affectgpt.training.au_sft", "--config", str(cfg)] + _cfg(
        work, out, **{"training.max_steps": 2, "training.eval_steps": 2, "training.save_steps": 2,
                      "training.compile_blocks": "true"})
    env = {**ENV, "CXX": str(tmp_path / "no-such-g++")}
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch.compile: no C++ compiler (CXX or g++) found, training runs eagerly" in proc.stdout
    assert "Traceback" not in proc.stderr and "InductorError" not in proc.stderr
    assert (out / "checkpoint-best" / "adapter_model.safetensors").is_file()
