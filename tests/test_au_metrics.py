"""AU description metrics against a hand-counted fixture, and the probe set."""
from __future__ import annotations

import pytest

from my_affectgpt.au.facs import DEFAULT_BANDS, EMOTION_PROTOTYPES, INTENSITY_CODES
from my_affectgpt.au.teacher import RuleTeacher
from my_affectgpt.au.facs import active_aus
from my_affectgpt.evaluation.au_metrics import Scored, rouge_l, score
from my_affectgpt.evaluation.au_probes import probes


def test_metrics_equal_a_hand_count():
    items = [
        # active AU06 (2.1, marked), AU12 (3.2, severe): both named, one band wrong -> tp 2
        Scored({"AU06_r": 2.1, "AU12_r": 3.2}, "A marked cheek raiser and a slight lip corner puller.",
               "A marked cheek raiser (AU06) and a strong lip corner puller (AU12)."),
        # active AU04 (1.5, slight): named right; AU09 named but inactive -> tp 1, fp 1, hallucination
        Scored({"AU04_r": 1.5}, "A slight brow lowerer with a faint nose wrinkler; she looks angry."),
        # active AU25 (0.7 trace), AU26 (2.0 marked): only AU26 named, without intensity -> tp 1, fn 1
        Scored({"AU25_r": 0.7, "AU26_r": 2.0}, "The jaw drop is visible."),
        # neutral, nothing named
        Scored({}, "The face is neutral."),
    ]
    s = score(items)
    assert s["n"] == 4
    assert s["au_precision"] == pytest.approx(4 / 5, abs=1e-4)       # tp 4, fp 1
    assert s["au_recall"] == pytest.approx(4 / 5, abs=1e-4)          # fn 1
    assert s["au_f1"] == pytest.approx(0.8, abs=1e-4)
    assert s["hallucination_rate"] == 0.25
    assert s["emotion_word_rate"] == 0.25
    assert s["band_agreement"] == pytest.approx(2 / 4, abs=1e-4)     # AU06 ok, AU12 no, AU04 ok, AU26 none
    assert s["rouge_l"] == pytest.approx(rouge_l(items[0].output, items[0].reference), abs=1e-4)
    assert s["mean_words"] == pytest.approx((10 + 12 + 5 + 4) / 4)


def test_rouge_l():
    assert rouge_l("a b c d", "a b c d") == 1.0
    assert rouge_l("a x c", "a b c") == pytest.approx(2 / 3)
    assert rouge_l("", "a") == 0.0


def test_rule_teacher_scores_perfectly_on_probes():
    t = RuleTeacher()
    items = [Scored(au, t.describe(active_aus(au))) for _, au in probes()]
    s = score(items)
    assert (s["au_f1"], s["hallucination_rate"], s["band_agreement"], s["emotion_word_rate"]) == (1.0, 0.0, 1.0, 0.0)


def test_probe_set_covers_prototypes_bands_and_neutral():
    labels = [label for label, _ in probes()]
    assert labels[0] == "neutral"
    assert sum(label.startswith("prototype") for label in labels) == len(EMOTION_PROTOTYPES) - 1
    assert len(labels) == 1 + 7 + len(INTENSITY_CODES) * len(DEFAULT_BANDS.names) + 1
    for label, au in probes():
        if label.split()[-1] in DEFAULT_BANDS.names:
            (value,) = au.values()
            assert DEFAULT_BANDS.band(value) == label.split()[-1]
