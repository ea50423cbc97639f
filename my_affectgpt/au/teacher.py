"""Teachers write the reference description (the assistant answer) for one frame's AU state.

- `RuleTeacher`: FACS rules, no model. Objective, grouped by face region top to bottom, one
  intensity word per AU, seeded variety of phrasing. It names exactly the active AUs, in plain
  words (AU codes mean nothing to a text encoder), and fits CLIP's 77-token context: a
  description that would not fit is written in the plainest wording instead.
- `APITeacher` (api_teacher.py): any OpenAI-compatible endpoint (GPT-4o, Gemini, vLLM, Ollama).
"""
from __future__ import annotations

import hashlib
import random
from typing import Mapping

from ..common.clip_tokens import CLIP_CONTEXT, clip_token_count
from .facs import (ACTION_UNITS, ALL_CODES, BAND_WORDS, DEFAULT_BANDS, PRESENCE_ONLY, REGIONS,
                   IntensityBands)

TEACHERS = ("rule", "api")

_REGION_LABEL = {"brows": "Brows", "eyes": "Eyes", "cheeks": "Cheeks", "nose": "Nose",
                 "mouth": "Mouth", "chin and jaw": "Chin and jaw"}
_REGION_AREA = {"brows": "brow region", "eyes": "eye region", "cheeks": "cheek region",
                "nose": "nose region", "mouth": "mouth region", "chin and jaw": "chin and jaw region"}
_SENTENCES = (
    "{Label}: {items}.",
    "The {area} shows {items}.",
    "In the {area} there is {items}.",
)
NEUTRAL_SENTENCES = (
    "Neutral face: no facial action unit is active.",
    "The face is at rest and neutral; no facial action unit is active.",
    "No facial action unit is active, so the face is neutral.",
)


def _article(phrase: str) -> str:
    return "an" if phrase[0] in "aeiou" else "a"


class RuleTeacher:
    name = "rule"

    def __init__(self, bands: IntensityBands = DEFAULT_BANDS, seed: int = 0):
        self.bands = bands
        self.seed = seed

    def rng_for(self, key: str) -> random.Random:
        """A generator that depends only on (seed, key), so any sample can be rebuilt alone."""
        digest = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "little"))

    def _item(self, code: str, value: float, rng: random.Random | None) -> str:
        if rng is None:  # plainest: the shortest phrase, the first band word, no article
            phrase = min(ACTION_UNITS[code].phrases, key=len)
            return phrase if code in PRESENCE_ONLY else f"{BAND_WORDS[self.bands.band(value)][0]} {phrase}"
        phrase = rng.choice(ACTION_UNITS[code].phrases)
        if code in PRESENCE_ONLY:
            return f"{_article(phrase)} {phrase}"
        word = rng.choice(BAND_WORDS[self.bands.band(value)])
        return f"{_article(word)} {word} {phrase}"

    def _compose(self, active: Mapping[str, float], rng: random.Random | None) -> str:
        """Region sentences, top to bottom; `rng` None gives the plainest, shortest wording."""
        by_region = {r: [] for r in REGIONS}
        for code in ALL_CODES:
            if code in active:
                by_region[ACTION_UNITS[code].region].append(self._item(code, active[code], rng))
        sentences = []
        for region, items in by_region.items():
            if not items:
                continue
            listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
            template = rng.choice(_SENTENCES) if rng else _SENTENCES[0]
            sentences.append(template.format(Label=_REGION_LABEL[region], area=_REGION_AREA[region],
                                             items=listed))
        return " ".join(sentences)

    def describe(self, active: Mapping[str, float], key: str = "") -> str:
        """Description of one frame. `active` is facs.active_aus(...); `key` seeds the phrasing."""
        rng = self.rng_for(key)
        if not active:
            return rng.choice(NEUTRAL_SENTENCES)
        text = self._compose(active, rng)
        if clip_token_count(text) > CLIP_CONTEXT:
            text = self._compose(active, None)
        return text
