"""Rule teacher + lexicon: the teacher names exactly the active AUs, each once, with the right
intensity word, no emotion words, within CLIP's context; both the teacher's own lexicon and the
independent judge read that back."""
from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from my_affectgpt.au.facs import (ACTION_UNITS, ALL_CODES, DEFAULT_BANDS, EMOTION_PROTOTYPES,
                                  INTENSITY_CODES, PRESENCE_ONLY, IntensityBands, active_aus,
                                  au_state_text)
from my_affectgpt.au.lexicon import emotion_words, mentioned_aus, mentioned_bands
from my_affectgpt.au.teacher import NEUTRAL_SENTENCE, RuleTeacher
from my_affectgpt.common.clip_tokens import CLIP_CONTEXT, clip_token_count
from my_affectgpt.au.judge import read_description

intensity = st.one_of(st.just(0.0), st.floats(0, 5, allow_nan=False), st.sampled_from([0.45, 0.5, 0.95, 1.0, 2.0, 3.95, 4.0, 5.0]))
au_state = st.fixed_dictionaries(
    {f"{c}_r": intensity for c in INTENSITY_CODES} | {"AU28_c": st.sampled_from([0.0, 1.0])})


@settings(max_examples=3000, deadline=None)
@given(au=au_state)
def test_rule_teacher_mentions_exactly_the_active_aus_with_their_bands(au):
    active = active_aus(au)
    text = RuleTeacher().describe(active)
    _assert_faithful(active, text)
    if not active:
        assert text == NEUTRAL_SENTENCE


def _assert_faithful(active, text):
    """Every active AU named exactly once, with its band, nothing else, within CLIP's context."""
    assert mentioned_aus(text) == set(active), text
    for code in active:
        assert len(re.findall(f"{ACTION_UNITS[code].pattern}", text, re.I)) == 1, (code, text)
    expected = {c: DEFAULT_BANDS.band(v) for c, v in active.items() if c not in PRESENCE_ONLY}
    bands = mentioned_bands(text)
    assert {c: bands[c] for c in expected} == expected, text
    assert emotion_words(text) == [], text
    assert not re.search(r"\bAU ?\d", text), text  # words only: codes mean nothing to CLIP
    assert clip_token_count(text) <= CLIP_CONTEXT, text
    reading = read_description(text)  # the independent judge reads the same
    assert set(reading.present) == set(active) and not reading.absent, text
    assert {c: reading.present[c] for c in expected} == expected, text


# Long states: real OpenFace frames reach 13 active AUs; the teacher must hold up to all 18.
many_active = st.fixed_dictionaries(
    {f"{c}_r": st.floats(0.5, 5, allow_nan=False) for c in INTENSITY_CODES}
    | {"AU28_c": st.sampled_from([0.0, 1.0])}).flatmap(
    lambda full: st.sets(st.sampled_from(sorted(full)), min_size=11).map(
        lambda keep: {k: v for k, v in full.items() if k in keep}))


@settings(max_examples=1500, deadline=None)
@given(au=many_active)
def test_long_states_up_to_all_18_aus_are_described_whole_within_clip(au):
    _assert_faithful(active_aus(au), RuleTeacher().describe(active_aus(au)))


def test_all_18_aus_in_all_five_bands_use_the_compact_wording():
    values = (0.7, 1.5, 2.5, 3.5, 4.5)
    au = {f"{c}_r": values[i % 5] for i, c in enumerate(INTENSITY_CODES)} | {"AU28_c": 1.0}
    text = RuleTeacher().describe(active_aus(au))
    assert text.startswith("Maximal ") and text.endswith(" Lip suck.")
    _assert_faithful(active_aus(au), text)
    assert clip_token_count(text) == 76  # the worst case: every AU, every band


def test_neutral_wording_and_state_text():
    assert au_state_text({}) == "neutral"
    assert RuleTeacher().describe({}) == NEUTRAL_SENTENCE
    state = active_aus({"AU06_r": 2.13, "AU12_r": 3.2, "AU25_r": 0.96, "AU01_r": 0.2, "AU28_c": 1})
    assert au_state_text(state) == ("AU06 cheek raiser 2.1; AU12 lip corner puller 3.2; "
                                    "AU25 lips part 1.0; AU28 lip suck present")


def test_canonical_wording_by_region_top_to_bottom():
    state = active_aus({"AU26_r": 2.0, "AU01_r": 2.0, "AU12_r": 3.4, "AU09_r": 0.7, "AU45_r": 1.2})
    assert RuleTeacher().describe(state) == (
        "Brows: marked inner brow raiser. Eyes: slight blink. Nose: faint nose wrinkler. "
        "Mouth: strong lip corner puller. Chin and jaw: marked jaw drop.")


def test_long_descriptions_switch_to_the_compact_wording_only_when_needed():
    ten = active_aus({f"{c}_r": 4.5 for c in INTENSITY_CODES[:10]})
    assert RuleTeacher().describe(ten).startswith("Brows: maximal")  # any 10 AUs fit by region
    eleven = active_aus({f"{c}_r": 4.5 for c in ("AU01", "AU02", "AU04", "AU05", "AU07", "AU10",
                                                 "AU12", "AU14", "AU15", "AU17", "AU20")})
    text = RuleTeacher().describe(eleven)
    assert text.startswith("Maximal inner brow raiser, outer brow raiser")
    _assert_faithful(eleven, text)


def test_configurable_bands_change_activation_and_wording():
    bands = IntensityBands(active=1.5, edges=(2.0, 2.5, 3.0, 4.5))
    state = active_aus({"AU04_r": 1.2, "AU12_r": 2.2}, bands)
    assert state == {"AU12": 2.2}
    text = RuleTeacher(bands).describe(state)
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
