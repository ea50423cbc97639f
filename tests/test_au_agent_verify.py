"""The AU Agent checks every description against its own AU input (au_agent_verify):
what counts as a failure, the rule teacher as a fallback the judge always accepts, and the
runtime's off / flag / repair paths with a real tiny model, a real cache and real CSVs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from my_affectgpt.au.facs import ALL_CODES, DEFAULT_BANDS, PRESENCE_ONLY, au_state_text
from my_affectgpt.au.simulate import write_dataset
from my_affectgpt.au.teacher import RuleTeacher
from my_affectgpt.common.errors import InputError
from my_affectgpt.models.au_agent import AUAgent, AUAgentConfig, main
from my_affectgpt.models.au_agent import verify
from my_affectgpt.models.feature_store import FeatureStore

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPT = "AU06 cheek raiser 2.1; AU12 lip corner puller 3.2"


@pytest.mark.parametrize("text, missing, extra, wrong", [
    ("Cheeks: a marked cheek raiser. Mouth: a strong lip corner puller.", (), (), ()),
    ("A broad smile lifts the cheeks.", (), (), ()),                       # no band: not wrong
    ("Cheeks: a marked cheek raiser.", ("AU12",), (), ()),
    ("A marked cheek raiser, a strong smile and a slight frown.", (), ("AU04",), ()),
    ("A faint cheek raiser and a strong smile.", (), (), (("AU06", "trace", "marked"),)),
    ("6C+12D", (), (), ()), ("No smile at all, but the cheeks rise.", ("AU12",), (), ()),
])
def test_what_fails_the_check(text, missing, extra, wrong):
    p = verify.check(PROMPT, text)
    assert (p.missing, p.extra, p.wrong_band) == (missing, extra, wrong)
    assert bool(p) == bool(missing or extra or wrong)


def test_the_second_attempt_asks_for_the_part_that_was_wrong():
    long_state = ("AU01 inner brow raiser 2.0; AU04 brow lowerer 1.2; AU06 cheek raiser 2.1; "
                  "AU12 lip corner puller 3.2; AU25 lips part 1.0")
    left_out = verify.check(long_state, "Brows: marked inner brow raiser and slight brow lowerer. "
                                        "Mouth: strong lip corner puller and slight lip parting.")
    assert verify.second_prompts(long_state, left_out) == ["AU06 cheek raiser 2.1"]
    wrong = verify.check(long_state, "A faint inner brow raiser, a slight brow lowerer, a marked "
                                     "cheek raiser, a strong smile, slight lip parting, a squint.")
    assert wrong.extra == ("AU07",) and wrong.wrong_band == (("AU01", "trace", "marked"),)
    assert verify.second_prompts(long_state, wrong) == [
        "AU01 inner brow raiser 2.0; AU04 brow lowerer 1.2; AU06 cheek raiser 2.1",
        "AU12 lip corner puller 3.2; AU25 lips part 1.0"]


def test_second_attempts_join_the_parts():
    said = {"AU06 cheek raiser 2.1": "Cheeks: marked cheek raiser."}
    first = "Mouth: strong lip corner puller."
    out = verify.second_attempts([(PROMPT, first, verify.check(PROMPT, first))],
                                 lambda texts: [said[t] for t in texts])
    assert out == ["Mouth: strong lip corner puller. Cheeks: marked cheek raiser."]
    assert not verify.check(PROMPT, out[0])


_VALUES = st.sampled_from([0.6, 1.4, 2.5, 3.3, 4.6])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(ALL_CODES), _VALUES, max_size=len(ALL_CODES)))
def test_the_teacher_fallback_always_passes(active):
    """What repair falls back on is read right by the judge: every AU, its band, nothing else."""
    active = {c: (1.0 if c in PRESENCE_ONLY else v) for c, v in active.items()}
    prompt = au_state_text(active)
    text = RuleTeacher(DEFAULT_BANDS).describe(active)
    assert not verify.check(prompt, text), (prompt, text, verify.check(prompt, text))


def test_unknown_mode_is_a_one_line_error():
    with pytest.raises(InputError, match="au_agent_verify.*off, flag, repair"):
        AUAgentConfig(backend="template", verify="fix")


# --- the runtime ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "openface"
    return out, write_dataset(out, 6, seed=11, frames=(30, 40), workers=1)


def _agent(tiny_model, tmp_path, mode, **kw):
    cfg = dict(backend="hf", base_model=str(tiny_model), device="cpu", max_new_tokens=12,
               cache_path=str(tmp_path / "cache.sqlite"), model_cache_dir=str(tmp_path / "mc"),
               text_encoder="minilm", num_frames=4, verify=mode)
    cfg.update(kw)
    return AUAgent(AUAgentConfig(**cfg))


def test_off_flag_repair_on_a_model_that_writes_nonsense(tiny_model, sim, tmp_path):
    """A random tiny model fails every check: off keeps its text unchecked, flag keeps it and
    records it, repair tries once more and then writes the teacher's description."""
    csvs = sorted(sim[1])[:3]
    out = {}
    for mode in ("off", "flag", "repair"):
        with _agent(tiny_model, tmp_path, mode) as agent:
            out[mode] = [agent.video_features(c)[1] for c in csvs]
            stats = agent.stats
    off, flag, repair = out["off"], out["flag"], out["repair"]
    for a, b, c in zip(off, flag, repair):
        assert a["descriptions"] == b["descriptions"] and set(a["verify"]) == {"unchecked"}
        assert a["verified"]["checked"] == 0
        n_model = sum(p != "neutral" for p in b["prompts"])
        assert b["verified"]["flagged"] == b["verified"]["failed_first"] == n_model
        assert c["verified"]["fell_back"] == n_model and c["verified"]["checked"] == len(c["prompts"])
        for prompt, text, status in zip(c["prompts"], c["descriptions"], c["verify"]):
            assert not verify.check(prompt, text)           # nothing failing reaches a feature
            assert status in ("ok", "teacher")
    assert stats.repairs_generated > 0 and stats.fell_back == stats.failed_first


