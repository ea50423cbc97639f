"""The AU judge reads any writer (guideline v2/v3): FACS notation, everyday and clinical words,
denials after a list, contrast, regions, closed lips and "un-" words, muscles as agents, glosses,
Observed / Not observed lists, band words of any register. Every sentence here is our own, not
from a gold set."""
from __future__ import annotations

import pytest

from my_affectgpt.au.judge import agreement, judge_scores, read_description


def present(text: str) -> dict:
    return read_description(text).present


def codes(text: str) -> set:
    return set(present(text))


# --- any writer (guideline v2/v3): FACS notation, lay words, negation, regions, bands -------------
@pytest.mark.parametrize("text, expected", [
    ("6C+12D+25B", {"AU06": "marked", "AU12": "severe", "AU25": "slight"}),
    ("R14A", {"AU14": "trace"}), ("AU 4B", {"AU04": "slight"}), ("au04e", {"AU04": "maximum"}),
    ("AU1 at C", {"AU01": "marked"}), ("AU12: D, AU6: B", {"AU12": "severe", "AU06": "slight"}),
    ("1B 5D 7C 28 45E", {"AU01": "slight", "AU05": "severe", "AU07": "marked", "AU28": None,
                         "AU45": "maximum"}),
    ("AUs 6 and 12", {"AU06": None, "AU12": None}), ("AU6 B/C", {"AU06": "unclear"}),
    ("AU12 at a moderate level", {"AU12": "marked"}),          # "a" is an article, not grade A
    ("AU04: 2.24, AU07: 1.87", {"AU04": "marked", "AU07": "slight"}),   # values, not codes
    ("The frame was rendered in 3D.", {}),
])
def test_facs_notation(text, expected):
    assert present(text) == expected


@pytest.mark.parametrize("text, expected, absent, unmapped", [
    ("9 and 10 coded absent. 6C+12D", {"AU06": "marked", "AU12": "severe"}, ("AU09", "AU10"), ()),
    ("1B+2B+27B", {"AU01": "slight", "AU02": "slight"}, (), ("AU27",)),
    ("AU24 (lips pressed together)", {}, (), ("AU24",)),      # a gloss is its code's
    ("Eyes held in a slit (AU42).", {}, (), ("AU42",)),
    ("Absent: 9, 15. 4C+7B", {"AU04": "marked", "AU07": "slight"}, ("AU09", "AU15"), ()),
    ("Neg: AU 04, AU 23. AU 06 C", {"AU06": "marked"}, ("AU04", "AU23"), ()),
    ("1C+2C+5B, 26 not present.", {"AU01": "marked", "AU02": "marked", "AU05": "slight"},
     ("AU26",), ()),
    ("AU15 = 0; AU17 not scored; no 4", {}, ("AU04", "AU15", "AU17"), ()),
])
def test_facs_coder_denials_and_codes_outside_the_18(text, expected, absent, unmapped):
    r = read_description(text)
    assert (r.present, r.absent, r.unmapped) == (expected, absent, unmapped), r.to_json()


@pytest.mark.parametrize("text, codes_", [
    ("Her brows fly up.", {"AU01", "AU02"}), ("His eyes go round.", {"AU05"}),
    ("He squeezes his eyes shut.", {"AU07", "AU45"}), ("She screws her eyes up.", {"AU07"}),
    ("Her lips are pressed into a thin, bloodless line.", {"AU23"}),
    ("The mouth hangs open.", {"AU25", "AU26"}), ("His chin puckers.", {"AU17"}),
    ("The brows go up.", {"AU01", "AU02"}), ("One eyebrow cocked.", {"AU01", "AU02"}),
    ("The jaw hangs slack.", {"AU26"}), ("A snarl.", {"AU10"}), ("Her eyes smile.", {"AU06"}),
    ("Brows up, corners down.", {"AU01", "AU02", "AU15"}),
    ("The inner ends of her brows climb.", {"AU01"}), ("The outer tips arch.", {"AU02"}),
    ("His eyes bug out.", {"AU05"}), ("Lips well apart.", {"AU25"}),
    ("The corners get dragged way, way down.", {"AU15"}),
    ("The lips tighten, and then they get sucked in.", {"AU23", "AU28"}),   # pronouns
    ("A small gap between the lips.", {"AU25"}),
    ("Trace DAO; LLS mild; orbital orbicularis marked.", {"AU06", "AU10", "AU15"}),
    ("Nasal dorsum wrinkled; mentum puckered.", {"AU09", "AU17"}),
    ("He lifted his chin defiantly.", set()),                   # the head, not the chin raiser
    ("No eye movement.", set()),
])
def test_everyday_and_clinical_words(text, codes_):
    assert codes(text) == codes_, read_description(text).to_json()


