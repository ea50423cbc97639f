"""Rule teacher + lexicon: the teacher names exactly the active AUs, with the right intensity
word, no emotion words, and the lexicon (reused to score the AU Agent) reads that back."""
from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from my_affectgpt.au.facs import (ACTION_UNITS, ALL_CODES, DEFAULT_BANDS, EMOTION_PROTOTYPES,
                                  INTENSITY_CODES, PRESENCE_ONLY, IntensityBands, active_aus,
                                  au_state_text)
from my_affectgpt.au.lexicon import emotion_words, mentioned_aus, mentioned_bands
from my_affectgpt.au.teacher import NEUTRAL_SENTENCES, RuleTeacher
from my_affectgpt.common.clip_tokens import CLIP_CONTEXT, clip_token_count

intensity = st.one_of(st.just(0.0), st.floats(0, 5, allow_nan=False), st.sampled_from([0.45, 0.5, 0.95, 1.0, 2.0, 3.95, 4.0, 5.0]))
au_state = st.fixed_dictionaries(
    {f"{c}_r": intensity for c in INTENSITY_CODES} | {"AU28_c": st.sampled_from([0.0, 1.0])})


@settings(max_examples=3000, deadline=None)
@given(au=au_state, key=st.text(max_size=8), seed=st.integers(0, 3))
def test_rule_teacher_mentions_exactly_the_active_aus_with_their_bands(au, key, seed):
    active = active_aus(au)
    text = RuleTeacher(seed=seed).describe(active, key=key)
    assert mentioned_aus(text) == set(active), text
    expected = {c: None if c in PRESENCE_ONLY else DEFAULT_BANDS.band(v) for c, v in active.items()}
    assert mentioned_bands(text) == expected, text
    assert emotion_words(text) == [], text
    assert not re.search(r"\bAU ?\d", text), text  # words only: codes mean nothing to CLIP
    if len(active) <= 10:  # the plainest wording fits any 10 AUs (the 11 longest do not)
        assert clip_token_count(text) <= CLIP_CONTEXT, text
    if not active:
        assert text in NEUTRAL_SENTENCES


def test_neutral_wording_and_state_text():
    assert au_state_text({}) == "neutral"
    assert "neutral" in RuleTeacher().describe({}, key="x").lower()
    state = active_aus({"AU06_r": 2.13, "AU12_r": 3.2, "AU25_r": 0.96, "AU01_r": 0.2, "AU28_c": 1})
    assert au_state_text(state) == ("AU06 cheek raiser 2.1; AU12 lip corner puller 3.2; "
                                    "AU25 lips part 1.0; AU28 lip suck present")


def test_phrasing_is_seeded_and_varied():
    state = active_aus({"AU04_r": 2.5, "AU07_r": 1.5, "AU23_r": 3.1})
    t = RuleTeacher(seed=0)
    assert t.describe(state, key="v:1") == t.describe(state, key="v:1")
    assert len({t.describe(state, key=f"v:{i}") for i in range(30)}) >= 10
    assert RuleTeacher(seed=1).describe(state, key="v:1") != t.describe(state, key="v:1") or \
        RuleTeacher(seed=2).describe(state, key="v:1") != t.describe(state, key="v:1")


def test_regions_are_described_top_to_bottom():
    state = active_aus({"AU26_r": 2.0, "AU01_r": 2.0, "AU12_r": 2.0, "AU09_r": 2.0})
    text = RuleTeacher().describe(state, key="k")
    pos = [re.search(ACTION_UNITS[c].pattern, text, re.I).start() for c in ("AU01", "AU09", "AU12", "AU26")]
    assert pos == sorted(pos)


def test_long_descriptions_fall_back_to_the_plainest_wording_that_fits_clip():
    state = active_aus({f"{c}_r": 4.5 for c in ("AU01", "AU02", "AU04", "AU05", "AU07", "AU12", "AU26")})
    texts = {RuleTeacher().describe(state, key=f"k{i}") for i in range(20)}
    plain = [t for t in texts if t.startswith("Brows: maximal")]
    assert plain and len(texts) > len(plain)  # some keys' varied wording is too long, some is not
    assert all(clip_token_count(t) <= CLIP_CONTEXT and mentioned_aus(t) == set(state) for t in texts)


def test_configurable_bands_change_activation_and_wording():
    bands = IntensityBands(active=1.5, edges=(2.0, 2.5, 3.0, 4.5))
    state = active_aus({"AU04_r": 1.2, "AU12_r": 2.2}, bands)
    assert state == {"AU12": 2.2}
    text = RuleTeacher(bands).describe(state, key="k")
    assert mentioned_bands(text) == {"AU12": "slight"}


def test_lexicon_reads_free_text_paraphrases():
    text = ("The inner brows are raised slightly, with strong lowering of the brows; "
            "the lips parted and a marked upward pull of the lip corners (AU12).")
    assert mentioned_aus(text) == {"AU01", "AU04", "AU12", "AU25"}
    assert mentioned_bands("a marked lip corner puller and a faint chin raiser") == \
        {"AU12": "marked", "AU17": "trace"}
    assert "AU10" not in mentioned_aus("AU1 and AU12")
    assert emotion_words("She looks Happy, not sad.") == ["happy", "sad"]


def test_prototypes_use_known_codes_and_every_au_has_names():
    for proto in EMOTION_PROTOTYPES.values():
        assert set(proto) <= set(ALL_CODES)
    for code in ALL_CODES:
        au = ACTION_UNITS[code]
        assert all(mentioned_aus(p) == {code} for p in au.phrases), code
        assert mentioned_aus(au.name) == {code}