def test_second_attempts_are_cached(tiny_model, sim, tmp_path):
    csv = sorted(sim[1])[0]
    with _agent(tiny_model, tmp_path, "repair") as agent:
        first = agent.video_features(csv)[1]
        assert agent.stats.repairs_generated > 0
    with _agent(tiny_model, tmp_path, "repair") as agent:      # a new process: the disk cache
        again = agent.video_features(csv)[1]
        assert agent.stats.generated == agent.stats.repairs_generated == 0
    assert again["descriptions"] == first["descriptions"] and again["verify"] == first["verify"]


def test_a_second_attempt_that_passes_is_kept(tiny_model, tmp_path):
    """Through the real cache: a first answer that leaves out AU07, and the model's answer for
    AU07 alone (the second attempt) -> joined, 'regenerated'."""
    prompt = "AU04 brow lowerer 2.4; AU07 lid tightener 1.3"
    with _agent(tiny_model, tmp_path, "repair") as agent:
        first, part = "Brows: a marked brow lowerer.", "Eyes: a slight lid tightener."
        agent._persistent_cache().put_many(
            [(agent.cache_key(prompt), first), (agent.cache_key("AU07 lid tightener 1.3"), part)],
            model="t", prompt_version="test")
        texts, statuses = agent.describe_checked([prompt])
        assert (texts, statuses) == ([f"{first} {part}"], ["regenerated"])
        assert agent.stats.generated == agent.stats.repairs_generated == 0


def test_the_mode_is_part_of_the_feature_identity(tiny_model, tmp_path):
    ids = {m: _agent(tiny_model, tmp_path, m).feature_identity() for m in ("off", "flag", "repair")}
    assert ids["off"]["verify"] == "off" and "judge" not in ids["off"]
    assert ids["flag"] != ids["repair"] and ids["flag"]["judge"] == ids["repair"]["judge"]


def test_template_backend_passes_and_extract_reports_the_counts(sim, tmp_path, capsys):
    out = tmp_path / "feats"
    assert main(["extract", "--openface-dir", str(sim[0]), "--out-dir", str(out), "--backend",
                 "template", "--text-encoder", "minilm", "--no-progress", "--verify", "repair"]) == 0
    printed = capsys.readouterr().out
    assert "verify (repair): " in printed and " 0 failed the judge" in printed
    meta = json.loads(next(out.glob("*.json")).read_text())
    assert meta["verified"]["checked"] == len(meta["prompts"]) and set(meta["verify"]) == {"ok"}
    feats = np.load(next(out.glob("*.npy")))
    assert feats.dtype == np.float16
    # another mode makes those features stale
    with AUAgent(AUAgentConfig(backend="template", text_encoder="minilm", verify="off")) as agent:
        store = FeatureStore(out, agent.feature_identity())
        csv = sorted(sim[1])[0]
        assert store.status(csv.stem, csv) == "stale"
