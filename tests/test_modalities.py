"""face_or_frame parsing into modality tokens."""
from __future__ import annotations

import pytest

from my_affectgpt.common.errors import InputError
from my_affectgpt.datasets.modalities import TOKENS, Modalities, parse_face_or_frame

VARIANTS = {
    # value: (ordered tokens, multi_visual, visual inputs, needs audio)
    "multiface_audio_face_text": (("multi", "audio", "face", "text"), "face", {"face"}, True),
    "multiframe_audio_frame_text": (("multi", "audio", "frame", "text"), "frame", {"frame"}, True),
    "multiface_audio_face_frame_text": (("multi", "audio", "face", "frame", "text"), "face",
                                        {"face", "frame"}, True),
    "audio_text": (("audio", "text"), None, set(), True),
    "face_text": (("face", "text"), None, {"face"}, False),
    "frame_text": (("frame", "text"), None, {"frame"}, False),
    "text": (("text",), None, set(), False),
    "multiface_audio_face_frame_au_text": (("multi", "audio", "face", "frame", "au", "text"), "face",
                                           {"face", "frame"}, True),
    "multiface_audio_face_au_text": (("multi", "audio", "face", "au", "text"), "face", {"face"}, True),
    "multiframe_text": (("multi", "text"), "frame", {"frame"}, True),
    "au_text": (("au", "text"), None, set(), False),
    "au": (("au",), None, set(), False),
}


@pytest.mark.parametrize("value", list(VARIANTS))
def test_every_variant_parses(value):
    ordered, multi_visual, visual, audio = VARIANTS[value]
    m = parse_face_or_frame(value)
    assert m.ordered == ordered
    assert m.tokens == frozenset(ordered)
    assert m.multi_visual == multi_visual
    assert m.visual_inputs == frozenset(visual)
    assert m.needs_audio is audio
    for token in TOKENS:
        assert (token in m) is (token in ordered)
    assert parse_face_or_frame(m.name) == m


def test_order_does_not_matter_and_tokens_are_the_prompt_order():
    assert parse_face_or_frame("text_au_face_audio_multiface") == parse_face_or_frame("multiface_audio_face_au_text")
    assert TOKENS == ("multi", "audio", "face", "frame", "au", "text")


@pytest.mark.parametrize("value,match", [
    ("multiface_audio_faces_text", "unknown modality token 'faces'.*did you mean 'face'"),
    ("video_text", "unknown modality token 'video'"),
    ("audio_audio_text", "'audio' twice"),
    ("multiface_multiframe_text", "multiface and multiframe together"),
    ("multiface_multiface", "multiface and multiframe together|twice"),
    ("", "at least one"),
    ("   ", "at least one"),
    ("audio__text", "unknown modality token ''"),
    (None, "at least one"),
])
def test_bad_values_fail(value, match):
    with pytest.raises(InputError, match=match) as err:
        parse_face_or_frame(value)
    assert err.value.path == "face_or_frame"


def test_modalities_rejects_inconsistent_construction():
    with pytest.raises(InputError):
        Modalities(frozenset({"multi", "text"}), None)
    with pytest.raises(InputError):
        Modalities(frozenset({"text"}), "face")
    with pytest.raises(InputError):
        Modalities(frozenset({"video"}))
