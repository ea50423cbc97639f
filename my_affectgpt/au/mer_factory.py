"""MER-Factory output folders (github.com/Lum1104/MER-Factory) -> `AURecord`s (au/sources.py has
the file formats and the record)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping

from my_affectgpt.au.sources import (SOURCE_MER_FACTORY, AURecord, listing_matches, normalise_au_mapping,
                                     parse_au_listing)
from my_affectgpt.common.errors import InputError


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
