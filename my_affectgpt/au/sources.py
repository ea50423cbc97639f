"""Readers that turn existing AU annotations into `AURecord`s for the instruction dataset.

Two kinds of input (DESIGN.md §4):

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

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

from my_affectgpt.au.facs import ACTION_UNITS, ALL_CODES, PRESENCE_ONLY
from my_affectgpt.common.errors import InputError

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


# --------------------------------------------------------------------------- MER-Factory

AU_ANALYSIS_SUFFIX = "_au_analysis.json"
MERR_DATA_SUFFIX = "_merr_data.json"


@dataclass(frozen=True)
class MerFactoryVideo:
    """The MER-Factory files of one video (either may be missing)."""
    video: str
    au_analysis: Path | None
    merr_data: Path | None

    @property
    def files(self) -> tuple:
        return tuple(p for p in (self.au_analysis, self.merr_data) if p is not None)


def find_mer_factory_videos(root) -> list:
    """All videos under `root` with MER-Factory JSON files, sorted by relative folder and name.

    Finds `<root>/<video>/<video>_au_analysis.json` and `..._merr_data.json` at any depth (so
    `<root>/<dataset>/<video>/...` works too). Raises InputError when `root` is not a folder
    or holds no such files.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(root, "directory does not exist")
    if not root.is_dir():
        raise InputError(root, "not a directory")
    groups: dict = {}
    for suffix, slot in ((AU_ANALYSIS_SUFFIX, 0), (MERR_DATA_SUFFIX, 1)):
        for path in root.rglob(f"*{suffix}"):
            if not path.is_file() or len(path.name) == len(suffix):
                continue
            video = path.name[:-len(suffix)]
            key = (path.parent.relative_to(root).as_posix(), video)
            groups.setdefault(key, [None, None])[slot] = path
    if not groups:
        raise InputError(root, f"no MER-Factory files (*{AU_ANALYSIS_SUFFIX} or "
                               f"*{MERR_DATA_SUFFIX}) found")
    return [MerFactoryVideo(key[1], *groups[key]) for key in sorted(groups)]