@pytest.mark.parametrize("text, present_codes, absent", [
    ("A raise of the brows, a squint and a sneer are all missing.", set(),
     {"AU01", "AU02", "AU07", "AU10"}),
    ("AU09 and AU10 coded absent.", set(), {"AU09", "AU10"}),
    ("Instead of a smile, a frown.", {"AU04"}, {"AU12"}),
    ("Rather than frowning, she smiles.", {"AU12"}, {"AU04"}),
    ("Only a smile, not a frown.", {"AU12"}, {"AU04"}),
    ("A smile but no cheek raise.", {"AU12"}, {"AU06"}),
    ("Lid tightening is nowhere to be seen.", set(), {"AU07"}),
    ("No brow movement.", set(), {"AU01", "AU02", "AU04"}),
    ("The mouth is still.", set(), {"AU10", "AU12", "AU14", "AU15", "AU20", "AU23", "AU25",
                                    "AU26", "AU28"}),
    ("The mouth is still open.", {"AU25", "AU26"}, set()),       # "still" = yet
    ("Nothing moves around the eyes.", set(), {"AU05", "AU07", "AU45"}),
    ("The upper face is motionless.", set(), {"AU01", "AU02", "AU04", "AU05", "AU06", "AU07",
                                              "AU45"}),
    ("No mouth movement except a slight parting of the lips.", {"AU25"},
     {"AU10", "AU12", "AU14", "AU15", "AU20", "AU23", "AU26", "AU28"}),
    ("Above, almost nothing: a faint lift of the inner brows.", {"AU01"}, set()),
    # guideline rule 3c
    ("The lips stay closed.", set(), {"AU25"}), ("The mouth is shut.", set(), {"AU25", "AU26"}),
    ("The jaw stays shut; the eyes are closed.", {"AU45"}, {"AU26"}),
    ("The outer brows remain unraised and the nose unwrinkled.", set(), {"AU02", "AU09"}),
    ("The inner brows stay put.", set(), {"AU01"}),
    ("Orbicularis oris not tightened.", set(), {"AU23"}),
])
def test_denials_of_any_writer(text, present_codes, absent):
    r = read_description(text)
    assert set(r.present) == present_codes and set(r.absent) == absent, r.to_json()


@pytest.mark.parametrize("text, band", [
    ("A touch of a smile.", "trace"), ("The faintest smile.", "trace"), ("A tiny smile.", "trace"),
    ("A soft smile.", "slight"), ("An obvious smile.", "marked"), ("A fairly strong smile.", "severe"),
    ("He smiles hard.", "severe"), ("A really strong smile.", "maximum"),
    ("The brows are raised ever so slightly.", "trace"), ("The lips part a hair.", "trace"),
    ("A mild to moderate smile.", "unclear"), ("A slight-to-marked smile.", "unclear"),
    ("A moderate, possibly strong smile.", "unclear"), ("A moderate to moderate smile.", "marked"),
])
def test_band_words_of_any_writer(text, band):
    got = present(text)
    assert list(got.values()) and set(got.values()) == {band}, got


def test_a_band_closing_its_phrase_stays_with_it():
    r = read_description("Medial frontalis marked, lateral frontalis trace.")
    assert r.present == {"AU01": "marked", "AU02": "trace"}


def test_unclear_band_counts_as_no_band_in_scores():
    scores = judge_scores([({"AU12_r": 2.5}, "A mild to moderate smile.")])
    assert scores["au_f1"] == 1.0 and scores["band_stated_rate"] == 0.0
    same = agreement([{"present": {"AU12": "unclear"}}], [{"present": {"AU12": "marked"}}])
    assert same["present_f1"] == 1.0 and same["band_n"] == 0


