"""train.py as users run it (subprocesses) on a tiny generated MER-Caption+ dataset: checkpoints,
resume (after a whole epoch and in the middle of one) continuing the step count and the loss
curve, --options overrides, and one-line errors for bad input."""
from __future__ import annotations

import json

import pytest

from conftest import run_cli

CONFIG = "train_configs/affectgpt_tiny_cpu.yaml"
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
       "TOKENIZERS_PARALLELISM": "false"}
VIDEOS, BATCH = 12, 4          # 3 optimizer steps per epoch
STEPS_PER_EPOCH = VIDEOS // BATCH


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from my_affectgpt.datasets.synthetic import write_dataset

    root = tmp_path_factory.mktemp("synth")
    return write_dataset(root, VIDEOS, 0, label_type="openset", progress=False)["train"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("output")


def train(data, out, job, *options, check=True):
    # No AU branch here: it is exercised by test_au_signal.py; these runs test the loop.
    proc = run_cli("train.py", "--cfg-path", CONFIG, "--options",
                   f"datasets.mercaptionplus.data_root={data}", f"run.output_dir={out}",
                   f"run.job_name={job}", "datasets.mercaptionplus.face_or_frame=multiface_audio_face_text",
                   "run.max_epoch=2", f"run.batch_size_train={BATCH}", "run.log_every=1", "run.warmup_steps=2",
                   "--options", *options, env=ENV)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def job_dir(out, job):
    return out / "affectgpt_tiny_cpu" / job


def losses(out, job) -> dict:
    from my_affectgpt.training.affectgpt_loop import read_metrics

    records = read_metrics(job_dir(out, job))
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps)), f"steps repeat or go back: {steps}"
    return {r["step"]: r["loss"] for r in records}


def tensorboard_steps(folder) -> list:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder / "tensorboard"), purge_orphaned_data=True)
    acc.Reload()
    return [e.step for e in acc.Scalars("train/loss")]


@pytest.fixture(scope="module")
def full_run(data, out):
    """Two epochs without interruption: the reference curve."""
    train(data, out, "full", "run.seed=7")
    return job_dir(out, "full")


def test_checkpoints_state_config_and_logs(full_run):
    from safetensors import safe_open

    from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config as load_config

    for epoch in (0, 1):
        ckpt = full_run / f"checkpoint_{epoch:06d}.safetensors"
        with safe_open(str(ckpt), framework="pt") as f:
            names, meta = list(f.keys()), f.metadata()
        assert names and all("lora_" in n or "fusion" in n or "proj" in n for n in names), names[:5]
        assert not any("base_layer" in n or "embed_tokens" in n for n in names)  # frozen: not saved
        assert meta["epoch"] == str(epoch) and meta["global_step"] == str(STEPS_PER_EPOCH * (epoch + 1))
        state = full_run / f"checkpoint_{epoch:06d}.state"
        assert (state / "optimizer.bin").is_file() and (state / "scheduler.bin").is_file()
        assert json.loads((state / "trainer_state.json").read_text())["epoch_complete"] is True
        assert not (state / "model.safetensors").exists()  # the weights live in the checkpoint file
    assert not list(full_run.glob(".*tmp*"))  # no temp files left behind
    cfg = load_config(full_run / "config.yaml")  # the resolved config reloads as it was
    assert cfg.run.seed == 7 and cfg.run.job_name == "full" and cfg.run.max_epoch == 2
    assert (full_run / "tokenizer" / "tokenizer.json").is_file()
    assert tensorboard_steps(full_run) == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert sorted(losses(full_run.parents[1], "full")) == list(range(1, 2 * STEPS_PER_EPOCH + 1))