def _load_json_object(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(path, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or e}") from None
    if not isinstance(data, dict):
        raise InputError(path, f"expected a JSON object at the top level, got {type(data).__name__}")
    return data


def _frame_number(value, path: Path, where: str) -> int:
    # json gives ints; frame numbers written through pandas may come back as 12.0.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(path, f"{where}: frame number {value!r} is not a non-negative integer")
    return value


def _au_field(raw, path: Path, where: str) -> dict:
    if not isinstance(raw, Mapping):
        raise InputError(path, f"{where}: expected an object of AU values, got {type(raw).__name__}")
    try:
        return normalise_au_mapping(raw)
    except ValueError as e:
        raise InputError(path, f"{where}: {e}") from None


def _text_field(value, path: Path, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(path, f"{where}: expected text, got {type(value).__name__}")
    return value.strip() or None


def strip_chat_dump(text: str | None) -> str | None:
    """The assistant part of a decoded chat ("system\\n...\\nuser\\n...\\nassistant\\n<text>"),
    which the AU-agent fork stored in `fine_grained_description(s)`; other text unchanged."""
    if text is None:
        return None
    lines = text.splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip().lower() == "assistant"]
    if marks and any(line.strip().lower() in ("system", "user") for line in lines[:marks[-1]]):
        text = "\n".join(lines[marks[-1] + 1:])
    return text.strip() or None


def _frame_texts(data: dict, key: str, path: Path) -> dict:
    raw = data.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InputError(path, f"{key}: expected an object keyed by frame number")
    out = {}
    for frame, text in raw.items():
        if not str(frame).strip().isdigit():
            raise InputError(path, f"{key}: key {frame!r} is not a frame number")
        text = strip_chat_dump(_text_field(text, path, f"{key}[{frame!r}]"))
        if text:
            out[int(frame)] = text
    return out


def _per_frame_records(data: dict, path: Path, video: str, listing_answers: bool) -> list:
    entries = data.get("per_frame_au_descriptions")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise InputError(path, "per_frame_au_descriptions: expected a list")
    summary = _frame_texts(data, "summary_description", path)
    fine = _frame_texts(data, "fine_grained_descriptions", path)
    records, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"per_frame_au_descriptions[{i}]"
        if not isinstance(entry, Mapping):
            raise InputError(path, f"{where}: expected an object")
        frame = _frame_number(entry.get("frame"), path, f"{where}.frame")
        if frame in seen:
            raise InputError(path, f"{where}: frame {frame} appears twice")
        seen.add(frame)
        if "active_aus" not in entry:
            raise InputError(path, f"{where}: active_aus is missing")
        au = _au_field(entry["active_aus"], path, f"{where}.active_aus")
        # Per-frame natural descriptions first; the cleanest one (summary) wins.
        answer = (summary.get(frame) or fine.get(frame) or strip_chat_dump(
            _text_field(entry.get("fine_grained_description"), path,
                        f"{where}.fine_grained_description")))
        if answer is None and listing_answers:
            listing = _text_field(entry.get("au_description"), path, f"{where}.au_description")
            answer = listing if listing_matches(listing, au) else None
        records.append(AURecord(video, frame, au, answer, SOURCE_MER_FACTORY))
    return records


def _peak_listing(data: dict, path: Path) -> str | None:
    # Current releases write overall_peak_au_description; older ones peak_au_text.
    for key in ("overall_peak_au_description", "peak_au_text"):
        text = _text_field(data.get(key), path, key)
        if text:
            return text
    return None


def _merr_record(data: dict, path: Path, video: str, extra_listings: list,
                 listing_answers: bool) -> AURecord | None:
    info = data.get("overall_peak_frame_info")
    if info is None:
        return None
    if not isinstance(info, Mapping):
        raise InputError(path, "overall_peak_frame_info: expected an object")
    frame = _frame_number(info.get("frame_number"), path, "overall_peak_frame_info.frame_number")
    if "top_aus_intensities" not in info:
        raise InputError(path, "overall_peak_frame_info: top_aus_intensities is missing")
    au = _au_field(info["top_aus_intensities"], path, "overall_peak_frame_info.top_aus_intensities")
    answer = None
    if listing_answers:
        coarse = data.get("coarse_descriptions_at_peak") or {}
        if not isinstance(coarse, Mapping):
            raise InputError(path, "coarse_descriptions_at_peak: expected an object")
        listings = [_text_field(coarse.get("visual_expression"), path,
                                "coarse_descriptions_at_peak.visual_expression")] + extra_listings
        answer = next((t for t in listings if listing_matches(t, au)), None)
    return AURecord(video, frame, au, answer, SOURCE_MER_FACTORY)


def read_mer_factory_video(item: MerFactoryVideo, *, listing_answers: bool = False) -> list:
    """The records of one video, sorted by frame. Raises InputError naming a malformed file.

    Per-frame entries come first; the MER pipeline's peak frame is added unless a per-frame
    entry already covers it. A file from the AU pipeline alone gives one record (frame -1)
    parsed from its peak listing. `listing_answers`: use MER-Factory's AU listing as the
    answer when it names exactly the record's AUs and values (it is a list, not prose).
    """
    au_data = _load_json_object(item.au_analysis) if item.au_analysis else {}
    merr = _load_json_object(item.merr_data) if item.merr_data else {}
    records = _per_frame_records(au_data, item.au_analysis, item.video, listing_answers) \
        if item.au_analysis else []
    listing = _peak_listing(au_data, item.au_analysis) if item.au_analysis else None
    peak = _merr_record(merr, item.merr_data, item.video, [listing] if listing else [],
                        listing_answers) if item.merr_data else None
    if peak is not None and peak.frame not in {r.frame for r in records}:
        records.append(peak)
    if not records and listing is not None:
        au = parse_au_listing(listing)
        if au is not None:  # free text carries no AU values
            records.append(AURecord(item.video, -1, au, listing if listing_answers else None,
                                    SOURCE_MER_FACTORY))
    return sorted(records, key=lambda r: r.frame)


def read_mer_factory_dir(root, *, on_error: Callable[[InputError], None] | None = None,
                         listing_answers: bool = False) -> Iterator[AURecord]:
    """Records from every MER-Factory video under `root`, in sorted folder order.

    A malformed file raises InputError naming it; with `on_error`, the error is passed to it
    and that video is skipped instead. Raises InputError(root) when `root` is missing, holds no
    MER-Factory files, or none of them holds AU values.
    """
    videos = find_mer_factory_videos(root)
    yielded = skipped = 0
    for item in videos:
        try:
            records = read_mer_factory_video(item, listing_answers=listing_answers)
        except InputError as err:
            if on_error is None:
                raise
            on_error(err)
            skipped += 1
            continue
        yielded += len(records)
        yield from records
    if not yielded:
        n_files = sum(len(v.files) for v in videos)
        note = f", {skipped} video(s) skipped as malformed" if skipped else ""
        raise InputError(root, f"none of the {n_files} MER-Factory file(s) holds AU values "
                               f"(per_frame_au_descriptions, overall_peak_frame_info or a peak "
                               f"AU listing){note}")


# --------------------------------------------------------------------------- instruction JSONL

_USER_ROLES = {"human", "user"}
_ASSISTANT_ROLES = {"gpt", "assistant", "model", "bot"}
_OTHER_ROLES = {"system", "observation", "function_call", "tool", "function"}


def _content_text(value) -> str:
    """Message content: a string, or OpenAI-style parts `[{"type": "text", "text": ...}]`."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    raise ValueError(f"message content of type {type(value).__name__} is not text")


def _turns(obj: Mapping) -> list:
    """(role, text) of a ShareGPT `conversations` or OpenAI `messages` list."""
    key = "conversations" if "conversations" in obj else "messages"
    items = obj[key]
    if not isinstance(items, list):
        raise ValueError(f"{key} is not a list")
    turns = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"{key}[{i}] is not an object")
        role = item.get("from", item.get("role"))
        role = role.lower() if isinstance(role, str) else role
        if role in _USER_ROLES:
            role = "user"
        elif role in _ASSISTANT_ROLES:
            role = "assistant"
        elif role not in _OTHER_ROLES:
            raise ValueError(f"{key}[{i}] has unknown role {role!r}")
        turns.append((role, _content_text(item.get("value", item.get("content")))))
    return turns


def _chat_au_and_answer(obj: Mapping) -> tuple:
    # The prompt is the first user turn with AU values (else the first user turn, for lines
    # with a structured "au" object); the answer is the assistant turn that replies to it.
    turns = _turns(obj)
    users = [i for i, (role, _) in enumerate(turns) if role == "user"]
    au, prompt = {}, users[0] if users else None
    for i in users:
        au = parse_au_text(turns[i][1])
        if au:
            prompt = i
            break
    if prompt is None:
        return {}, None
    answer = None
    for role, text in turns[prompt + 1:]:
        if role == "user":
            break
        if role == "assistant":
            answer = text
            break
    return au, answer


def _alpaca_au_and_answer(obj: Mapping) -> tuple:
    texts = []
    for key in ("instruction", "input"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f'"{key}" is not text')
        texts.append(value or "")
    output = obj.get("output")
    if output is not None and not isinstance(output, str):
        raise ValueError('"output" is not text')
    # LLaMA-Factory joins instruction and input into one prompt, so either may hold the values.
    return parse_au_text("\n".join(texts)), output


def _video_name(obj: Mapping, fallback: str) -> str:
    for key in ("video", "name", "id"):
        value = obj.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, (str, int)) and str(value).strip():
            return str(value).strip()
    videos = obj.get("videos")  # MER-Factory's ShareGPT export: "videos": ["/path/clip.mp4"]
    if isinstance(videos, list) and videos and isinstance(videos[0], str) and videos[0].strip():
        return Path(videos[0].strip()).stem
    return fallback


def _record_frame(obj: Mapping) -> int:
    value = obj.get("frame", -1)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ValueError(f'"frame" {value!r} is not a frame number')
    return value


def _instruction_record(obj, stem: str, line_no: int) -> AURecord:
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if "conversations" in obj or "messages" in obj:
        source = SOURCE_SHAREGPT
        au, answer = _chat_au_and_answer(obj)
    elif any(k in obj for k in ("instruction", "input", "output")):
        source = SOURCE_ALPACA
        au, answer = _alpaca_au_and_answer(obj)
    else:
        raise ValueError("neither Alpaca (instruction/input/output) nor ShareGPT "
                         "(conversations or messages)")
    # Our own dataset lines (DESIGN.md §4) carry the values as a structured "au" object.
    if isinstance(obj.get("au"), Mapping):
        au = normalise_au_mapping(obj["au"])
    if not au:
        raise ValueError("no AU values found (expected a line like "
                         "'AU values: AU04: 2.24, AU07: 1.87')")
    answer = answer.strip() if isinstance(answer, str) and answer.strip() else None
    return AURecord(_video_name(obj, f"{stem}_{line_no}"), _record_frame(obj), au, answer, source)


def read_instruction_jsonl(path) -> Iterator[AURecord]:
    """Records from an Alpaca / ShareGPT / OpenAI-messages JSONL file, one per non-blank line,
    detecting the style per line. Raises InputError(path, "line N: <cause>") on a bad line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file does not exist" if not path.exists() else "not a file")
    count = 0
    try:
        with open(path, encoding="utf-8-sig") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(path, f"line {line_no}: invalid JSON: {e.msg} "
                                           f"(column {e.colno})") from None
                try:
                    record = _instruction_record(obj, path.stem, line_no)
                except ValueError as e:
                    raise InputError(path, f"line {line_no}: {e}") from None
                count += 1
                yield record
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None
    if not count:
        raise InputError(path, "no records (the file is empty)")