@pytest.mark.parametrize("text, expected, absent", [
    # a muscle named as the agent of another AU's movement asserts the movement only
    ("Orbicularis oris rolls the lips inward.", {"AU28": None}, ()),
    ("Orbicularis oris is slightly tightened, and the lips roll inward.",
     {"AU23": "slight", "AU28": None}, ()),
    # a muscle's own action negated is a denial; an adjective of rest is not
    ("Risorius does not stretch the mouth.", {}, ("AU20",)),
    ("Buccinator produces no dimpling.", {}, ("AU14",)),
    ("The medial frontalis shows no recruitment.", {}, ("AU01",)),
    ("Mentalis is silent.", {}, ()), ("The corrugator-procerus complex is relaxed.", {}, ()),
    # a code after a phrase: the phrase is its gloss
    ("Jaw lowered, teeth apart (26B).", {"AU26": "slight"}, ()),
    ("The mouth is forced open, the jaw pulled far down (mouth stretch).", {}, ()),
])
def test_muscles_as_agents_and_glosses(text, expected, absent):
    r = read_description(text)
    assert (r.present, r.absent) == (expected, absent), r.to_json()


def test_answers_laid_out_as_observed_and_not_observed():
    text = ("**Observed:**\n- Strong brow lowering\n- Slight lip parting\n\n**Not observed:**\n"
            "- Cheek raise\n- Lip corner pull (no smile)\n\nThis looks like anger.")
    r = read_description(text)
    assert r.present == {"AU04": "severe", "AU25": "slight"}
    assert set(r.absent) == {"AU06", "AU12"}


def test_a_bullet_takes_the_part_of_its_heading():
    r = read_description("**Brows**\n- A slight lift at the inner ends\n- Mild lowering as well\n"
                         "**Mouth**\n- Lips barely parted")
    assert r.present == {"AU01": "slight", "AU04": "slight", "AU25": "trace"}


@pytest.mark.parametrize("text, expected", [
    ("The cheeks are pushed up severely.", {"AU06": "severe"}),
    ("Chin pushed up a touch.", {"AU17": "trace"}),
    ("Outer tips of the brows faintly up — nothing else.", {"AU02": "trace"}),
    ("The medial brow corners are pulled up.", {"AU01": None}),
    ("A faint lift at both the inner and outer ends of the brows.", {"AU01": "trace", "AU02": "trace"}),
    ("Horizontal lines mid-forehead.", {"AU01": None}),
    ("The inner ends are not raised, and a faint frown shows.", {"AU04": "trace"}),
    ("Head tilted back, chin up.", {}),
])
def test_more_everyday_constructions(text, expected):
    assert present(text) == expected, read_description(text).to_json()


@pytest.mark.parametrize("text, expected, absent", [
    ("his eyes r a lil wider than normal n the brows kinda pulled down", {"AU04": None, "AU05": "slight"}, ()),
    ("The outer ends of her brows arent raised tho, and her jaw isnt dropped.", {}, ("AU02", "AU26")),
    ("The inner ends of Maria's brows go up.", {"AU01": None}, ()),
    ("His eyes open a little wider than usual.", {"AU05": "slight"}, ()),
    ("Her eyes fly open, whites showing above the iris.", {"AU05": None}, ()),
    ("The corners of his mouth sink a hair.", {"AU15": "trace"}, ()),
    ("The lips sit well apart.", {"AU25": None}, ()),
    ("The lower face stays still instead of crumpling.", {},
     ("AU09", "AU10", "AU12", "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU28")),
    ("No bunny lines.", {}, ("AU09",)),
    ("Zygomaticus major not lifting the corners.", {}, ("AU12",)),
    ("Both lips sucked inward over the teeth by orbicularis oris.", {"AU28": None}, ()),
    ("AU06 (Cheek Raiser) is not active.", {}, ("AU06",)),
    ("The brows are lowered, with their inner ends not raised, above a mouth whose corners "
     "are pulled down.", {"AU04": None, "AU15": None}, ("AU01",)),
    ("The eyes are only narrow slits.", {}, ()),
    ("| Region | Observation |\n|---|---|\n| Upper lip | barely raised |\n| Jaw | dropped |",
     {"AU10": "trace", "AU26": None}, ()),
    ("A faint sideways stretch.", {"AU20": "trace"}, ()),
])
def test_third_round_constructions(text, expected, absent):
    r = read_description(text)
    assert (r.present, r.absent) == (expected, absent), r.to_json()


