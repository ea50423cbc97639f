"""AffectGPT model: every face_or_frame variant and AU mode (features, text, values, hybrid) trains,
the loss covers answers only, checkpoints of the trainable part restore the exact model and refuse
another AU mode, generation works, AU masking holds in every mode.

Real tiny parts throughout (random Qwen2, CLIPVisionModel, HubertModel, BLIP-2 Q-Former, peft LoRA)
on hand-made batches with the dataset contract's keys.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from my_affectgpt.common.errors import InputError
from my_affectgpt.datasets.modalities import parse_face_or_frame
from my_affectgpt.models.affectgpt import AffectGPT
from my_affectgpt.models.au_values import NUM_AU_VALUES
from my_affectgpt.models.qformer import FUSIONS, build_fusion
from my_affectgpt.models.affectgpt_llm import PLACEHOLDERS

pytestmark = pytest.mark.usefixtures("one_thread")

VARIANTS = ["multiface_audio_face_text", "multiframe_audio_frame_text",
            "multiface_audio_face_frame_text", "audio_text", "face_text", "frame_text", "text",
            "multiface_audio_face_frame_au_text", "multiface_audio_face_au_text"]
AU_DIM, T, FRAMES, CLIPS, SAMPLES, IMAGE = 12, 4, 3, 2, 1600, 24
QUESTION = "Please recognize all possible emotional states of the character."
CORPUS = ["happy, excited", "sad, tired", "the person smiles broadly", "hello there, how are you",
          "lip corner puller raised cheeks", "brow lowerer, lips pressed", QUESTION]


BASE_CFG = {
    "llm_model": None, "tokenizer": None,
    "llm_tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "num_kv_heads": 2,
                 "intermediate_size": 64, "vocab_size": 400},
    "visual_encoder": None,
    "visual_tiny": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
                    "patch_size": 8, "image_size": 16},
    "audio_encoder": None,
    "audio_tiny": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32},
    "encoder_feature_dir": None,
    "fusion": {"multi": "qformer", "audio": "qformer", "face": "qformer", "frame": "qformer"},
    "num_query_token": 3, "num_au_query_token": 4, "qformer_layers": 1,
    "qformer_hidden_size": 16, "qformer_heads": 2, "au_mode": "features",
    "lora": {"r": 4, "alpha": 8, "dropout": 0.0,
             "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                "down_proj"]},
    "max_length": 200, "max_new_tokens": 6,
}


def model_cfg(**overrides):
    """The contract's model section with tiny sizes; overrides by top-level key."""
    cfg = OmegaConf.create(BASE_CFG)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def build(variant="multiface_audio_face_frame_au_text", work_dir=None, **overrides):
    mods = parse_face_or_frame(variant)
    torch.manual_seed(0)
    return AffectGPT(model_cfg(**overrides), mods, tokenizer_corpus=CORPUS, work_dir=work_dir,
                     feature_dims={"au": AU_DIM})


def make_batch(mods, *, seed=0, au_mask=(True, False), features: dict | None = None):
    """Two items with the dataset's batch keys; item 1 has a longer subtitle (padding)."""
    g = torch.Generator().manual_seed(seed)
    b = len(au_mask)
    batch = {"names": [f"vid{i}" for i in range(b)], "questions": [QUESTION] * b,
             "answers": ["happy, excited", "sad, tired", "happy", "sad"][:b],
             "label_types": ["openset"] * b,
             "subtitles": ["hello there", "hello there, how are you today my friend", "hi", "bye"][:b]}
    for name, key, n in (("frame", "frames", FRAMES), ("face", "faces", FRAMES), ("audio", "audio", CLIPS)):
        if name in mods.visual_inputs or (name == "audio" and mods.needs_audio):
            if features:                    # precomputed encoder features [B, N, D]
                shape = (b, n, features[name])
            else:                           # images [B, F, 3, S, S] or waveforms [B, C, samples]
                shape = (b, n, SAMPLES) if name == "audio" else (b, n, 3, IMAGE, IMAGE)
            batch[key] = torch.randn(*shape, generator=g)
    if "au" in mods:
        batch["au"] = torch.randn(b, T, AU_DIM, generator=g)
        values = torch.rand(b, T, NUM_AU_VALUES, generator=g) * 5    # OpenFace _r: 0..5
        values[..., -1] = (values[..., -1] > 2.5).float()            # AU28_c: 0/1
        batch["au_values"] = values
        batch["au_mask"] = torch.tensor(au_mask)
        batch["au_text"] = [["AU12 lip corner puller", "AU12 lip corner puller", "AU06 cheek raiser",
                             "neutral"]] * b
    return batch


