"""AffectGPT config loading: schema checks, overrides, path resolution, AU Agent keys."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from my_affectgpt.common.config import config_to_yaml
from my_affectgpt.datasets.affectgpt_config import add_config_args, au_agent_config, config_from_args
from my_affectgpt.datasets.affectgpt_config import load_affectgpt_config as load_config
from my_affectgpt.common.errors import InputError
from my_affectgpt.models.au_agent import CONFIG_KEYS

BASE = """\
model:
  llm_model: models/qwen
  fusion: {audio: mean}
datasets:
  mer:
    data_root: data/mer
    label_type: openset
    face_or_frame: multiface_audio_face_au_text
    au_agent_backend: template
    au_text_encoder: minilm
run:
  output_dir: out
inference:
  test_datasets:
    - {name: test, data_root: data/test}
"""


def write(folder: Path, text: str = BASE, name: str = "cfg.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_loads_merges_defaults_and_resolves_paths_against_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg_dir = tmp_path / "configs" / "sub"
    cfg = load_config(write(cfg_dir))
    assert cfg.model.llm_model == str(cfg_dir / "models" / "qwen")
    assert cfg.datasets.mer.data_root == str(cfg_dir / "data" / "mer")
    assert cfg.run.output_dir == str(cfg_dir / "out")
    assert cfg.inference.test_datasets[0].data_root == str(cfg_dir / "data" / "test")
    # defaults are kept, and a relative default resolves against the current directory
    assert cfg.model.fusion.audio == "mean" and cfg.model.fusion.face == "qformer"
    assert cfg.model.num_au_query_token == 8 and cfg.run.max_epoch == 3
    assert cfg.inference.results_dir == str(tmp_path / "output")
    # null and names stay as they are
    assert cfg.model.tokenizer is None
    assert cfg.datasets.mer.au_text_encoder == "minilm"
    assert cfg.datasets.mer.au_agent_cache == "auto"


def test_absolute_paths_and_embedded_model_names_are_kept(tmp_path):
    text = BASE.replace("au_agent_backend: template", "au_agent_backend: hf\n    "
                        "au_agent_base_model: smollm2-135m-instruct")
    text = text.replace("data_root: data/mer", f"data_root: {tmp_path / 'abs'}")
    cfg = load_config(write(tmp_path / "c", text))
    assert cfg.datasets.mer.au_agent_base_model == "smollm2-135m-instruct"
    assert cfg.datasets.mer.data_root == str(tmp_path / "abs")


def test_options_override_and_resolve_against_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "c")
    cfg = load_config(path, ["run.max_epoch=1", "model.au_mode=text", "run.output_dir=elsewhere",
                             "model.lora.target_modules=[q_proj,v_proj]",
                             "datasets.mer.face_or_frame=audio_text", "run.resume=false"])
    assert cfg.run.max_epoch == 1
    assert cfg.model.au_mode == "text"
    assert cfg.run.output_dir == str(tmp_path / "elsewhere")
    assert list(cfg.model.lora.target_modules) == ["q_proj", "v_proj"]
    assert cfg.datasets.mer.face_or_frame == "audio_text"
    assert cfg.run.resume is False


@pytest.mark.parametrize("text,key,hint", [
    ("model:\n  fusoin: {audio: mean}\n", "model.fusoin", "model.fusion"),
    ("run:\n  max_epochs: 3\n", "run.max_epochs", "run.max_epoch"),
    ("datasets:\n  mer:\n    data_root: d\n    au_agent_backnd: template\n",
     "datasets.mer.au_agent_backnd", "datasets.mer.au_agent_backend"),
    ("datasets:\n  mer:\n    data_root: d\n    face_or_fram: text\n",
     "datasets.mer.face_or_fram", "datasets.mer.face_or_frame"),
    ("inference:\n  test_datasets:\n    - {name: a, data_roo: d}\n",
     "inference.test_datasets.0.data_roo", "inference.test_datasets.0.data_root"),
    ("trainer:\n  lr: 1\n", "trainer", None),
])
def test_unknown_key_names_the_file_the_full_key_and_a_hint(tmp_path, text, key, hint):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and f"'{key}'" in msg
    if hint:
        assert f"did you mean '{hint}'" in msg


def test_unknown_key_in_options_is_named(tmp_path):
    path = write(tmp_path)
    with pytest.raises(InputError, match=r"unknown key 'run.warmup_step' \(from --options\); did you mean 'run.warmup_steps'"):
        load_config(path, ["run.warmup_step=3"])
    with pytest.raises(InputError, match="not key=value"):
        load_config(path, ["run.lr"])


@pytest.mark.parametrize("option,key", [
    ("run.max_epoch=abc", "run.max_epoch"),
    ("model.fusion.multi=qformr", "model.fusion.multi"),
    ("model.au_mode=pictures", "model.au_mode"),
    ("run.amp=fp8", "run.amp"),
    ("datasets.mer.label_type=hybrid", "datasets.mer.label_type"),
    ("datasets.mer.face_or_frame=audio_voice", "datasets.mer.face_or_frame"),
    ("datasets.mer.au_agent_backend=gpt", "datasets.mer.au_agent_backend"),
    ("datasets.mer.au_sampling=random", "datasets.mer.au_sampling"),
])
def test_bad_values_name_their_key(tmp_path, option, key):
    with pytest.raises(InputError) as err:
        load_config(write(tmp_path), [option])
    assert f"'{key}'" in str(err.value)


@pytest.mark.parametrize("option,message", [
    ("model.au_mode=value", "'model.au_mode': 'value' is not one of features, text, values, hybrid; "
                            "did you mean 'values'?"),
    ("model.au_mode=hybird", "is not one of features, text, values, hybrid; did you mean 'hybrid'?"),
    ("model.au_mod=values", "unknown key 'model.au_mod' (from --options); did you mean 'model.au_mode' "
                            "(one of features, text, values, hybrid)?"),
    ("model.fusion.fase=mean", "did you mean 'model.fusion.face' (one of qformer, attention, mean)?"),
])
def test_au_mode_errors_name_every_mode(tmp_path, option, message):
    with pytest.raises(InputError) as err:
        load_config(write(tmp_path), [option])
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("mode", ["features", "text", "values", "hybrid"])
def test_every_au_mode_loads_and_values_needs_no_au_agent_settings(tmp_path, mode):
    """A dataset entry with no AU Agent key at all (the backend defaults to hf, without a base
    model): enough for values, which uses only the frame rule; an error for the modes that
    describe frames."""
    bare = BASE.replace("    au_agent_backend: template\n    au_text_encoder: minilm\n", "")
    assert "au_agent" not in bare
    path = write(tmp_path, bare)
    if mode == "values":
        cfg = load_config(path, [f"model.au_mode={mode}"])
        assert cfg.model.au_mode == "values" and cfg.datasets.mer.au_agent_backend == "hf"
        sampling = au_agent_config(cfg.datasets.mer, describer=False)
        assert sampling.num_frames == 8 and sampling.sampling == "uniform"
        assert sampling.openface_dir == str(Path(cfg.datasets.mer.data_root) / "openface_output")
    else:
        with pytest.raises(InputError, match="'datasets.mer.au_agent_base_model'"):
            load_config(path, [f"model.au_mode={mode}"])
    assert load_config(write(tmp_path / "t"), [f"model.au_mode={mode}"]).model.au_mode == mode
    with pytest.raises(InputError, match="'datasets.mer.au_sampling'"):
        load_config(path, ["model.au_mode=values", "datasets.mer.au_sampling=random"])


def test_au_modes_have_one_source():
    from my_affectgpt.datasets import affectgpt_config as config
    from my_affectgpt.models import affectgpt

    assert config.AU_MODES == ("features", "text", "values", "hybrid")
    assert "AU_MODES" not in vars(affectgpt) or affectgpt.AU_MODES is config.AU_MODES


def test_missing_data_root_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="datasets.x.data_root"):
        load_config(write(tmp_path, "datasets:\n  x: {label_type: openset}\n"))
    with pytest.raises(InputError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match="must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n", "list.yaml"))
    with pytest.raises(InputError, match="bad.yaml: cannot read config"):  # a YAML syntax error
        load_config(write(tmp_path, "a: [\n", "bad.yaml"))


def test_au_agent_keys_follow_the_runtime_and_are_checked_only_when_au_is_used(tmp_path):
    cfg = load_config(write(tmp_path))
    assert set(CONFIG_KEYS) <= set(cfg.datasets.mer)
    # hf without a base model is fine for a variant without the AU branch ...
    load_config(write(tmp_path), ["datasets.mer.au_agent_backend=hf", "datasets.mer.face_or_frame=audio_text"])
    # ... and fails, naming the key, when the AU branch needs the agent
    with pytest.raises(InputError, match="'datasets.mer.au_agent_base_model'"):
        load_config(write(tmp_path), ["datasets.mer.au_agent_backend=hf"])


def test_au_agent_config_fills_data_root_defaults(tmp_path):
    cfg = load_config(write(tmp_path), ["datasets.mer.au_num_frames=4"])
    agent = au_agent_config(cfg.datasets.mer)
    root = Path(cfg.datasets.mer.data_root)
    assert agent.backend == "template" and agent.num_frames == 4
    assert agent.openface_dir == str(root / "openface_output")
    assert agent.feature_dir == str(root / "au_features")
    cfg = load_config(write(tmp_path), ["datasets.mer.au_feature_dir=/feats"])
    assert au_agent_config(cfg.datasets.mer).feature_dir == "/feats"


def test_yaml_round_trip_and_interpolation(tmp_path):
    text = BASE + "  results_dir: ${run.output_dir}/results\n"
    cfg = load_config(write(tmp_path / "a", text))
    assert cfg.inference.results_dir == str(tmp_path / "a" / "out" / "results")
    again = load_config(write(tmp_path / "b", config_to_yaml(cfg)))
    assert again == cfg


def test_cli_arguments(tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    add_config_args(parser)
    args = parser.parse_args(["--cfg-path", str(write(tmp_path)), "--options", "run.seed=7", "run.lr=0.5"])
    cfg = config_from_args(args)
    assert cfg.run.seed == 7 and cfg.run.lr == 0.5


def test_empty_sections_mean_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "model:\ninference:\ndatasets:\n"))
    assert cfg.inference.batch_size == 8 and len(cfg.datasets) == 0 and cfg.model.au_mode == "features"


def test_text_encoder_paths_inside_a_spec_resolve(tmp_path):
    text = BASE.replace("au_text_encoder: minilm", "au_text_encoder: open_clip:clip/tiny.json\n"
                        "    au_text_encoder_pretrained: weights/ckpt.pt")
    cfg = load_config(write(tmp_path / "c", text))
    assert cfg.datasets.mer.au_text_encoder == f"open_clip:{tmp_path / 'c' / 'clip' / 'tiny.json'}"
    assert cfg.datasets.mer.au_text_encoder_pretrained == str(tmp_path / "c" / "weights" / "ckpt.pt")
    text = BASE.replace("au_text_encoder: minilm", "au_text_encoder: sentence-transformers:models/st\n"
                        "    au_text_encoder_pretrained: laion2b_s34b_b79k")
    cfg = load_config(write(tmp_path / "d", text))
    assert cfg.datasets.mer.au_text_encoder == f"sentence-transformers:{tmp_path / 'd' / 'models' / 'st'}"
    assert cfg.datasets.mer.au_text_encoder_pretrained == "laion2b_s34b_b79k"
