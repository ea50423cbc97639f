"""FACS knowledge: OpenFace AU codes, names, face regions, intensity bands, EMFACS prototypes.

Everything that reads, writes, describes or scores AUs takes its vocabulary from here, so the
teacher that writes descriptions and the lexicon that scores them cannot drift apart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from my_affectgpt.common.errors import InputError

# OpenFace 2.x column order: 17 intensities (_r), then 18 presences (_c; AU28 has no _r).
INTENSITY_CODES = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
                   "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45")
PRESENCE_CODES = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
                  "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU28", "AU45")
ALL_CODES = tuple(sorted(set(INTENSITY_CODES) | set(PRESENCE_CODES)))
R_COLUMNS = tuple(f"{c}_r" for c in INTENSITY_CODES)
C_COLUMNS = tuple(f"{c}_c" for c in PRESENCE_CODES)
AU_COLUMNS = R_COLUMNS + C_COLUMNS  # the 35 canonical AU columns

# Face regions, top to bottom: descriptions list regions in this order.
REGIONS = ("brows", "eyes", "cheeks", "nose", "mouth", "chin and jaw")


@dataclass(frozen=True)
class ActionUnit:
    code: str
    name: str         # the FACS name
    region: str       # one of REGIONS
    phrases: tuple    # noun phrases a description may use
    pattern: str      # regex (case-insensitive) matching every phrase; lexicon.py adds the code


ACTION_UNITS = {au.code: au for au in (
    ActionUnit("AU01", "inner brow raiser", "brows",
               ("inner brow raiser", "raise of the inner brows", "lift of the inner brows"),
               r"\binner[- ]brows? (raiser|raise|raising|lift)|\b(raise|raising|lift|lifting) of the inner brows?\b|\binner (corners of the )?brows (are )?(raised|lifted)"),
    ActionUnit("AU02", "outer brow raiser", "brows",
               ("outer brow raiser", "raise of the outer brows", "lift of the outer brows"),
               r"\bouter[- ]brows? (raiser|raise|raising|lift)|\b(raise|raising|lift|lifting) of the outer brows?\b|\bouter (corners of the )?brows (are )?(raised|lifted)"),
    ActionUnit("AU04", "brow lowerer", "brows",
               ("brow lowerer", "lowering of the brows", "drawing together of the brows"),
               r"\bbrow lowerer|\blowering of the brows?\b|\bdrawing (together|down) of the brows?\b|\bbrows? (are )?(lowered|knitted|drawn together)"),
    ActionUnit("AU05", "upper lid raiser", "eyes",
               ("upper lid raiser", "raise of the upper eyelids", "widening of the eyes"),
               r"\bupper (eye)?lids? (raiser|raise|raising)|\b(raise|raising|lift|lifting) of the upper (eye)?lids?\b|\bwidening of the eyes\b|\beyes? (are )?widened"),
    ActionUnit("AU06", "cheek raiser", "cheeks",
               ("cheek raiser", "raise of the cheeks", "lifting of the cheeks"),
               r"\bcheeks? (raiser|raise|raising|lift)|\b(raise|raising|lift|lifting) of the cheeks?\b"),
    ActionUnit("AU07", "lid tightener", "eyes",
               ("lid tightener", "tightening of the eyelids", "narrowing of the eyes"),
               r"\b(eye)?lid tighten(er|ing)|\btightening of the (eye)?lids\b|\bnarrowing of the eyes\b|\beyes? (are )?narrowed"),
    ActionUnit("AU09", "nose wrinkler", "nose",
               ("nose wrinkler", "wrinkling of the nose", "wrinkle along the nose"),
               r"\bnose wrinkl(er|ing)|\bwrinkl(e|ing) (of|along) the nose\b|\bwrinkled nose\b"),
    ActionUnit("AU10", "upper lip raiser", "mouth",
               ("upper lip raiser", "raise of the upper lip", "lifting of the upper lip"),
               r"\bupper lip (raiser|raise|raising|lift)|\b(raise|raising|lift|lifting) of the upper lip\b"),
    ActionUnit("AU12", "lip corner puller", "mouth",
               ("lip corner puller", "upward pull of the lip corners", "pulling up of the lip corners"),
               r"\blip[- ]corner (puller|pull)|\b(upward pull|pulling up|raising) of the (lip|mouth) corners\b"),
    ActionUnit("AU14", "dimpler", "mouth",
               ("dimpler", "dimpling beside the lip corners", "dimpling of the cheeks at the mouth corners"),
               r"\bdimpl(er|ing|e)"),
    ActionUnit("AU15", "lip corner depressor", "mouth",
               ("lip corner depressor", "downward pull of the lip corners", "lowering of the lip corners"),
               r"\blip[- ]corner depress(or|ion|ing)|\b(downward pull|pulling down|lowering|depression) of the (lip|mouth) corners\b"),
    ActionUnit("AU17", "chin raiser", "chin and jaw",
               ("chin raiser", "raise of the chin", "upward push of the chin"),
               r"\bchin (raiser|raise|raising|boss)|\b(raise|raising|upward push|pushing up) of the chin\b"),
    ActionUnit("AU20", "lip stretcher", "mouth",
               ("lip stretcher", "horizontal stretching of the lips", "sideways stretch of the lips"),
               r"\blip stretch(er|ing)?|\bstretch(ing)? of the lips\b"),
    ActionUnit("AU23", "lip tightener", "mouth",
               ("lip tightener", "tightening of the lips", "narrowing of the lips"),
               r"\blip tighten(er|ing)|\b(tightening|narrowing) of the lips\b|\blips (are )?(tightened|narrowed)"),
    ActionUnit("AU25", "lips part", "mouth",
               ("parting of the lips", "lip parting", "separation of the lips"),
               r"\blips? part(ed|ing|s)?\b|\bparting of the lips\b|\bseparation of the lips\b|\bparted lips\b"),
    ActionUnit("AU26", "jaw drop", "chin and jaw",
               ("jaw drop", "dropping of the jaw", "lowering of the jaw"),
               r"\bjaw (drop|lower)|\b(dropping|lowering|drop) of the jaw\b|\b(dropped|lowered) jaw\b"),
    ActionUnit("AU28", "lip suck", "mouth",
               ("lip suck", "sucking in of the lips", "inward suck of the lips"),
               r"\blip suck|\b(sucking in|inward suck) of the lips\b|\blips (are )?sucked in"),
    ActionUnit("AU45", "blink", "eyes",
               ("blink", "eye blink", "brief closing of the eyelids"),
               r"\bblink(s|ing)?\b|\beye closure\b|\bclosing of the eyelids\b"),
)}
PRESENCE_ONLY = frozenset(c for c in PRESENCE_CODES if c not in INTENSITY_CODES)  # AU28


@dataclass(frozen=True)
class IntensityBands:
    """FACS A–E intensity bands over OpenFace's 0–5 scale, plus the activation threshold.

    An AU is active when its intensity, rounded to one decimal, is >= `active`; its band is
    the last edge it reaches. Presence-only AUs (AU28) are active when `_c` >= 0.5.
    """
    active: float = 0.5
    edges: tuple = (1.0, 2.0, 3.0, 4.0)
    names: tuple = ("trace", "slight", "marked", "severe", "maximum")

    def __post_init__(self):
        if len(self.names) != len(self.edges) + 1 or list(self.edges) != sorted(self.edges):
            raise ValueError(f"bands need sorted edges and one more name than edges: {self}")

    def band(self, value: float) -> str:
        i = 0
        while i < len(self.edges) and value >= self.edges[i]:
            i += 1
        return self.names[i]

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> "IntensityBands":
        cfg = dict(cfg or {})
        return cls(active=float(cfg.get("active", cls.active)),
                   edges=tuple(float(e) for e in cfg.get("edges", cls.edges)),
                   names=tuple(cfg.get("names", cls.names)))


DEFAULT_BANDS = IntensityBands()

# The rule teacher's intensity word per band, and the words (FACS names its intensity scores A
# trace, B slight, C marked or pronounced, D severe or extreme, E maximum) by which lexicon.py
# reads a band back; each band's words are disjoint from every other band's.
BAND_WORDS = {"trace": "faint", "slight": "slight", "marked": "marked", "severe": "strong",
              "maximum": "maximal"}
BAND_PATTERNS = {
    "trace": r"\bfaint(ly)?\b|\bbarely\b|\bsubtle\b|\btrace\b",
    "slight": r"\bslight(ly)?\b|\bmild(ly)?\b|\bweak(ly)?\b",
    "marked": r"\bmarked(ly)?\b|\bmoderate(ly)?\b|\bpronounced\b",
    "severe": r"\bstrong(ly)?\b|\bsevere(ly)?\b|\bextreme(ly)?\b",
    "maximum": r"\bmaxim(al|ally|um)\b|\bfull(y)?\b",
}

# Words that name an emotion: an objective AU description must not use them.
EMOTION_WORDS = ("happy", "happiness", "joy", "joyful", "glad", "sad", "sadness", "unhappy",
                 "sorrow", "sorrowful", "angry", "anger", "furious", "rage", "fear", "fearful",
                 "afraid", "scared", "frightened", "surprise", "surprised", "astonished",
                 "disgust", "disgusted", "contempt", "contemptuous", "worried", "anxious",
                 "nervous", "amused", "delighted", "upset", "annoyed", "irritated")

# EMFACS-style prototypes (Ekman & Friesen; Friesen & Ekman 1983), with typical apex
# intensities on OpenFace's 0–5 scale. OpenFace does not measure AU16, so disgust uses the
# EMFACS variant with AU10; contempt is the (here bilateral) 12+14.
EMOTION_PROTOTYPES = {
    "neutral": {},
    "happiness": {"AU06": 2.6, "AU12": 3.4, "AU25": 1.2},
    "sadness": {"AU01": 2.2, "AU04": 1.8, "AU15": 2.4, "AU17": 1.4},
    "surprise": {"AU01": 3.0, "AU02": 2.8, "AU05": 2.4, "AU25": 2.2, "AU26": 3.0},
    "fear": {"AU01": 2.6, "AU02": 2.0, "AU04": 2.0, "AU05": 3.0, "AU07": 1.4, "AU20": 2.6,
             "AU25": 1.6, "AU26": 1.8},
    "anger": {"AU04": 3.2, "AU05": 1.4, "AU07": 2.6, "AU23": 2.6},
    "disgust": {"AU09": 3.0, "AU10": 2.2, "AU15": 1.4, "AU17": 1.6},
    "contempt": {"AU12": 1.6, "AU14": 2.6},
}
EMOTIONS = tuple(EMOTION_PROTOTYPES)


def active_aus(au: Mapping[str, float], bands: IntensityBands = DEFAULT_BANDS) -> dict:
    """Active AUs of one frame as {code: value rounded to 1 decimal} in code order.

    `au` maps OpenFace column names (`AU06_r`, `AU28_c`) to values; missing or NaN values count
    as absent. Presence-only AUs map to 1.0 when present. The rounded value is what prompts
    show, so bands are computed from it too.
    """
    out = {}
    for code in ALL_CODES:
        if code in PRESENCE_ONLY:
            v = au.get(f"{code}_c")
            if v is not None and not math.isnan(v) and v >= 0.5:
                out[code] = 1.0
            continue
        v = au.get(f"{code}_r")
        if v is None or math.isnan(v):
            continue
        v = round(float(v) + 0.0, 1)
        if v >= bands.active:
            out[code] = v
    return out


def au_state_text(active: Mapping[str, float]) -> str:
    """The canonical AU text of DESIGN.md §3 (the cache key): `AU06 cheek raiser 2.1; ...`."""
    if not active:
        return "neutral"
    parts = []
    for code in ALL_CODES:
        if code in active:
            au = ACTION_UNITS[code]
            parts.append(f"{code} {au.name} present" if code in PRESENCE_ONLY
                         else f"{code} {au.name} {active[code]:.1f}")
    return "; ".join(parts)


def parse_au_state_text(text: str) -> dict:
    """Inverse of au_state_text: `AU06 cheek raiser 2.1; AU28 lip suck present` -> {code: value}."""
    if text == "neutral":
        return {}
    active = {}
    for part in text.split(";"):
        words = part.split()
        if not words or words[0] not in ACTION_UNITS:
            raise InputError("au_text", f"not a canonical AU text: {text!r}")
        code = words[0]
        if code in PRESENCE_ONLY:
            active[code] = 1.0
        else:
            try:
                active[code] = float(words[-1])
            except ValueError:
                raise InputError("au_text", f"no intensity for {code} in {text!r}") from None
    return active