from my_affectgpt.models.au_modes import AU_MODES  # noqa: E402
CASES = [(v, "features") for v in VARIANTS] + [(v, m) for m in AU_MODES[1:] for v in VARIANTS if "_au_" in v]


@pytest.mark.parametrize("variant,au_mode", CASES)
def test_every_variant_trains_one_step(variant, au_mode):
    # Spread the three fusion kinds over the variants so each runs on multi and single modalities.
    kinds = list(FUSIONS)
    k = VARIANTS.index(variant)
    fusion = {"multi": kinds[k % 3], "audio": kinds[(k + 1) % 3], "face": kinds[(k + 2) % 3],
              "frame": kinds[k % 3]}
    model = build(variant, au_mode=au_mode, fusion=fusion)
    mods = model.modalities
    batch = make_batch(mods)
    prompt = model.render(model.user_text(batch, 0))
    for token in mods.ordered:
        if token in model.fusion:
            n = model.fusion[token].num_tokens
            assert prompt.count(PLACEHOLDERS[token]) == n
    if "au" in mods and au_mode == "text":
        # Consecutive duplicates said once; the masked item's descriptions are left out.
        assert "<Nonverbal>AU12 lip corner puller; AU06 cheek raiser; neutral</Nonverbal>" in prompt
        assert "<Nonverbal></Nonverbal>" in model.render(model.user_text(batch, 1))
        assert "<AUHere>" not in prompt and "au" not in model.fusion
    assert ("Subtitle: hello there" in prompt) == ("text" in mods)

    # The AU-values projection: only in the modes that read values, 18 (+ D) inputs, trainable.
    proj = {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith("au_proj.")}
    assert bool(proj) == (au_mode in ("values", "hybrid") and "au" in mods)
    if proj:
        assert model.au_proj.mlp[0].in_features == NUM_AU_VALUES + (AU_DIM if au_mode == "hybrid" else 0)
        assert set(proj) <= set(model.trainable_state_dict())

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    out = model(batch)
    assert math.isfinite(out.loss.item())
    out.loss.backward()
    # Every trainable parameter takes part in every step (DDP needs no find_unused_parameters).
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)
    opt.step()
    after = dict(model.named_parameters())
    assert all(not torch.equal(before, after[n]) for n, before in proj.items())  # it learns


def test_loss_covers_answer_tokens_only():
    model = build(fusion={"multi": "mean", "audio": "attention", "face": "qformer", "frame": "mean"})
    model.eval()
    batch = make_batch(model.modalities)
    ids, attn, labels = model.tokenize(batch, with_answers=True, padding_side="right")
    tok = model.tokenizer
    for row, answer in enumerate(batch["answers"]):
        answered = labels[row][labels[row] != -100].tolist()
        assert answered[-1] == tok.eos_token_id
        assert tok.decode(answered[:-1]) == answer
        # Labelled positions are exactly the answer at the end of the real tokens.
        n_real = int(attn[row].sum())
        assert (labels[row, n_real - len(answered):n_real] != -100).all()
        assert (labels[row, :n_real - len(answered)] == -100).all()
        assert (labels[row, n_real:] == -100).all()
    placeholder = torch.isin(ids, torch.tensor(list(model.placeholder_ids.values())))
    assert placeholder.any() and (labels[placeholder] == -100).all()
    # The reported loss is the mean cross-entropy over those answer tokens, nothing else.
    out = model(batch)
    shift = labels[:, 1:]
    ce = torch.nn.functional.cross_entropy(out.logits[:, :-1][shift != -100], shift[shift != -100])
    assert torch.allclose(out.loss, ce, atol=1e-5)


def test_repeated_batch_is_learned_and_generated(tmp_path):
    model = build(work_dir=tmp_path)
    batch = make_batch(model.modalities)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(40):
        loss = model(batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses
    answers = model.generate({k: v for k, v in batch.items() if k != "answers"}, max_new_tokens=12)
    assert answers == batch["answers"]
    assert model.training  # generate restores the mode it found


def test_trainable_state_dict_round_trip(tmp_path):
    from safetensors.torch import load_file, save_file

    model = build(work_dir=tmp_path)
    batch = make_batch(model.modalities)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        model(batch).loss.backward()
        opt.step()
        opt.zero_grad()
    state = model.trainable_state_dict()
    assert state and all(not n.startswith(("visual_encoder", "audio_encoder")) for n in state)
    assert all("lora_" in n for n in state if n.startswith("llm."))
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(state)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "ckpt.safetensors")

    # A new model (as at inference: fresh process state, same config and work dir).
    torch.manual_seed(123)
    fresh = AffectGPT(model_cfg(), model.modalities, tokenizer_corpus=["other text entirely"],
                      work_dir=tmp_path, feature_dims={"au": AU_DIM})
    assert fresh.tokenizer.get_vocab() == model.tokenizer.get_vocab()  # reloaded, not retrained
    assert set(fresh.trainable_state_dict()) == set(state)              # stable names
    fresh.load_trainable_state_dict(load_file(tmp_path / "ckpt.safetensors"))
    model.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(model(batch).logits, fresh(batch).logits)

    with pytest.raises(InputError, match="missing"):
        fresh.load_trainable_state_dict({k: v for k, v in state.items() if "fusion.au" not in k})


