"""The four AU routes (model.au_mode features, text, values, hybrid) end to end on the tiny CPU
config: train.py's loop (in process), a resume, the dataset inference run, `--video` with
`--openface-csv`; values runs from a config without a single AU Agent key and is instrumented to
fail if an AU Agent or a text encoder is ever built; a checkpoint refuses another mode."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import REPO, run_cli
from my_affectgpt.common.errors import InputError

MODES = ("features", "text", "values", "hybrid")
ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
VIDEO = "test_00001"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from my_affectgpt.datasets.synthetic import write_dataset

    root = tmp_path_factory.mktemp("au_modes")
    write_dataset(root / "ds", 6, 3, label_type="openset", progress=False)
    return root


def write_config(root, mode: str):
    """The tiny CPU config for one mode (relative paths beside it): 6 videos, 1 step per epoch.
    values: every AU Agent key removed from the dataset entry (the backend falls back to hf with
    no base model, which the describing modes would refuse)."""
    cfg = OmegaConf.load(REPO / "train_configs" / "affectgpt_tiny_cpu.yaml")
    cfg.model.au_mode = mode
    entry = cfg.datasets.mercaptionplus
    entry.data_root = "ds/train"
    if mode == "values":
        for key in [k for k in entry if str(k).startswith(("au_", "use_au_agent"))]:
            del entry[key]
    cfg.run.update(output_dir="out", job_name=mode, max_epoch=2, batch_size_train=8, warmup_steps=1)
    cfg.inference = {"test_datasets": [{"name": "synth", "data_root": "ds/test",
                                        "label_csv": "ds/test/labels.csv"}],
                     "batch_size": 3, "max_new_tokens": 4, "results_dir": "results", "test_epoch": 1}
    path = root / f"tiny_{mode}.yaml"
    OmegaConf.save(cfg, path)
    return path


def _refuse(*args, **kwargs):
    raise AssertionError("au_mode values built an AU Agent or a text encoder")


@pytest.fixture(scope="module")
def trained(synth):
    """mode -> a job trained for one epoch, resumed for the second, and run on the test split."""
    from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config as load_config
    from my_affectgpt.inference.runner import run_inference
    from my_affectgpt.models import text_encoders
    from my_affectgpt.models.au_agent import runtime as au_agent
    from my_affectgpt.training.affectgpt_loop import train

    done = {}

    def get(mode):
        if mode not in done:
            path = write_config(synth, mode)
            with pytest.MonkeyPatch.context() as mp:
                if mode == "values":
                    mp.setattr(au_agent.AUAgent, "__init__", _refuse)
                    mp.setattr(au_agent, "load_text_encoder", _refuse)
                    mp.setattr(text_encoders, "load_text_encoder", _refuse)
                first = train(load_config(path, ["run.max_steps=1"]), path)
                second = train(load_config(path), path)
                results = run_inference(load_config(path), path, progress=False)
            done[mode] = SimpleNamespace(path=path, first=first, second=second, results=results,
                                         job=synth / "out" / path.stem / mode)
        return done[mode]
    return get


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_trains_resumes_and_infers(trained, mode):
    from my_affectgpt.models.affectgpt_checkpoints import checkpoint_metadata, load_trainable

    run = trained(mode)
    assert run.first.global_step == 1 and run.first.resumed_from is None
    assert run.second.resumed_from == run.job / "checkpoint_000000.safetensors"
    assert run.second.global_step == 2 and run.second.checkpoint.name == "checkpoint_000001.safetensors"
    ckpts = [load_trainable(run.job / f"checkpoint_00000{e}.safetensors") for e in (0, 1)]
    for e in (0, 1):
        meta = checkpoint_metadata(run.job / f"checkpoint_00000{e}.safetensors")
        assert meta["au_mode"] == mode
    assert ("au" in json.loads(meta["feature_dims"])) == (mode != "values")   # no text encoder D
    proj = sorted(n for n in ckpts[1] if n.startswith("au_proj."))
    assert bool(proj) == (mode in ("values", "hybrid"))
    assert any(n.startswith("fusion.au.") for n in ckpts[1]) == (mode != "text")
    # the resumed step moved the projection: its weights are trained and saved
    assert all(not np.array_equal(ckpts[0][n].numpy(), ckpts[1][n].numpy()) for n in proj)
    [result] = run.results
    assert result.status == "done" and result.predictions == 3 and not result.failed


def test_values_video_matches_the_dataset_run_without_au_agent_settings(trained, synth, tmp_path):
    """--video with --openface-csv through inference_hybird.py: the dataset run's answer, the
    AU values of the sampled frames printed (no descriptions: there is no AU Agent)."""
    from my_affectgpt.evaluation.emotion_eval import load_predictions

    run = trained("values")
    test = synth / "ds" / "test"
    out_json = tmp_path / "answer.json"
    proc = run_cli("inference_hybird.py", "--cfg-path", run.path, "--video", test / "video" / f"{VIDEO}.mp4",
                   "--openface-csv", test / "openface_output" / VIDEO / f"{VIDEO}.csv",
                   "--subtitle", _subtitle(test, VIDEO), "--json", out_json, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out_json.read_text())
    assert result["answer"] == load_predictions(run.results[0].npz)[VIDEO]
    assert len(result["au_frames"]) == 8 and all("description" not in a for a in result["au_frames"])
    assert "AU values (8 frames" in proc.stdout and result["au_frames"][0]["au"] in proc.stdout


def test_hybrid_video_matches_the_dataset_run(trained, synth):
    from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config as load_config
    from my_affectgpt.evaluation.emotion_eval import load_predictions
    from my_affectgpt.inference.single_video import answer_video

    run = trained("hybrid")
    test = synth / "ds" / "test"
    result = answer_video(load_config(run.path), run.path, test / "video" / f"{VIDEO}.mp4",
                          openface_csv=test / "openface_output" / VIDEO / f"{VIDEO}.csv",
                          subtitle=_subtitle(test, VIDEO))
    assert result.answer == load_predictions(run.results[0].npz)[VIDEO]
    stored = json.loads((test / "au_features" / f"{VIDEO}.json").read_text())
    assert [a["description"] for a in result.au_frames] == stored["descriptions"]


def test_a_checkpoint_refuses_another_mode(trained, synth):
    from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config as load_config
    from my_affectgpt.inference.runner import run_inference
    from my_affectgpt.inference.single_video import answer_video
    from my_affectgpt.training.affectgpt_loop import train

    run = trained("values")
    other = load_config(write_config(synth, "hybrid"), [f"inference.ckpt_dir={run.job}",
                                                        "run.job_name=values"])
    message = "trained with model.au_mode=values, but this config has model.au_mode=hybrid"
    with pytest.raises(InputError, match=message):
        run_inference(other, run.path, progress=False)
    with pytest.raises(InputError, match=message):           # before any AU Agent runs
        answer_video(other, run.path, synth / "ds" / "test" / "video" / f"{VIDEO}.mp4",
                     openface_csv=synth / "ds" / "test" / "openface_output" / VIDEO / f"{VIDEO}.csv")
    with pytest.raises(InputError, match=message):           # resuming the values job as hybrid
        train(other, run.path)


def _subtitle(root, name: str) -> str:
    import csv

    with (root / "subtitle_chieng.csv").open(newline="", encoding="utf-8") as f:
        return next(r["english"] for r in csv.DictReader(f) if r["name"] == name)
