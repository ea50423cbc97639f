"""Every description checked against its own AU input before it becomes a feature.

The AU judge (my_affectgpt.au.judge) reads what a description asserts; `check` compares that
with the frame's canonical AU text (the prompt): an active AU left out, an AU named that is not
active, or an intensity band stated that is not the input's band. `au_agent_verify` decides what
happens to a description that fails:
- ``off``: nothing is checked;
- ``flag``: checked and recorded (feature meta, extract summary), the description is kept;
- ``repair`` (default): a second attempt aimed at the problem (`second_prompts`): the model
  describes the AUs it left out on their own, appended to its answer, or, for a named inactive
  AU or a wrong band, the upper and the lower face separately; if that also fails, the rule
  teacher's description of the frame is used, which the judge reads right by construction
  (tests/test_au_agent_verify.py checks it over every band and many states). Chosen on
  simulated long states (not the test split, not real frames): of 60 failing first answers of
  the tuned CPU agent, this fixed 45, the problem stated in a second chat turn 1.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from my_affectgpt.au.facs import (DEFAULT_BANDS, PRESENCE_ONLY, IntensityBands,
                                  au_state_text, parse_au_state_text)
from my_affectgpt.au.judge import read_description
from my_affectgpt.au.teacher import RuleTeacher
from my_affectgpt.au.judge.notation import UNCLEAR

# how a frame's final description came about (feature meta `verify`, one per frame)
OK, REGENERATED, TEACHER, FLAGGED, UNCHECKED = "ok", "regenerated", "teacher", "flagged", "unchecked"


@dataclass(frozen=True)
class Problems:
    missing: tuple = ()        # active AUs the description leaves out
    extra: tuple = ()          # AUs it names that are not active
    wrong_band: tuple = ()     # (code, band said, band of the input)

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.wrong_band)


def check(prompt: str, description: str, bands: IntensityBands = DEFAULT_BANDS) -> Problems:
    """What is wrong with `description` for the frame whose canonical AU text is `prompt`."""
    active = parse_au_state_text(prompt)
    said = read_description(description).present
    wrong = tuple((c, said[c], bands.band(v)) for c, v in active.items()
                  if c in said and c not in PRESENCE_ONLY and said[c] not in (None, UNCLEAR)
                  and said[c] != bands.band(v))
    return Problems(missing=tuple(c for c in active if c not in said),
                    extra=tuple(c for c in said if c not in active), wrong_band=wrong)


def verify_identity(mode: str) -> dict:
    """Part of a feature file's identity: checked features depend on how the judge reads and
    on how repair works (this module), so a change to either makes them stale (hash of their
    source)."""
    return {"verify": "off"} if mode == "off" else {"verify": mode, "judge": _source_hash()}


@functools.lru_cache(maxsize=1)
def _source_hash() -> str:
    """The judge's and this module's source, hashed once per process."""
    folder = Path(read_description.__code__.co_filename).parent
    h = hashlib.sha256()
    for path in sorted([*folder.glob("*.py"), *folder.glob("data/*.txt"), Path(__file__)]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


UPPER_FACE = frozenset(("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU45"))


def second_prompts(prompt: str, problems: Problems) -> list:
    """The problem stated as the model's own kind of input: the AUs it left out, described on
    their own (their description is then appended), or, for a named inactive AU or a wrong
    band, the upper and the lower face described separately (short states, which the model
    describes faithfully; long ones are where it drops AUs)."""
    active = parse_au_state_text(prompt)
    if problems.missing and not problems.extra and not problems.wrong_band \
            and len(problems.missing) < len(active):
        return [au_state_text({c: active[c] for c in problems.missing})]
    halves = ({c: v for c, v in active.items() if c in UPPER_FACE},
              {c: v for c, v in active.items() if c not in UPPER_FACE})
    if not all(halves):                       # one face half only: split the list in two
        codes = list(active)
        halves = ({c: active[c] for c in codes[:len(codes) // 2]},
                  {c: active[c] for c in codes[len(codes) // 2:]})
    return [au_state_text(h) for h in halves if h]


def second_attempts(items, describe) -> list:
    """Second answers for (prompt, first answer, problems) items; `describe(canonical AU texts)`
    is the model's ordinary describer (batched, cached), called once for all items."""
    plans = [(answer, problems, second_prompts(prompt, problems)) for prompt, answer, problems in items]
    texts = list(dict.fromkeys(t for _, _, ps in plans for t in ps))
    said = dict(zip(texts, describe(texts))) if texts else {}
    out = []
    for answer, problems, ps in plans:
        parts = [said[t].strip() for t in ps]
        appended = len(ps) == 1 and problems.missing and not problems.extra and not problems.wrong_band
        out.append(" ".join([answer.strip()] + parts if appended else parts))
    return out


def verified(prompts, answers, mode: str, regenerate, bands: IntensityBands = DEFAULT_BANDS,
             teacher=None) -> tuple:
    """(final descriptions, statuses) for distinct `prompts` and the model's `answers` to them.

    `regenerate(items)` gives second attempts for (prompt, first answer, problems) items, in
    order; it is called once, for the failing prompts only (repair mode)."""
    if mode == "off":
        return list(answers), [UNCHECKED] * len(answers)
    finals, statuses, failing = list(answers), [OK] * len(answers), []
    for i, (prompt, answer) in enumerate(zip(prompts, answers)):
        problems = check(prompt, answer, bands)
        if problems:
            statuses[i] = FLAGGED
            if mode == "repair":
                failing.append((i, (prompt, answer, problems)))
    if failing:
        teacher = teacher or RuleTeacher(bands)
        for (i, (prompt, _, _)), second in zip(failing, regenerate([it for _, it in failing])):
            if not check(prompt, second, bands):
                finals[i], statuses[i] = second, REGENERATED
            else:
                finals[i], statuses[i] = teacher.describe(parse_au_state_text(prompt)), TEACHER
    return finals, statuses


def counts(statuses) -> dict:
    """Per-video (or per-run) figures from the frames' `verify` statuses."""
    statuses = list(statuses)
    return {"checked": sum(s != UNCHECKED for s in statuses),
            "failed_first": sum(s in (REGENERATED, TEACHER, FLAGGED) for s in statuses),
            "regenerated": statuses.count(REGENERATED), "fell_back": statuses.count(TEACHER),
            "flagged": statuses.count(FLAGGED)}