def test_generate_one_string_per_item_and_padding_does_not_matter():
    model = build()
    batch = make_batch(model.modalities, au_mask=(True, True, False))
    del batch["answers"]
    both = model.generate(batch)
    assert len(both) == 3 and all(isinstance(s, str) for s in both)
    # Item 0 has the shortest prompt, so it is left-padded in the batch; alone it is not.
    alone = model.generate({k: v[:1] for k, v in batch.items()})
    assert alone == both[:1]


@pytest.mark.parametrize("au_mode", ["features", "values", "hybrid"])
def test_masked_au_is_ignored_and_finite(au_mode):
    model = build(fusion={"multi": "mean", "audio": "mean", "face": "mean", "frame": "mean"},
                  au_mode=au_mode)
    model.eval()
    batch = make_batch(model.modalities, au_mask=(False, False))
    out = model(batch)
    assert math.isfinite(out.loss.item())
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # A masked video's AU input (features and values) does not reach the LLM at all.
    other = dict(batch, au=batch["au"] * 100 + 7, au_values=5 - batch["au_values"])
    with torch.no_grad():
        assert torch.allclose(model(batch).logits, model(other).logits, atol=1e-5)
    # ...while a valid video's do.
    valid = dict(batch, au_mask=torch.tensor([True, True]))
    with torch.no_grad():
        for key in {"features": ["au"], "values": ["au_values"], "hybrid": ["au", "au_values"]}[au_mode]:
            assert not torch.allclose(model(valid).logits, model(dict(valid, **{key: other[key]})).logits)


def test_encoders_are_frozen():
    model = build()
    model.train()
    assert not model.visual_encoder.training and not model.audio_encoder.training
    batch = make_batch(model.modalities)
    model(batch).loss.backward()
    for enc in (model.visual_encoder, model.audio_encoder):
        assert all(not p.requires_grad and p.grad is None for p in enc.parameters())
    frozen_base = [p for n, p in model.llm.named_parameters() if "lora_" not in n]
    assert frozen_base and all(p.grad is None for p in frozen_base)


def test_precomputed_encoder_features(tmp_path):
    """encoder_feature_dir: no encoders; widths read from the stored .npy files."""
    dims = {"face": 20, "frame": 24, "audio": 28}
    for name, d in dims.items():
        (tmp_path / name).mkdir()
        np.save(tmp_path / name / "vid0.npy", np.zeros((FRAMES, d), dtype=np.float16))
    model = build(encoder_feature_dir=str(tmp_path))
    assert model.visual_encoder is None and model.audio_encoder is None
    assert {k: model.input_dims[k] for k in dims} == dims
    out = model(make_batch(model.modalities, features=dims))
    assert math.isfinite(out.loss.item())
    with pytest.raises(InputError, match="no <name>.npy"):
        build(encoder_feature_dir=str(tmp_path / "empty"))


@pytest.mark.parametrize("kind", list(FUSIONS))
def test_fusion_fully_masked_item_is_zero_not_nan(kind):
    cfg = model_cfg()
    fuse = build_fusion(kind, 10, 32, cfg)
    x = torch.randn(3, 5, 10)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False], [False] * 5])
    out = fuse(x, mask)
    assert out.shape == (3, fuse.num_tokens, 32) and torch.isfinite(out).all()
    assert torch.equal(out[2], torch.zeros_like(out[2]))
    # Masked inputs do not change the result.
    x2 = x.clone()
    x2[1, 2:] = 1000.0
    fuse.eval()
    assert torch.allclose(fuse(x, mask)[1], fuse(x2, mask)[1], atol=1e-5)


def test_plain_prompt_without_chat_template():
    model = build("audio_text")
    model.tokenizer.chat_template = None
    batch = make_batch(model.modalities)
    prompt = model.render(model.user_text(batch, 0))
    assert prompt.startswith("### Human: <Audio><AudioHere>") and prompt.endswith("### Assistant: ")
    assert math.isfinite(model(batch).loss.item())