@pytest.mark.parametrize("text, expected, absent", [
    # FACS codes spoken and transcribed
    ("Action unit four, trace.", {"AU04": "trace"}, ()),
    ("A U six at C, twelve D, and no twenty-three.", {"AU06": "marked", "AU12": "severe"}, ("AU23",)),
    ("Nine B, one at A, plus a twenty-eight.", {"AU01": "trace", "AU09": "slight", "AU28": None}, ()),
    ("There were two lines at the corner of one eye.", {}, ()),          # not a coder's text
    # structured answers
    ('{"upper_lids": "raised to the extreme", "dimples": "none", "lip_corners": "a trace downward"}',
     {"AU05": "severe", "AU15": "trace"}, ("AU14",)),
    ("brows: inner ends resting, not lifted\nabsent_actions: [cheek raise, jaw drop]",
     {}, ("AU01", "AU06", "AU26")),
    ("lips: tightened noticeably and sucked in between the teeth", {"AU23": "marked", "AU28": None}, ()),
    ("brows: lowering; trace of outer lift", {"AU02": "trace", "AU04": None}, ()),
    # more everyday and clinical words
    ("The inside part of her eyebrows goes up a tiny bit.", {"AU01": "trace"}, ()),
    ("Lips is a little bit open.", {"AU25": "slight"}, ()),
    ("Head extended, chin tipped up.", {}, ()),
    ("Slight mandibular descent.", {"AU26": "slight"}, ()),
    ("Lateral frontalis nil.", {}, ()),
    ("A faint lift at the centre of the upper lip.", {}, ()),          # not the inner brows
    ("Zygomaticus minor (the lesser zygomatic muscle) deepens the fold.", {}, ()),
])
def test_fourth_round_constructions(text, expected, absent):
    r = read_description(text)
    assert (r.present, r.absent) == (expected, absent), r.to_json()


@pytest.mark.parametrize("text, expected, absent", [
    # detector-style output: a code, its name, then the value or band
    ("AU07 lid tightener 2.2 | AU17 chin raiser 0.9", {"AU07": "marked", "AU17": "trace"}, ()),
    ("AU26 jaw drop: severe", {"AU26": "severe"}, ()),
    ("AU14 (dimpler) 1.1", {"AU14": "slight"}, ()),
    ("AU04 brow lowerer fell below the presence threshold.", {}, ("AU04",)),
    ("AU23 reads 0.0 in this frame", {}, ("AU23",)),
    # region headings with nothing under them
    ("Cheeks: none. Mouth: corners up, slight.", {"AU12": "slight"}, ("AU06",)),
    # clinical abbreviations
    ("Orb. oris moderately tightened.", {"AU23": "marked"}, ()),
    ("Pretarsal orb. oculi mild; ZM strong.", {"AU07": "slight", "AU12": "severe"}, ()),
    # everyday limits and small amounts
    ("His cheeks went up as far as they could go.", {"AU06": "maximum"}, ()),
    ("She dropped her jaw all the way.", {"AU26": "maximum"}, ()),
    ("The upper lip twitched up by a hair.", {"AU10": "trace"}, ()),
    ("The corners slipped a little downward.", {"AU15": "slight"}, ()),
    ("Both the inside and the outside ends of his brows went up.", {"AU01": None, "AU02": None}, ()),
    ("The outside ends of the brows lifted.", {"AU02": None}, ()),
    ("He wrinkled up his nose a bit.", {"AU09": "slight"}, ()),
    ("His mouth was, um, pulled out to the sides.", {"AU20": None}, ()),
    ("The brows drew down and together.", {"AU04": None}, ()),
    ("His lips went thin.", {"AU23": None}, ()),
    ("her thin lips", {}, ()),                                          # a shape, not a movement
    ("The medial corners of the brows pulled up to the limit.", {"AU01": "maximum"}, ()),
    # a field separator ends a code's gloss and a denial list
    ("AU10=slight | absent: AU04, AU15 | note: lips rolled in", {"AU10": "slight", "AU28": None},
     ("AU04", "AU15")),
    ("His chin was driven up hard.", {"AU17": "severe"}, ()),
    ("Brows: inner heads level, tails mildly elevated.", {"AU02": "slight"}, ()),
    ("The lower lids got a hair tighter.", {"AU07": "trace"}, ()),
])
def test_fifth_round_constructions(text, expected, absent):
    r = read_description(text)
    assert (r.present, r.absent) == (expected, absent), r.to_json()
