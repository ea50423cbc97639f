"""Teachers write the reference description (the assistant answer) for one frame's AU state.

- `RuleTeacher`: FACS rules, no model. Objective and canonical: one sentence per face region,
  top to bottom, each active AU by its plainest name with its FACS intensity word ("Brows: slight
  inner brow raiser and marked brow lowerer. Mouth: faint lip parting."), so equal states get
  equal descriptions. It names exactly the active AUs, each once, in words (AU codes mean
  nothing to a text encoder), and always fits CLIP's 77-token context: the region wording fits
  any 10 active AUs; a longer state (up to all 18) that would not fit is written compactly, one
  sentence per intensity band, strongest first, whose band word covers every AU listed after
  it ("Slight cheek raiser, dimpler and lip parting."), then the presence-only lip suck (worst
  case, all 18 active in all five bands: 76 tokens). Nothing is dropped.
  A fixed wording beat the earlier seeded variety of phrases when the CPU recipe was chosen on
  the validation split: the small model copies it more faithfully (bench/RESULTS.md).
- `APITeacher` (api_teacher.py): any OpenAI-compatible endpoint (GPT-4o, Gemini, vLLM, Ollama).
"""
from __future__ import annotations

from typing import Mapping

from ..common.clip_tokens import CLIP_CONTEXT, clip_token_count
from .facs import (ACTION_UNITS, ALL_CODES, BAND_WORDS, DEFAULT_BANDS, PRESENCE_ONLY, REGIONS,
                   IntensityBands)

TEACHERS = ("rule", "api")

_REGION_LABEL = {"brows": "Brows", "eyes": "Eyes", "cheeks": "Cheeks", "nose": "Nose",
                 "mouth": "Mouth", "chin and jaw": "Chin and jaw"}
NEUTRAL_SENTENCE = "Neutral face: no facial action unit is active."


def _listed(items: list) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def plainest_phrase(code: str) -> str:
    return min(ACTION_UNITS[code].phrases, key=len)


class RuleTeacher:
    name = "rule"

    def __init__(self, bands: IntensityBands = DEFAULT_BANDS):
        self.bands = bands

    def _item(self, code: str, value: float) -> str:
        phrase = plainest_phrase(code)
        return phrase if code in PRESENCE_ONLY else f"{BAND_WORDS[self.bands.band(value)]} {phrase}"

    def _by_region(self, active: Mapping[str, float]) -> str:
        by_region = {r: [] for r in REGIONS}
        for code in ALL_CODES:
            if code in active:
                by_region[ACTION_UNITS[code].region].append(self._item(code, active[code]))
        return " ".join(f"{_REGION_LABEL[region]}: {_listed(items)}."
                        for region, items in by_region.items() if items)

    def _by_band(self, active: Mapping[str, float]) -> str:
        by_band = {band: [] for band in reversed(self.bands.names)}
        present = []
        for code in ALL_CODES:
            if code in active:
                if code in PRESENCE_ONLY:
                    present.append(plainest_phrase(code))
                else:
                    by_band[self.bands.band(active[code])].append(plainest_phrase(code))
        sentences = [f"{BAND_WORDS[band].capitalize()} {_listed(items)}."
                     for band, items in by_band.items() if items]
        if present:
            sentences.append(_listed(present).capitalize() + ".")
        return " ".join(sentences)

    def describe(self, active: Mapping[str, float]) -> str:
        """Description of one frame; `active` is facs.active_aus(...)."""
        if not active:
            return NEUTRAL_SENTENCE
        text = self._by_region(active)
        if clip_token_count(text) > CLIP_CONTEXT:
            text = self._by_band(active)
        return text
