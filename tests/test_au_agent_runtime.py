"""AU Agent runtime: batching, prompt dedup, the persistent cache, per-video features, the
extract CLI (resume after a kill, staleness, sharding), config keys and the plot.

Real parts throughout: the tiny random Qwen2 of tests/tiny_llm.py, a tiny open_clip text tower,
simulated and real OpenFace CSVs, subprocesses for the kill and cross-process cache tests.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, SHARED_SAMPLES
from my_affectgpt.au import prompts as au_prompts
from my_affectgpt.au.lexicon import mentioned_aus
from my_affectgpt.au.simulate import write_dataset
from my_affectgpt.common.errors import InputError
from my_affectgpt.au.facs import parse_au_state_text as parse_au_text
from my_affectgpt.models.au_agent import NEUTRAL_DESCRIPTION, AUAgent, AUAgentConfig, main
from my_affectgpt.models.au_agent import load_agent_config as load_config
from my_affectgpt.models import generation
from my_affectgpt.models.feature_store import FeatureStore

TINY_CLIP = {"embed_dim": 32,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "tiny-runtime-clip.json"
    path.write_text(json.dumps(TINY_CLIP))
    return str(path)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """40 short simulated videos (flat layout) and their CSV paths."""
    out = tmp_path_factory.mktemp("sim") / "openface"
    return out, write_dataset(out, 40, seed=7, frames=(30, 45), workers=1)


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    """A real LoRA adapter of the tiny model (non-zero B, so merging changes the weights)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("adapter") / "checkpoint-best"
    peft_model.save_pretrained(folder)
    return folder


def hf_config(model, clip, tmp_path, **kw):
    base = dict(base_model=str(model), cache_path=str(tmp_path / "desc.sqlite"), max_new_tokens=12,
                text_encoder=f"open_clip:{clip}", text_encoder_pretrained=None, device="cpu")
    base.update(kw)
    return AUAgentConfig(**base)


def sim_frames(sim, n_videos=6):
    planner = AUAgent(AUAgentConfig(backend="template"))
    return [s for c in sim[1][:n_videos] for s in planner.plan_video(c)["slots"]]


def write_variant(src: Path, dst: Path, keep_usable: int | None) -> Path:
    """Copy an OpenFace CSV, marking all rows failed except the first `keep_usable` ones."""
    lines = src.read_text().splitlines()
    cols = [c.strip() for c in lines[0].split(",")]
    si, ci = cols.index("success"), cols.index("confidence")
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        vals = line.split(",")
        if keep_usable is None or i >= keep_usable:
            vals[si], vals[ci] = " 0", " 0.0"
        out.append(",".join(vals))
    dst.write_text("\n".join(out) + "\n")
    return dst


# ---- descriptions ---------------------------------------------------------------------------

def test_batched_greedy_equals_unbatched(tiny_model, tiny_clip, sim, tmp_path):
    frames = [f for f in sim_frames(sim) if f.prompt != "neutral"]
    prompts = list(dict.fromkeys(f.prompt for f in frames))[:20]
    assert len({p.count(";") for p in prompts}) >= 2  # different lengths: left padding is exercised
    batched = AUAgent(hf_config(tiny_model, tiny_clip, tmp_path, batch_size=8, cache_path=None))
    single = AUAgent(hf_config(tiny_model, tiny_clip, tmp_path, batch_size=1, cache_path=None))
    a, b = batched.describe(prompts), single.describe(prompts)
    assert a == b
    model, tok = batched.backend.load()  # batches reuse the shared prompt head; single ones cannot
    head, _ = generation._shared_head(
        model, [tok(r, add_special_tokens=False)["input_ids"] for r in batched.backend.render(prompts)], "cpu")
    assert head >= generation.MIN_SHARED_HEAD
    assert all(isinstance(t, str) and t for t in a)
    assert batched.identity() == single.identity()  # batch size does not change outputs or keys


