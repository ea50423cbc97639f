"""MER-Caption+ dataset: real files from the synthetic generator, the real AU Agent (template
backend, a tiny random open_clip text tower: the cheapest real encoder), samples of the
contracted shapes, bad samples skipped."""
from __future__ import annotations

import json
import logging
import pickle
import shutil
import textwrap
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config as load_config
from my_affectgpt.common.errors import InputError
from my_affectgpt.datasets.mercaptionplus import (CLIP_MEAN, CLIP_STD, QUESTIONS, MERCaptionPlusDataset,
                                                  audio_clips, collate_samples, openset_answer,
                                                  read_wav, uniform_indices)
from my_affectgpt.datasets.synthetic import EMOTION_WORDS, write_dataset
from my_affectgpt.models.au_agent import AUAgent, AUAgentConfig

FULL = "multiface_audio_face_frame_au_text"
N = 6
SMALL = dict(num_frames=4, num_faces=3, num_audio_clips=5, clip_seconds=0.5, image_size=32)
TINY_CLIP = {"embed_dim": 32,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
D_AU = TINY_CLIP["embed_dim"]

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def encoder_spec(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("clip") / "tiny-au-clip.json"
    path.write_text(json.dumps(TINY_CLIP))
    return f"open_clip:{path}"


def agent_config(encoder_spec: str) -> AUAgentConfig:
    return AUAgentConfig(backend="template", text_encoder=encoder_spec, text_encoder_pretrained=None,
                         cache_path=None)


@pytest.fixture(scope="module")
def agent(one_thread, encoder_spec):
    with AUAgent(agent_config(encoder_spec)) as a:
        yield a


@pytest.fixture(scope="module")
def data(tmp_path_factory, agent) -> Path:
    """A synthetic train split whose AU features are already in its store."""
    out = tmp_path_factory.mktemp("mer")
    write_dataset(out, N, 0, seed=11, progress=False)
    root = out / "train"
    counts = MERCaptionPlusDataset(root, FULL, au_agent=agent).ensure_au_features(progress=False)
    assert counts["computed"] == N
    return root


@pytest.fixture
def copy(data, tmp_path) -> Path:
    """A private copy of the dataset (store included) that a test may damage."""
    return Path(shutil.copytree(data, tmp_path / "train"))


def labels(root: Path) -> dict:
    import csv

    with (root / "labels.csv").open() as f:
        return {r["name"]: r["emotion"] for r in csv.DictReader(f)}


def test_full_modality_batch_has_the_contracted_shapes(data, agent):
    ds = MERCaptionPlusDataset(data, FULL, au_agent=agent, **SMALL)
    assert len(ds) == N
    batch = collate_samples([ds[i] for i in range(3)])
    assert batch["names"] == ds.names[:3]
    assert len(batch["questions"]) == len(batch["answers"]) == len(batch["label_types"]) == 3
    assert len(batch["subtitles"]) == 3 and all(batch["subtitles"])
    assert batch["frames"].shape == (3, 4, 3, 32, 32) and batch["frames"].dtype == torch.float32
    assert batch["faces"].shape == (3, 3, 3, 32, 32) and batch["faces"].dtype == torch.float32
    assert batch["audio"].shape == (3, 5, 8000) and batch["audio"].dtype == torch.float32
    assert batch["au"].shape == (3, 8, D_AU) and batch["au"].dtype == torch.float32
    assert batch["au_mask"].dtype == torch.bool and batch["au_mask"].tolist() == [True] * 3
    assert [len(t) for t in batch["au_text"]] == [8, 8, 8] and all(s for t in batch["au_text"] for s in t)
    # CLIP normalisation: pixels in [0, 1] map into [-mean/std, (1-mean)/std] per channel
    low = torch.tensor(-CLIP_MEAN / CLIP_STD).view(1, 1, 3, 1, 1)
    high = torch.tensor((1 - CLIP_MEAN) / CLIP_STD).view(1, 1, 3, 1, 1)
    assert bool(((batch["frames"] >= low - 1e-4) & (batch["frames"] <= high + 1e-4)).all())
    assert batch["frames"].std() > 0.2  # noise, not a constant frame
    assert batch["audio"].abs().max() <= 1.0 and batch["audio"].std() > 0.01


@pytest.mark.parametrize("variant,keys", [
    ("text", {"subtitles"}),
    ("audio_text", {"subtitles", "audio"}),
    ("face_text", {"subtitles", "faces"}),
    ("multiframe_audio_frame_text", {"subtitles", "audio", "frames"}),
    ("multiface_audio_face_au_text", {"subtitles", "audio", "faces", "au", "au_mask", "au_text"}),
])
def test_only_the_needed_modalities_are_loaded(data, agent, variant, keys):
    ds = MERCaptionPlusDataset(data, variant, au_agent=agent, **SMALL)
    batch = collate_samples([ds[0], ds[1]])
    assert set(batch) == {"names", "questions", "answers", "label_types"} | keys


def test_answers_questions_and_hybird_choice(data, agent):
    truth = labels(data)
    openset = MERCaptionPlusDataset(data, "text", label_type="openset")
    for i in range(len(openset)):
        s = openset[i]
        assert s["question"] == QUESTIONS["openset"] and s["label_type"] == "openset"
        assert s["answer"] == EMOTION_WORDS[truth[s["name"]]]
    description = MERCaptionPlusDataset(data, "text", label_type="description")
    s = description[0]
    assert s["question"] == QUESTIONS["description"] and EMOTION_WORDS[truth[s["name"]]] in s["answer"]
    hybird = MERCaptionPlusDataset(data, "text", seed=1)
    again = MERCaptionPlusDataset(data, "text", seed=1)
    kinds = {}
    for epoch in range(4):
        hybird.set_epoch(epoch)
        again.set_epoch(epoch)
        for i in range(len(hybird)):
            a, b = hybird[i], again[i]
            assert a["label_type"] == b["label_type"] and a["answer"] == b["answer"]  # deterministic
            assert a["question"] == QUESTIONS[a["label_type"]]
            kinds.setdefault(i, set()).add(a["label_type"])
    assert {k for ks in kinds.values() for k in ks} == {"openset", "description"}
    assert any(len(ks) == 2 for ks in kinds.values())  # the choice changes between epochs


def test_openset_answer_formats():
    assert openset_answer("happy, excited") == "happy, excited"
    assert openset_answer("['happy', 'excited']") == "happy, excited"
    assert openset_answer("[happy,excited]") == "happy, excited"
    assert openset_answer(" sad ") == "sad"


def test_ensure_au_features_writes_the_store_and_then_computes_nothing(data, agent, tmp_path):
    root = Path(shutil.copytree(data, tmp_path / "d"))
    shutil.rmtree(root / "au_features")
    ds = MERCaptionPlusDataset(root, "au_text", au_agent=agent)
    counts = ds.ensure_au_features(progress=False)
    assert counts == {"videos": N, "up_to_date": 0, "computed": N, "failed": 0, "no_csv": 0}
    for name in ds.names:
        assert (root / "au_features" / f"{name}.npy").is_file()
        assert (root / "au_features" / f"{name}.json").is_file()
    frames_before = agent.stats.frames
    counts = MERCaptionPlusDataset(root, "au_text", au_agent=agent).ensure_au_features(progress=False)
    assert counts["computed"] == 0 and counts["up_to_date"] == N
    assert agent.stats.frames == frames_before  # nothing was described again


def test_getitem_computes_a_missing_video_on_its_own(copy, agent):
    ds = MERCaptionPlusDataset(copy, "au_text", au_agent=agent)
    name = ds.names[2]
    (copy / "au_features" / f"{name}.json").unlink()
    before = agent.stats.frames
    sample = ds[2]
    assert sample is not None and sample["au"].shape == (8, D_AU)
    assert agent.stats.frames == before + 8
    assert (copy / "au_features" / f"{name}.json").is_file()


def test_corrupt_and_missing_files_are_skipped_and_logged_once(copy, agent, caplog):
    ds = MERCaptionPlusDataset(copy, FULL, au_agent=agent, **SMALL)
    bad_video, no_audio, bad_faces = ds.names[0], ds.names[1], ds.names[2]
    (copy / "video" / f"{bad_video}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video" * 10)
    (copy / "audio" / f"{no_audio}.wav").unlink()
    (copy / "openface_face" / bad_faces / f"{bad_faces}.npy").write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="my_affectgpt.datasets.mercaptionplus"):
        samples = [ds[i] for i in range(len(ds))]
        assert ds[0] is None  # a second time: not logged again
    assert [s is None for s in samples] == [True, True, True, False, False, False]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert bad_video in messages[0] and no_audio in messages[1] and "missing" in messages[1]
    assert bad_faces in messages[2]
    assert ds.failed == {bad_video, no_audio, bad_faces}
    batch = collate_samples(samples)
    assert batch["names"] == ds.names[3:] and batch["frames"].shape[0] == 3
    assert collate_samples([None, None]) is None


def test_video_without_usable_frames_is_masked(copy, agent):
    ds = MERCaptionPlusDataset(copy, "au_text", au_agent=agent)
    name = ds.names[1]
    csv_path = copy / "openface_output" / name / f"{name}.csv"
    csv_path.write_text(csv_path.read_text().splitlines()[0] + "\n")  # header only
    sample = ds[1]
    assert sample is not None and sample["au_mask"] is False
    assert float(sample["au"].abs().sum()) == 0.0 and sample["au_text"] == [""] * 8
    assert collate_samples([sample, ds[0]])["au_mask"].tolist() == [False, True]


def test_au_values_at_the_agent_frames_and_values_mode_builds_no_agent(copy, agent, monkeypatch):
    """hybrid: the stored features plus the CSV's AU vectors at the frames their <video>.json
    lists; values: the same vectors, sampled by the AU Agent's rule without any AU Agent, store
    or text encoder; a video without usable frames is masked in both."""
    from my_affectgpt.au.openface import read_openface_csv
    from my_affectgpt.models.au_agent import runtime as au_agent_module
    from my_affectgpt.models import au_values, text_encoders

    hybrid = MERCaptionPlusDataset(copy, "au_text", au_agent=agent, au_mode="hybrid")
    name = hybrid.names[0]
    csv_path = copy / "openface_output" / name / f"{name}.csv"
    meta = json.loads((copy / "au_features" / f"{name}.json").read_text())
    h = hybrid[0]
    assert h["au"].shape == (8, D_AU) and h["au_values"].shape == (8, au_values.NUM_AU_VALUES)
    track = read_openface_csv(csv_path)
    rows = [track.frames["frame"].tolist().index(f) for f in meta["frames"]]
    expected = track.frames[list(au_values.VALUE_COLUMNS)].to_numpy(np.float32)[rows]
    assert np.allclose(h["au_values"].numpy(), np.nan_to_num(expected))
    assert float(h["au_values"][:, :17].max()) > 0.5        # the synthetic AUs carry intensities
    assert au_values.sample_values(csv_path, agent.config).frames == meta["frames"]  # one frame rule

    def refuse(*args, **kwargs):
        raise AssertionError("au_mode values built an AU Agent or a text encoder")

    monkeypatch.setattr(au_agent_module.AUAgent, "__init__", refuse)
    monkeypatch.setattr(au_agent_module, "load_text_encoder", refuse)
    monkeypatch.setattr(text_encoders, "load_text_encoder", refuse)
    shutil.rmtree(copy / "au_features")                      # nothing of the store is read either
    values = MERCaptionPlusDataset(copy, "au_text", au_mode="values")
    assert values.ensure_au_features(progress=False)["computed"] == 0
    batch = collate_samples([values[0], values[1]])
    assert set(batch) == {"names", "questions", "answers", "label_types", "subtitles", "au_values", "au_mask"}
    assert torch.equal(batch["au_values"][0], h["au_values"]) and batch["au_mask"].tolist() == [True, True]
    csv_path.write_text(csv_path.read_text().splitlines()[0] + "\n")  # header only
    masked = values[0]
    assert masked["au_mask"] is False and float(masked["au_values"].abs().sum()) == 0.0
    (copy / "openface_output" / values.names[1] / f"{values.names[1]}.csv").unlink()
    assert values[1] is None and values.names[1] in values.failed


def test_precomputed_encoder_features_replace_the_media(copy):
    ds0 = MERCaptionPlusDataset(copy, "multiface_audio_face_frame_text", **SMALL)
    feat_dir = copy.parent / "encoder_features"
    rng = np.random.default_rng(0)
    for kind, dim in (("frame", 7), ("face", 7), ("audio", 5)):
        (feat_dir / kind).mkdir(parents=True)
        for name in ds0.names:
            np.save(feat_dir / kind / f"{name}.npy", rng.normal(size=(10, dim)).astype(np.float16))
    shutil.rmtree(copy / "video")  # not read any more
    ds = MERCaptionPlusDataset(copy, "multiface_audio_face_frame_text", encoder_feature_dir=feat_dir, **SMALL)
    batch = collate_samples([ds[0], ds[1]])
    assert batch["frames"].shape == (2, 4, 7) and batch["faces"].shape == (2, 3, 7)
    assert batch["audio"].shape == (2, 5, 5) and batch["audio"].dtype == torch.float32
    (feat_dir / "audio" / f"{ds.names[0]}.npy").unlink()
    assert ds[0] is None and ds[1] is not None


def test_use_au_agent_false_reads_the_store_as_it_is(copy, encoder_spec):
    ds = MERCaptionPlusDataset(copy, "au_text", use_au_agent=False, au_agent_config=agent_config(encoder_spec))
    assert ds.ensure_au_features(progress=False)["computed"] == 0
    assert ds[0]["au"].shape == (8, D_AU)
    (copy / "au_features" / f"{ds.names[0]}.npy").unlink()
    assert ds[0] is None and ds._agent is None  # never built an agent


def test_missing_folder_or_label_csv_is_an_input_error(data, tmp_path):
    with pytest.raises(InputError, match="dataset folder not found") as err:
        MERCaptionPlusDataset(tmp_path / "nope", "text")
    assert str(tmp_path / "nope") in str(err.value)
    root = Path(shutil.copytree(data, tmp_path / "d", ignore=shutil.ignore_patterns("au_features", "video")))
    (root / "track3_train_mercaptionplus.csv").unlink()
    MERCaptionPlusDataset(root, "text", label_type="openset")  # does not need track3
    with pytest.raises(InputError) as err:
        MERCaptionPlusDataset(root, "text", label_type="hybird")
    assert str(root / "track3_train_mercaptionplus.csv") in str(err.value)
    (root / "subtitle_chieng.csv").unlink()
    MERCaptionPlusDataset(root, "audio", label_type="openset")  # no text: no subtitles needed
    with pytest.raises(InputError, match="subtitle_chieng.csv"):
        MERCaptionPlusDataset(root, "audio_text", label_type="openset")


def test_names_are_the_intersection_of_the_needed_label_csvs(copy):
    track3 = copy / "track3_train_mercaptionplus.csv"
    lines = track3.read_text().splitlines()
    track3.write_text("\n".join(lines[:-2]) + "\n")  # last two names lose their reason
    assert len(MERCaptionPlusDataset(copy, "text", label_type="openset")) == N
    assert len(MERCaptionPlusDataset(copy, "text", label_type="description")) == N - 2
    assert len(MERCaptionPlusDataset(copy, "text", label_type="hybird")) == N - 2


def test_from_config_and_pickling(data, agent, encoder_spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rel = Path("..") / data.relative_to(data.parents[1])
    cfg_dir = data.parents[1] / "configs"
    cfg_dir.mkdir(exist_ok=True)
    path = cfg_dir / "tiny.yaml"
    path.write_text(textwrap.dedent(f"""\
        datasets:
          mer:
            data_root: {rel.as_posix()}
            label_type: openset
            face_or_frame: multiface_audio_face_au_text
            num_frames: 2
            num_faces: 2
            num_audio_clips: 2
            image_size: 16
            au_agent_backend: template
            au_text_encoder: {encoder_spec}
            au_text_encoder_pretrained: none
            au_agent_cache: none
        """))
    cfg = load_config(path)
    ds = MERCaptionPlusDataset.from_config(cfg.datasets.mer, au_agent=agent)
    assert ds.root == data.resolve() and ds.au_feature_dir == data.resolve() / "au_features"
    assert ds.ensure_au_features(progress=False)["up_to_date"] == N  # same identity as the fixture
    sample = ds[0]
    assert sample["faces"].shape == (2, 3, 16, 16) and sample["audio"].shape == (2, 32000)
    clone = pickle.loads(pickle.dumps(MERCaptionPlusDataset.from_config(cfg.datasets.mer)))
    assert clone[0]["au"].shape == (8, D_AU)  # stored features: the worker copy needs no model run


def test_audio_and_sampling_helpers(tmp_path):
    assert uniform_indices(16, 4).tolist() == [2, 6, 10, 14]
    assert uniform_indices(2, 4).tolist() == [0, 0, 1, 1]
    short = np.ones(100, np.float32)
    clips = audio_clips(short, 3, 160)
    assert clips.shape == (3, 160) and clips[:, :100].sum() == 300 and clips[:, 100:].sum() == 0
    long = np.arange(1000, dtype=np.float32)
    clips = audio_clips(long, 3, 200)
    assert clips[0, 0] == 0 and clips[-1, -1] == 999 and clips[1, 0] == 400
    path = tmp_path / "stereo8k.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.full((8000, 2), 16384, dtype="<i2").tobytes())
    x = read_wav(path, 16000)
    assert x.shape == (16000,) and np.allclose(x, 0.5)
