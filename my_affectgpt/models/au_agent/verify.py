"""Every description checked against its own AU input before it becomes a feature.

The AU judge (my_affectgpt.au.judge) reads what a description asserts; `check` compares that
with the frame's canonical AU text (the prompt): an active AU left out, an AU named that is not
active, or an intensity band stated that is not the input's band. `au_agent_verify` decides what
happens to a description that fails:
- ``off``: nothing is checked;
- ``flag``: checked and recorded (feature meta, extract summary), the description is kept;
- ``repair`` (default): the model writes it once more with the problem stated; if that also
  fails, the rule teacher's description of the frame is used, which the judge reads right by
  construction (tests/test_au_agent_verify.py checks it over every band and many states).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from my_affectgpt.au.facs import (ACTION_UNITS, DEFAULT_BANDS, PRESENCE_ONLY, IntensityBands,
                                  parse_au_state_text)
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

    def as_dict(self) -> dict:
        return {"missing": list(self.missing), "extra": list(self.extra),
                "wrong_band": [list(w) for w in self.wrong_band]}

    def feedback(self) -> str:
        """The problem stated for the model's second attempt."""
        parts = []
        if self.missing:
            parts.append("it leaves out " + _names(self.missing))
        if self.extra:
            parts.append("it mentions " + _names(self.extra) + ", which are not in the list")
        for code, said, want in self.wrong_band:
            parts.append(f"it calls the {ACTION_UNITS[code].name} {said}, but it is {want}")
        return ("Your description is not faithful: " + "; ".join(parts) + ". Describe the listed "
                "Action Units again: every one of them once, with its intensity, and nothing else.")


def _names(codes) -> str:
    return ", ".join(f"{ACTION_UNITS[c].name} ({c})" for c in codes)


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
    on the repair prompt, so a change to either makes them stale (hash of their source)."""
    if mode == "off":
        return {"verify": "off"}
    folder = Path(read_description.__code__.co_filename).parent
    h = hashlib.sha256()
    for path in sorted([*folder.glob("*.py"), *folder.glob("data/*.txt"), Path(__file__)]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return {"verify": mode, "judge": h.hexdigest()[:16]}


def verified(prompts, answers, mode: str, regenerate, bands: IntensityBands = DEFAULT_BANDS,
             teacher=None) -> tuple:
    """(final descriptions, statuses) for distinct `prompts` and the model's `answers` to them.

    `regenerate(items)` gives second attempts for (prompt, first answer, feedback) items, in
    order; it is called once, for the failing prompts only (repair mode)."""
    if mode == "off":
        return list(answers), [UNCHECKED] * len(answers)
    finals, statuses, failing = list(answers), [OK] * len(answers), []
    for i, (prompt, answer) in enumerate(zip(prompts, answers)):
        problems = check(prompt, answer, bands)
        if problems:
            statuses[i] = FLAGGED
            if mode == "repair":
                failing.append((i, (prompt, answer, problems.feedback())))
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