def test_greedy_loop_equals_transformers_generate_as_rows_stop(tiny_model, monkeypatch):
    from functools import partial

    from my_affectgpt.models.base_llm import load_for_generation, render_prompt

    model, tok = load_for_generation(str(tiny_model))
    texts = ["AU01 inner brow raiser 1.2", "AU04 brow lowerer 2.5; AU07 lid tightener 1.1",
             "AU06 cheek raiser 2.1; AU12 lip corner puller 3.2; AU25 lips part 1.0",
             "AU09 nose wrinkler 3.0", "AU15 lip corner depressor 1.6; AU17 chin raiser 1.3"]
    rendered = [render_prompt(tok, au_prompts.chat_messages(t)) for t in texts]
    reference = partial(generation._transformers_generate, do_sample=False)
    run = lambda: generation.generate_texts(model, tok, rendered, batch_size=8, max_new_tokens=10)
    monkeypatch.setattr(generation, "_greedy", reference)
    free = [tok(o, add_special_tokens=False)["input_ids"] for o in run()]
    # A stop token that some rows write early and others never: rows stop at different steps.
    stop = next(t for t in free[0][1:] if any(t not in f for f in free))
    monkeypatch.setattr(generation, "_stop_ids", lambda tokenizer: [stop])
    expected = run()
    monkeypatch.undo()
    monkeypatch.setattr(generation, "_stop_ids", lambda tokenizer: [stop])
    batch_sizes = []
    model.register_forward_pre_hook(lambda m, args, kw: batch_sizes.append(kw["input_ids"].shape[0]),
                                    with_kwargs=True)
    assert run() == expected
    assert len({len(e) for e in expected}) >= 2
    assert min(batch_sizes) < max(batch_sizes)  # stopped rows left the batch


def test_equal_prompts_once_neutral_shortcut_and_order(tiny_model, tiny_clip, tmp_path):
    agent = AUAgent(hf_config(tiny_model, tiny_clip, tmp_path))
    p1 = "AU06 cheek raiser 2.1; AU12 lip corner puller 3.2"
    p2 = "AU04 brow lowerer 1.5"
    out = agent.describe([p1, "neutral", p2, p1, "neutral", p1])
    assert out[1] == out[4] == NEUTRAL_DESCRIPTION
    assert out[0] == out[3] == out[5] and out[0] != NEUTRAL_DESCRIPTION
    s = agent.stats
    assert (s.frames, s.unique_prompts, s.neutral_frames, s.generated) == (6, 3, 2, 2)
    agent.describe([p2])  # already known in this process: no model call
    assert agent.stats.generated == 2 and agent.stats.memory_hits == 1
    off = AUAgent(hf_config(tiny_model, tiny_clip, tmp_path, neutral_shortcut=False, cache_path=None))
    assert off.describe(["neutral"]) != [NEUTRAL_DESCRIPTION] and off.stats.generated == 1
    assert off.identity()["neutral_shortcut"] is None and agent.identity()["neutral_shortcut"]


