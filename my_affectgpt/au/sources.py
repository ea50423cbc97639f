"""Existing AU annotations as `AURecord`s for the instruction dataset: the record, AU keys and values
normalised to OpenFace columns, and the AU texts found in annotations (parse_au_text, listings).
The readers are au/mer_factory.py and au/instruction_jsonl.py, one per kind of input (DESIGN.md §4):

* MER-Factory output folders (github.com/Lum1104/MER-Factory), one folder per video:
  - `<video>_merr_data.json` (MER pipeline): `overall_peak_frame_info` =
    `{frame_number, timestamp, top_aus_intensities: {"AU06_r": 2.13, ...}}` and
    `coarse_descriptions_at_peak.visual_expression`, the peak AU listing
    `"Cheek raiser (intensity: 2.13), Lip corner puller (smile) (intensity: 3.20)"`.
  - `<video>_au_analysis.json` (AU pipeline): `overall_peak_au_description` (the same
    listing; older releases called it `peak_au_text`) and `chronological_emotion_peaks`.
  - the per-frame variant written by the AffectGPT AU-agent fork: `per_frame_au_descriptions`
    = `[{frame, timestamp, au_description, active_aus, is_peak_frame,
    fine_grained_description}]`, `au_info`, and per-frame texts keyed by the frame number
    as a string in `summary_description` / `fine_grained_descriptions`.
  MER-Factory only keeps AUs above its threshold (0.8 by default), so `au` holds those.
* Instruction JSONL, one object per line: Alpaca (`instruction`/`input`/`output`), ShareGPT
  (`conversations` of `{from, value}`) or OpenAI-style `messages` of `{role, content}`, with
  AU values on lines such as `AU values: AU04: 2.24, AU07: 1.87`.

AU keys are normalised to OpenFace 2.x column names (`AU04_r`; `AU28_c`, which has no `_r`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

from my_affectgpt.au.facs import ACTION_UNITS, ALL_CODES, PRESENCE_ONLY

SOURCE_MER_FACTORY = "mer-factory"
SOURCE_ALPACA = "alpaca"
SOURCE_SHAREGPT = "sharegpt"

MAX_AU_VALUE = 5.0  # OpenFace intensities are 0-5, presences 0/1


@dataclass(frozen=True)
class AURecord:
    """One frame (or sample) with its AU values and, when one exists, a description of them."""
    video: str
    frame: int            # OpenFace frame number; -1 when unknown
    au: dict              # OpenFace column name -> value, e.g. {"AU04_r": 2.24, "AU28_c": 1.0}
    answer: str | None    # existing description to train on; None when a teacher must write one
    source: str           # SOURCE_MER_FACTORY, SOURCE_ALPACA or SOURCE_SHAREGPT


# --------------------------------------------------------------------------- AU codes and values

_KEY_RE = re.compile(r"^\s*AU\s*(\d{1,3})\s*(?:_?\s*([rc]))?\s*$", re.IGNORECASE)


def au_column(number: str | int, kind: str | None = None) -> str:
    """OpenFace column for AU `number` (`4` -> `AU04_r`); `kind` "c" asks for the presence.

    AU28 is presence-only in OpenFace, so it always maps to `AU28_c`. Raises ValueError for
    codes OpenFace does not measure.
    """
    code = f"AU{int(number):02d}"
    if code not in ALL_CODES:
        raise ValueError(f"unknown AU code {code} (OpenFace measures {', '.join(ALL_CODES)})")
    if code in PRESENCE_ONLY or (kind or "").lower() == "c":
        return f"{code}_c"
    return f"{code}_r"


def normalise_au_key(key: str) -> str:
    """`"AU12_r"`, `"AU12"`, `"AU 12"`, `" au12_R"` -> `"AU12_r"`; raises ValueError otherwise."""
    m = _KEY_RE.match(str(key))
    if not m:
        raise ValueError(f"{key!r} is not an AU code")
    return au_column(m.group(1), m.group(2))


def _check_value(column: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{column} value {value!r} is not a number")
    value = float(value)
    if not math.isfinite(value) or not 0.0 <= value <= MAX_AU_VALUE:
        raise ValueError(f"{column} value {value} is outside 0-{MAX_AU_VALUE:g}")
    return value


def _put(au: dict, column: str, value: float) -> None:
    # The same AU twice is fine when the values agree; two different values are ambiguous.
    if column in au and not math.isclose(au[column], value, abs_tol=1e-9):
        raise ValueError(f"{column} given twice ({au[column]:g} and {value:g})")
    au[column] = value


def normalise_au_mapping(raw: Mapping) -> dict:
    """A `{key: value}` AU mapping with any key spelling -> `{OpenFace column: float}`."""
    au: dict = {}
    for key, value in raw.items():
        column = normalise_au_key(key)
        _put(au, column, _check_value(column, value))
    return au


# --------------------------------------------------------------------------- AU values in text

_NUM = r"[+-]?\d+(?:\.\d+)?"
_PAIR = rf"AU\s*(\d{{1,3}})(?:_([rc]))?\s*[:=]\s*({_NUM})"
_PAIR_NC = rf"AU\s*\d{{1,3}}(?:_[rc])?\s*[:=]\s*{_NUM}"
_PAIR_RE = re.compile(_PAIR, re.IGNORECASE)
# A whole line of pairs, separated by commas, semicolons or spaces, with an optional end mark.
_PAIR_LIST_RE = re.compile(
    rf"^{_PAIR_NC}(?:(?:\s*[,;]\s*|\s+){_PAIR_NC})*\s*[,;.]?$", re.IGNORECASE)
_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022]\s+)?")
# "AU values:", "AU detections:", ...: a short label without digits before the pairs.
_LABEL_RE = re.compile(r"^([^\d:=\n]{1,40}?)\s*[:=\uff1a]\s*(.*)$")


def parse_au_text(text: str) -> dict:
    """AU values from the lines of `text` that list `AUxx: value` pairs and nothing else.

    Accepts `AU values: AU04: 2.24, AU07: 1.87`, `AU04_r: 2.24`, `AU4=2.24`, `AU 04: 2.24`,
    a trailing period, and several such lines. Other lines (e.g. `AU descriptions: Brow
    lowerer (intensity: 2.24)`) are ignored. Returns {} when there are none; raises
    ValueError for unknown codes, out-of-range values and contradicting duplicates.
    """
    au: dict = {}
    for line in str(text).splitlines():
        body = line[_BULLET_RE.match(line).end():].strip()
        if not _PAIR_LIST_RE.match(body):
            label = _LABEL_RE.match(body)
            if not label or not _PAIR_LIST_RE.match(label.group(2).strip()):
                continue
            body = label.group(2).strip()
        for number, kind, value in _PAIR_RE.findall(body):
            column = au_column(number, kind)
            _put(au, column, _check_value(column, float(value)))
    return au


# MER-Factory's listing ("Brow lowerer (intensity: 2.24), ...") uses the FACS names of facs.py,
# capitalised, with "Lip corner puller (smile)".
_NAME_TO_CODE = {au.name.lower(): code for code, au in ACTION_UNITS.items()}
_LISTING_ITEM_RE = re.compile(
    r"\s*([A-Za-z][A-Za-z -]*?)\s*(?:\(smile\)\s*)?\(intensity:\s*(" + _NUM + r")\)\s*(?:,|$)")
_NEUTRAL_RE = re.compile(r"^\s*neutral expression\b[^,()]*$", re.IGNORECASE)


def parse_au_listing(text: str | None) -> dict | None:
    """MER-Factory's AU listing -> `{column: value}`; {} for "Neutral expression..."; None when
    `text` is not such a listing (free text, unknown names)."""
    if not isinstance(text, str) or not text.strip():
        return None
    if _NEUTRAL_RE.match(text):
        return {}
    au: dict = {}
    pos, text = 0, text.strip()
    while pos < len(text):
        m = _LISTING_ITEM_RE.match(text, pos)
        code = _NAME_TO_CODE.get(m.group(1).strip().lower()) if m else None
        if code is None:
            return None
        try:
            column = au_column(code[2:])
            _put(au, column, _check_value(column, float(m.group(2))))
        except ValueError:
            return None
        pos = m.end()
    return au


def listing_matches(text: str | None, au: Mapping[str, float]) -> bool:
    """Whether a MER-Factory listing names exactly the AUs of `au`, with the same values (it
    prints two decimals)."""
    listed = parse_au_listing(text)
    if listed is None or set(listed) != set(au):
        return False
    return all(abs(listed[c] - au[c]) <= 0.005 + 1e-9 for c in listed)
