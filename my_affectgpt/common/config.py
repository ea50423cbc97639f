"""Generic YAML config plumbing (OmegaConf structured schemas), for every layer's own schema:

- read_yaml: a YAML file as a plain mapping, with errors that name the file;
- parse_options: `--options a.b=c` overrides as a mapping;
- check_keys: every key of a mapping against a schema dataclass first, so a misspelt key fails with
  the file, the full dotted key and a "did you mean" hint (naming the options of an enumerated key)
  instead of being silently ignored or reported by OmegaConf without context;
- matches: dotted keys against patterns with `*`; choice_error: a value outside its options;
- config_to_yaml: the YAML text a loader reads back to the same config.

The schemas themselves live with the layer they configure: the AffectGPT config in
datasets/affectgpt_config.py, the AU Agent's keys in models/au_agent/config.py, the AU Agent SFT
recipe's in training/au_sft/config.py.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from my_affectgpt.common.errors import InputError


# ---- key checks -----------------------------------------------------------------------------

def _known_keys(schema) -> dict:
    """{field name: its type hint} of a schema dataclass."""
    out = {}
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        out[f.name] = hints[f.name]
    return out


def check_keys(node, schema, prefix: str, source: str, origin: str, choice_keys: Mapping | None = None) -> None:
    """Raise InputError for the first key of `node` that `schema` (a dataclass type) lacks.
    Empty sections (None) of a plain container become {} on the way. `choice_keys` maps dotted
    patterns of enumerated keys to their options, named in the hint for a close misspelling."""
    if not isinstance(node, Mapping):
        return
    known = _known_keys(schema)
    for key, value in list(node.items()):
        dotted = f"{prefix}{key}"
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
            note = _choices_note(prefix + close[0], choice_keys) if close else ""
            hint = f"; did you mean '{prefix}{close[0]}'{note}?" if close else f"; known keys here: {', '.join(known)}"
            raise InputError(source, f"unknown key '{dotted}'{origin}{hint}")
        hint_type = known[key]
        if value is None and (dataclasses.is_dataclass(hint_type) or typing.get_origin(hint_type) in (dict, Dict)) \
                and isinstance(node, dict):
            node[key] = value = {}  # an empty YAML section (`inference:`) means its defaults
        _check_child(value, hint_type, f"{dotted}.", source, origin, choice_keys)


def _check_child(value, hint, prefix: str, source: str, origin: str, choice_keys: Mapping | None) -> None:
    hint_origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if value is not None and not isinstance(value, Mapping):
            raise InputError(source, f"'{prefix[:-1]}'{origin} must be a mapping, got {value!r}")
        check_keys(value, hint, prefix, source, origin, choice_keys)
    elif hint_origin in (dict, Dict) and dataclasses.is_dataclass(args[1]):
        if value is not None and not isinstance(value, Mapping):
            raise InputError(source, f"'{prefix[:-1]}'{origin} must be a mapping of named entries")
        for name, entry in (value or {}).items():
            if not isinstance(entry, Mapping):
                raise InputError(source, f"'{prefix}{name}'{origin} must be a mapping, got {entry!r}")
            check_keys(entry, args[1], f"{prefix}{name}.", source, origin, choice_keys)
    elif hint_origin in (list, List) and args and dataclasses.is_dataclass(args[0]):
        items = value.items() if isinstance(value, Mapping) else enumerate(value or [])
        for i, entry in items:  # a dotlist override may address an item as test_datasets.0.name
            check_keys(entry, args[0], f"{prefix}{i}.", source, origin, choice_keys)


def _choices_note(dotted: str, choice_keys: Mapping | None) -> str:
    """` (one of a, b, c)` for an enumerated key, else ``."""
    for pattern, choices in (choice_keys or {}).items():
        if matches(dotted, pattern):
            return f" (one of {', '.join(choices)})"
    return ""


def matches(dotted: str, pattern: str) -> bool:
    """`datasets.mer.data_root` matches `datasets.*.data_root` (`*`: any name or list index)."""
    parts, pats = dotted.split("."), pattern.split(".")
    return len(parts) == len(pats) and all(p == "*" or p == d for d, p in zip(parts, pats))


# ---- reading --------------------------------------------------------------------------------

def read_yaml(path: Path, *, resolve: bool = False, not_mapping: str = "config must be a mapping") -> dict:
    """The plain mapping of a YAML file (OmegaConf; `resolve`: interpolations resolved)."""
    if not path.is_file():
        raise InputError(path, "config file not found" if not path.exists() else "not a file")
    try:
        raw = OmegaConf.load(path)
        data = OmegaConf.to_container(raw, resolve=resolve) if isinstance(raw, DictConfig) else None
    except (OmegaConfBaseException, yaml.YAMLError, ValueError, OSError) as err:
        raise InputError(path, f"cannot read config ({str(err).splitlines()[0]})") from None
    if data is None:
        raise InputError(path, not_mapping)
    return data


def parse_options(options: Sequence[str], path: Path) -> dict:
    """`key=value` overrides (OmegaConf dotlist) as a plain mapping."""
    for opt in options:
        if "=" not in opt or not opt.split("=", 1)[0].strip():
            raise InputError(path, f"--options entry {opt!r} is not key=value")
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist(list(options)), resolve=False)
    except (OmegaConfBaseException, ValueError) as err:
        raise InputError(path, f"cannot parse --options ({str(err).splitlines()[0]})") from None


def full_key(err: OmegaConfBaseException) -> str:
    key = getattr(err, "full_key", None) or getattr(err, "key", None)
    return f"'{key}': " if key else ""


def choice_error(value, choices) -> str | None:
    """The message for a value outside `choices` (all of them named, and a did-you-mean), else None."""
    if value in choices:
        return None
    close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{value!r} is not one of {', '.join(choices)}{hint}"


def config_to_yaml(cfg: DictConfig) -> str:
    """YAML text of a (resolved) config; its loader reads it back to the same config."""
    return OmegaConf.to_yaml(cfg, resolve=True)