def test_long_subtitle_is_cut_to_max_length_and_placeholders_cannot_be_injected():
    model = build("face_text", max_length=120)
    batch = make_batch(model.modalities)
    batch["subtitles"][1] = "hello there " * 200 + PLACEHOLDERS["face"]
    ids, attn, labels = model.tokenize(batch, with_answers=True, padding_side="right")
    assert ids.shape[1] <= 120
    assert (labels[1] != -100).any()                  # the answer survived
    assert int((ids[1] == model.placeholder_ids["face"]).sum()) == model.fusion["face"].num_tokens
    assert math.isfinite(model(batch).loss.item())


def test_bad_config_values_name_the_key():
    with pytest.raises(InputError, match="model.fusion.face"):
        build("face_text", fusion={"multi": "qformer", "audio": "qformer", "face": "avg",
                                   "frame": "qformer"})
    with pytest.raises(InputError, match="width 13"):
        model = build("face_au_text")
        batch = make_batch(model.modalities)
        model(dict(batch, au=torch.randn(2, T, AU_DIM + 1)))
    with pytest.raises(InputError, match="model.au_mode: 'value' is not one of features, text, "
                                         "values, hybrid; did you mean 'values'"):
        build("face_au_text", au_mode="value")
    model = build("face_au_text", au_mode="hybrid")
    batch = make_batch(model.modalities)
    with pytest.raises(InputError, match="AU values have width 17"):
        model(dict(batch, au_values=batch["au_values"][..., :17]))
    with pytest.raises(InputError, match="do not cover the same frames"):
        model(dict(batch, au_values=batch["au_values"][:, :2]))
    with pytest.raises(InputError, match="batch has no 'au_values'"):
        model({k: v for k, v in batch.items() if k != "au_values"})


def test_values_mode_needs_no_text_feature_width_and_checkpoints_refuse_another_mode(tmp_path):
    """values: built without any AU feature width (no text encoder exists in this mode); a
    checkpoint says its au_mode and refuses, in one line, a model of another mode."""
    from my_affectgpt.models.affectgpt_checkpoints import load_checkpoint, save_trainable

    mods = parse_face_or_frame("face_au_text")
    torch.manual_seed(0)
    values = AffectGPT(model_cfg(au_mode="values"), mods, tokenizer_corpus=CORPUS, work_dir=tmp_path)
    assert "au" not in values.input_dims and values.input_dims["au_values"] == NUM_AU_VALUES
    batch = {k: v for k, v in make_batch(mods).items() if k not in ("au", "au_text")}
    assert math.isfinite(values(batch).loss.item())
    ckpt = tmp_path / "checkpoint_000000.safetensors"
    save_trainable(ckpt, values.trainable_state_dict(), {"au_mode": values.au_mode})
    for mode in ("features", "text", "hybrid"):
        other = build("face_au_text", work_dir=tmp_path, au_mode=mode)
        with pytest.raises(InputError, match=f"trained with model.au_mode=values, but this config "
                                             f"has model.au_mode={mode}") as err:
            load_checkpoint(other, ckpt)
        assert "\n" not in str(err.value)
    again = AffectGPT(model_cfg(au_mode="values"), mods, tokenizer_corpus=CORPUS, work_dir=tmp_path)
    load_checkpoint(again, ckpt)
    saved = values.trainable_state_dict()
    assert all(torch.equal(p, saved[n]) for n, p in again.trainable_state_dict().items())


def test_local_model_folders(tmp_path):
    """llm_model / visual_encoder / audio_encoder as local Hugging Face folders: the LLM's own
    tokenizer and chat template, the placeholder tokens added to it."""
    from transformers import CLIPVisionConfig, CLIPVisionModel, HubertConfig, HubertModel

    from tiny_llm import make_tiny_qwen2

    llm = make_tiny_qwen2(tmp_path / "llm")
    CLIPVisionModel(CLIPVisionConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, patch_size=8, image_size=IMAGE)
                    ).save_pretrained(tmp_path / "clip")
    HubertModel(HubertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=32, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                             num_conv_pos_embedding_groups=4)).save_pretrained(tmp_path / "hubert")
    model = build("multiframe_audio_frame_au_text", llm_model=str(llm),
                  visual_encoder=str(tmp_path / "clip"), audio_encoder=str(tmp_path / "hubert"))
    assert model.visual_encoder.image_size == IMAGE
    assert all(p in model.tokenizer.get_vocab() for p in PLACEHOLDERS.values())
    assert model.llm.get_base_model().get_input_embeddings().num_embeddings >= len(model.tokenizer)
    batch = make_batch(model.modalities)
    assert model.render(model.user_text(batch, 0)).startswith("<|im_start|>user\n<Multi>")
    assert math.isfinite(model(batch).loss.item())
    assert len(model.generate(batch, max_new_tokens=3)) == 2
    with pytest.raises(InputError, match="config.json"):
        build("audio_text", audio_encoder=str(tmp_path / "nowhere"))