def test_resume_continues_step_count_and_loss_curve(data, out, full_run):
    reference = losses(out, "full")
    job = job_dir(out, "resumed")
    # 1) stop after the first epoch, 2) resume and stop one step into the second epoch,
    # 3) resume from that partial epoch and finish.
    train(data, out, "resumed", "run.seed=7", f"run.max_steps={STEPS_PER_EPOCH}")
    assert [p.name for p in sorted(job.glob("checkpoint_*.safetensors"))] == ["checkpoint_000000.safetensors"]
    second = train(data, out, "resumed", "run.seed=7", f"run.max_steps={STEPS_PER_EPOCH + 1}")
    assert f"resumed from {job / 'checkpoint_000000.safetensors'} at global step {STEPS_PER_EPOCH}" \
        in second.stdout
    partial = json.loads((job / "checkpoint_000001.state" / "trainer_state.json").read_text())
    assert partial == {"epoch": 1, "global_step": STEPS_PER_EPOCH + 1, "batches_done": 1,
                       "epoch_complete": False}
    third = train(data, out, "resumed", "run.seed=7")
    assert f"at global step {STEPS_PER_EPOCH + 1} (epoch 1, partial)" in third.stdout
    assert "last checkpoint" in third.stdout and f"(global step {2 * STEPS_PER_EPOCH})" in third.stdout

    resumed = losses(out, "resumed")
    assert sorted(resumed) == sorted(reference)
    for step, loss in reference.items():
        assert resumed[step] == pytest.approx(loss, rel=1e-4, abs=1e-5), (step, resumed, reference)
    assert tensorboard_steps(job) == list(range(1, 2 * STEPS_PER_EPOCH + 1))

    from my_affectgpt.models.affectgpt_checkpoints import load_trainable

    a = load_trainable(full_run / "checkpoint_000001.safetensors")
    b = load_trainable(job / "checkpoint_000001.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] - b[name]).abs().max().item() < 1e-5, name

    # Nothing left to do: a rerun resumes from the last epoch and trains no further step.
    again = train(data, out, "resumed", "run.seed=7")
    assert f"resumed from {job / 'checkpoint_000001.safetensors'}" in again.stdout
    assert f"(global step {2 * STEPS_PER_EPOCH})" in again.stdout


def test_two_processes_share_the_epoch(data, out):
    """DDP as on N GPUs, here 2 CPU processes (gloo): each sees half the batches, the optimizer
    steps once per pair of batches, every process saves its own RNG state, rank 0 logs once."""
    job = job_dir(out, "ddp")
    proc = run_cli("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", 2,
                   "train.py", "--cfg-path", CONFIG, "--options",
                   f"datasets.mercaptionplus.data_root={data}", f"run.output_dir={out}", "run.job_name=ddp",
                   "datasets.mercaptionplus.face_or_frame=multiface_audio_face_text", "run.max_epoch=2",
                   "run.batch_size_train=2", "run.log_every=1", "run.seed=7",
                   env={**ENV, "ACCELERATE_USE_CPU": "true"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout
    steps = VIDEOS // (2 * 2)
    assert sorted(losses(out, "ddp")) == list(range(1, 2 * steps + 1))
    for epoch in (0, 1):
        state = job / f"checkpoint_{epoch:06d}.state"
        assert (state / "random_states_0.pkl").is_file() and (state / "random_states_1.pkl").is_file()
        assert json.loads((state / "trainer_state.json").read_text())["global_step"] == steps * (epoch + 1)


def test_a_broken_video_is_skipped_and_counted(data, tmp_path):
    import shutil

    broken = tmp_path / "train"
    shutil.copytree(data, broken)
    name = "train_00003"
    (broken / "openface_face" / name / f"{name}.npy").write_bytes(b"not a numpy file")
    proc = train(broken, tmp_path / "out", "broken", "run.max_epoch=1", "run.batch_size_train=1")
    assert "skipped 1 batch(es) in which no sample loaded" in proc.stdout
    assert proc.stderr.count(f"skipping sample {name}") == 1  # logged once, with the cause
    assert sorted(losses(tmp_path / "out", "broken")) == list(range(1, VIDEOS))  # 11 steps


def test_options_override_config_values(tmp_path):
    proc = run_cli("train.py", "--cfg-path", CONFIG, "--dry-run",
                   "--options", "run.max_epoch=7", "model.au_mode=features",
                   "--options", "run.job_name=override_test", "datasets.mercaptionplus.data_root=some/where")
    assert proc.returncode == 0, proc.stderr
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(proc.stdout)
    assert cfg.run.max_epoch == 7 and cfg.model.au_mode == "features" and cfg.run.job_name == "override_test"
    assert cfg.datasets.mercaptionplus.data_root.endswith("some/where")  # resolved against the CWD


def test_misspelt_yaml_key_fails_naming_it(tmp_path):
    text = (run_cli("-c", f"print(open({CONFIG!r}).read())").stdout
            .replace("  max_epoch: 6", "  max_epok: 6"))
    assert "max_epok" in text
    bad = tmp_path / "typo.yaml"
    bad.write_text(text)
    proc = run_cli("train.py", "--cfg-path", bad)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "run.max_epok" in lines[0] and "run.max_epoch" in lines[0]  # the key and the hint
    assert "Traceback" not in proc.stderr


def test_bad_input_is_one_line(data, out):
    proc = train(data, out, "bad_resume", f"run.resume={out / 'nowhere' / 'checkpoint_000003.safetensors'}",
                 check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().count("\n") == 0 and "run.resume" in proc.stderr and "not found" in proc.stderr

    missing = run_cli("train.py", "--cfg-path", "train_configs/no_such.yaml")
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "not found" in missing.stderr


def test_help():
    proc = run_cli("train.py", "--help")
    assert proc.returncode == 0 and "--cfg-path" in proc.stdout and "--options" in proc.stdout