def test_persistent_cache_survives_processes_without_loading_the_model(tiny_model, tiny_clip, tmp_path):
    cfg = hf_config(tiny_model, tiny_clip, tmp_path)
    texts = ["AU01 inner brow raiser 1.2", "AU25 lips part 2.0; AU26 jaw drop 1.1"]
    with AUAgent(cfg) as agent:
        first = agent.describe(texts)
    code = (
        "import json, sys\n"
        "from my_affectgpt.models.au_agent import AUAgent, AUAgentConfig\n"
        f"cfg = AUAgentConfig(base_model={str(tiny_model)!r}, cache_path={cfg.cache_path!r}, "
        "max_new_tokens=12, device='cpu')\n"
        "a = AUAgent(cfg)\n"
        f"out = a.describe({texts!r})\n"
        "print(json.dumps({'out': out, 'stats': a.stats.as_dict(), 'loaded': a.backend.model is not None}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **ONE_THREAD}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["out"] == first
    assert res["stats"]["cache_hits"] == 2 and res["stats"]["generated"] == 0
    assert res["loaded"] is False  # a warm rerun never loads the LLM


def test_identity_covers_what_changes_outputs(tiny_model, tiny_clip, adapter, tmp_path, monkeypatch):
    base = AUAgent(hf_config(tiny_model, tiny_clip, tmp_path))
    ident, key = base.identity(), base.cache_key("AU04 brow lowerer 1.5")
    for change in (dict(max_new_tokens=13), dict(lora_weights=str(adapter)), dict(dtype="bf16"),
                   dict(do_sample=True)):
        other = AUAgent(hf_config(tiny_model, tiny_clip, tmp_path, **change))
        assert other.identity() != ident and other.cache_key("AU04 brow lowerer 1.5") != key, change
    for same in (dict(batch_size=3), dict(cache_path=None), dict(num_frames=4)):
        assert AUAgent(hf_config(tiny_model, tiny_clip, tmp_path, **same)).identity() == ident, same
    with_adapter = AUAgent(hf_config(tiny_model, tiny_clip, tmp_path, lora_weights=str(adapter)))
    assert len(with_adapter.identity()["adapter_sha256"]) == 64
    assert AUAgent(hf_config(tiny_model, tiny_clip, tmp_path, lora_weights=str(adapter),
                             use_lora=False)).identity() == ident
    monkeypatch.setattr(au_prompts, "PROMPT_VERSION", "au-test-v2")
    assert AUAgent(hf_config(tiny_model, tiny_clip, tmp_path)).identity() != ident


def test_adapter_is_merged_for_inference(tiny_model, tiny_clip, adapter, tmp_path):
    agent = AUAgent(hf_config(tiny_model, tiny_clip, tmp_path, lora_weights=str(adapter), cache_path=None))
    out = agent.describe(["AU12 lip corner puller 2.0"])
    model = agent.backend.model
    assert not any("lora" in n for n, _ in model.named_parameters())  # merged, no peft layers left
    plain = AUAgent(hf_config(tiny_model, tiny_clip, tmp_path, cache_path=None))
    plain.describe(["AU12 lip corner puller 2.0"])
    w = dict(model.named_parameters())["model.layers.0.self_attn.q_proj.weight"]
    w0 = dict(plain.backend.model.named_parameters())["model.layers.0.self_attn.q_proj.weight"]
    assert not np.allclose(w.detach().numpy(), w0.detach().numpy())
    assert out and isinstance(out[0], str)


def test_template_backend_and_au_text_parsing():
    agent = AUAgent(AUAgentConfig(backend="template"))
    text = "AU06 cheek raiser 2.1; AU12 lip corner puller 3.2; AU28 lip suck present"
    assert parse_au_text(text) == {"AU06": 2.1, "AU12": 3.2, "AU28": 1.0}
    a = agent.describe([text, "neutral", text])
    assert a[0] == a[2] and mentioned_aus(a[0]) == {"AU06", "AU12", "AU28"} and a[1] == NEUTRAL_DESCRIPTION
    assert agent.describe([text]) == [a[0]]  # a fixed key: equal prompts, equal descriptions
    with pytest.raises(InputError):
        parse_au_text("smiling a lot")


# ---- per video ------------------------------------------------------------------------------

def real_csvs():
    return sorted(SHARED_SAMPLES.glob("*.csv")) if SHARED_SAMPLES.is_dir() else []


@pytest.mark.parametrize("backend", ["template", "hf"])
def test_every_real_csv_gives_8_frames_of_float16(backend, tiny_model, tiny_clip, tmp_path):
    csvs = real_csvs()
    if not csvs:
        pytest.skip("../shared/openface_samples is not present")
    cfg = hf_config(tiny_model, tiny_clip, tmp_path, backend=backend)
    with AUAgent(cfg) as agent:
        for csv in csvs:
            feats, meta = agent.video_features(csv)
            assert feats.shape == (8, 32) and feats.dtype == np.float16, csv.name
            assert np.isfinite(feats.astype(np.float32)).all()
            np.testing.assert_allclose(np.linalg.norm(feats.astype(np.float32), axis=1), 1.0, atol=2e-3)
            assert meta["status"] == "ok" and meta["valid"] and meta["mask"] == [1] * 8
            assert len(meta["descriptions"]) == len(meta["frames"]) == len(meta["prompts"]) == 8
            assert meta["frames"] == sorted(meta["frames"]) and len(set(meta["frames"])) == 8
            assert meta["input"]["sha256"] and meta["n_usable"] <= meta["n_rows"]
        feats4, meta4 = agent.video_features(csvs[0], num_frames=4, sampling="peak")
        assert feats4.shape == (4, 32) and meta4["sampling"] == "peak"


def test_few_and_no_usable_frames(tiny_clip, sim, tmp_path):
    agent = AUAgent(AUAgentConfig(backend="template", text_encoder=f"open_clip:{tiny_clip}",
                                  text_encoder_pretrained=None))
    few = write_variant(sim[1][0], tmp_path / "few.csv", keep_usable=3)
    feats, meta = agent.video_features(few)
    assert meta["status"] == "few_frames" and meta["valid"] and meta["n_usable"] == 3
    first3 = meta["frames"][0], meta["frames"][3], meta["frames"][6]
    assert meta["frames"] == [first3[0]] * 3 + [first3[1]] * 3 + [first3[2]] * 2  # floor(k*3/8)
    np.testing.assert_array_equal(feats[0], feats[2])
    assert feats.shape == (8, 32) and meta["n_distinct_frames"] == 3

    for name, path in (("none", write_variant(sim[1][0], tmp_path / "none.csv", keep_usable=None)),
                       ("header", tmp_path / "header.csv")):
        if name == "header":
            path.write_text(sim[1][0].read_text().splitlines()[0] + "\n")
        feats, meta = agent.video_features(path)
        assert feats.shape == (8, 32) and not feats.any(), name
        assert meta["status"] == "empty" and meta["valid"] is False and meta["mask"] == [0] * 8
        assert meta["descriptions"] == [] and meta["reason"]

    bad = tmp_path / "labels_like.csv"
    bad.write_text("video,emotion\nv1,happy\n")
    with pytest.raises(InputError):
        agent.video_features(bad)


# ---- extract: resume, staleness, sharding ---------------------------------------------------

def extract_args(sim, out, tiny_model, tiny_clip, tmp_path, *extra):
    return ["extract", "--openface-dir", str(sim[0]), "--out-dir", str(out), "--base-model", str(tiny_model),
            "--text-encoder", f"open_clip:{tiny_clip}", "--text-encoder-pretrained", "none",
            "--cache", str(tmp_path / "desc.sqlite"), "--max-new-tokens", "24", "--device", "cpu",
            "--no-progress", *extra]


def test_killed_extract_resumes_without_recomputing(tiny_model, tiny_clip, sim, tmp_path, capsys):
    out = tmp_path / "features"
    args = extract_args(sim, out, tiny_model, tiny_clip, tmp_path, "--chunk-videos", "2")
    proc = subprocess.Popen([sys.executable, "-m", "my_affectgpt.models.au_agent", *args], cwd=REPO,
                            env={**os.environ, **ONE_THREAD}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "extract finished before it could be killed"

    probe = FeatureStore(out)  # no identity: integrity only
    done = {p.stem for p in out.glob("*.json")}
    assert 0 < len(done) < 40
    for v in done:  # whatever the kill left is either complete and valid or ignored
        assert probe.status(v) in ("done", "corrupt")
    finished = {v for v in done if probe.status(v) == "done"}
    stamps = {v: (out / f"{v}.npy").stat().st_mtime_ns for v in finished}

    assert main(args) == 0
    msg = capsys.readouterr().out
    assert f"{len(finished)} up to date" in msg and f"{40 - len(finished)} written" in msg
    store = FeatureStore(out, AUAgent(load_config(None, **{
        "base_model": str(tiny_model), "max_new_tokens": 24, "device": "cpu",
        "text_encoder": f"open_clip:{tiny_clip}", "text_encoder_pretrained": "none"})).feature_identity())
    assert all(store.status(p.stem, p) == "done" for p in sim[1])
    assert {v: (out / f"{v}.npy").stat().st_mtime_ns for v in finished} == stamps  # not recomputed
    assert not list(out.glob(".*.tmp"))
    assert main(args) == 0 and "40 up to date" in capsys.readouterr().out


def test_adapter_or_prompt_version_change_makes_features_stale(tiny_model, tiny_clip, adapter, sim, tmp_path,
                                                                capsys, monkeypatch):
    out = tmp_path / "features"
    args = extract_args(sim, out, tiny_model, tiny_clip, tmp_path, "--limit", "3")
    assert main(args) == 0 and "3 written" in capsys.readouterr().out
    assert main(args) == 0 and "3 up to date" in capsys.readouterr().out
    assert main([*args, "--lora-weights", str(adapter)]) == 0
    assert "3 written" in capsys.readouterr().out
    meta = json.loads((out / "sim_00000.json").read_text())
    assert meta["identity"]["describer"]["adapter_sha256"]
    monkeypatch.setattr(au_prompts, "PROMPT_VERSION", "au-test-v2")
    assert main([*args, "--lora-weights", str(adapter)]) == 0
    assert "3 written" in capsys.readouterr().out
    meta = json.loads((out / "sim_00000.json").read_text())
    assert meta["identity"]["describer"]["prompt_version"] == "au-test-v2"
    assert main([*args, "--lora-weights", str(adapter), "--num-frames", "4"]) == 0  # T is identity too
    assert "3 written" in capsys.readouterr().out
    assert np.load(out / "sim_00000.npy").shape == (4, 32)


def test_processes_take_disjoint_shares(tiny_clip, sim, tmp_path, monkeypatch, capsys):
    out = tmp_path / "features"
    seen = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        before = {p.stem for p in out.glob("*.json")}
        assert main(["extract", "--openface-dir", str(sim[0]), "--out-dir", str(out), "--backend", "template",
                     "--text-encoder", f"open_clip:{tiny_clip}", "--text-encoder-pretrained", "none",
                     "--no-progress"]) == 0
        assert f"[{rank}/2]: 20 of 40 videos: 20 written" in capsys.readouterr().out
        seen.append({p.stem for p in out.glob("*.json")} - before)
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 40
    monkeypatch.setenv("RANK", "2")
    assert main(["extract", "--openface-dir", str(sim[0]), "--out-dir", str(out), "--backend", "template"]) == 2


def test_bad_csv_fails_alone(tiny_clip, sim, tmp_path, capsys):
    src = tmp_path / "openface"
    src.mkdir()
    for p in sim[1][:2]:
        (src / p.name).write_bytes(p.read_bytes())
    (src / "broken.csv").write_text("this is not, an openface file\n1, 2\n")
    out = tmp_path / "features"
    rc = main(["extract", "--openface-dir", str(src), "--out-dir", str(out), "--backend", "template",
               "--text-encoder", f"open_clip:{tiny_clip}", "--text-encoder-pretrained", "none", "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1 and "1 failed" in cap.out and "broken.csv" in cap.err and "Traceback" not in cap.err
    assert sorted(p.name for p in out.glob("*.npy")) == ["sim_00000.npy", "sim_00001.npy"]


# ---- config and CLI -------------------------------------------------------------------------

def test_config_keys_from_an_affectgpt_yaml(tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(
        "model:\n  arch: affectgpt\n"
        "datasets:\n  mercaptionplus:\n    face_or_frame: multiface_audio_face_frame_au_text\n"
        "    use_au_agent: true\n    au_agent_base_model: models/Qwen2.5-7B-Instruct\n"
        "    au_agent_lora_weights: output/au_agent/checkpoint-best\n    au_agent_use_lora: true\n"
        "    openface_output_dir: data/openface\n    au_num_frames: 6\n    au_text_encoder: minilm\n")
    cfg = load_config(cfg_file)
    assert (cfg.base_model, cfg.lora_weights, cfg.adapter) == (
        "models/Qwen2.5-7B-Instruct", "output/au_agent/checkpoint-best", "output/au_agent/checkpoint-best")
    assert (cfg.openface_dir, cfg.num_frames, cfg.text_encoder) == ("data/openface", 6, "minilm")
    assert load_config(cfg_file, use_lora=False).adapter is None
    assert load_config(cfg_file, num_frames=3).num_frames == 3  # flags override the file

    cfg_file.write_text("datasets:\n  a:\n    au_agent_base_model: m1\n  b:\n    au_agent_base_model: m2\n")
    with pytest.raises(InputError, match="differ"):
        load_config(cfg_file)
    assert load_config(cfg_file, section="datasets.b").base_model == "m2"
    cfg_file.write_text("au_agent_base_model: m\nau_agent_lora_weigths: typo\n")
    with pytest.raises(InputError, match="unknown AU Agent key"):
        load_config(cfg_file)
    with pytest.raises(InputError, match="needs a base model"):
        AUAgentConfig(backend="hf")
    with pytest.raises(InputError, match="unknown backend"):
        AUAgentConfig(backend="onnx")
    with pytest.raises(InputError, match="use_lora"):
        AUAgentConfig(base_model="m", use_lora=True)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["extract", "--out-dir", str(tmp_path), "--backend", "template"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --openface-dir") and "\n" not in err
    assert main(["extract", "--openface-dir", str(tmp_path / "none"), "--out-dir", str(tmp_path),
                 "--backend", "template"]) == 2
    assert main(["extract", "--openface-dir", str(tmp_path), "--out-dir", str(tmp_path / "o")]) == 2
    assert "base model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    assert "accelerate launch" in capsys.readouterr().out


def test_vllm_backend_is_import_guarded():
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(InputError, match="vllm is not installed"):
        AUAgent(AUAgentConfig(backend="vllm", base_model="m"))


def test_plot(sim, tmp_path, capsys):
    png = tmp_path / "pic" / "video.png"
    lost = write_variant(sim[1][1], tmp_path / "lost.csv", keep_usable=20)
    assert main(["plot", str(lost), "--out", str(png), "--backend", "template"]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert "8 sampled frames" in capsys.readouterr().out
    empty = write_variant(sim[1][1], tmp_path / "empty.csv", keep_usable=None)
    assert main(["plot", str(empty), "--out", str(tmp_path / "e.png"), "--backend", "template"]) == 2
    assert "nothing to plot" in capsys.readouterr().err and not (tmp_path / "e.png").exists()
