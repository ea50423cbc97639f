"""`face_or_frame` parsed once into the set of modality tokens a model and its data need.

    parse_face_or_frame("multiface_audio_face_frame_au_text")
    -> Modalities(tokens={multi, audio, face, frame, au, text}, multi_visual="face")

Tokens, separated by `_`: `multiface` / `multiframe` (the fused audio + faces or audio + frames
token, written `multi`), `audio`, `face`, `frame`, `au` (AU Agent features or text), `text`
(the subtitle). The order in the value does not matter; prompts always use TOKENS order.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from my_affectgpt.common.errors import InputError

TOKENS = ("multi", "audio", "face", "frame", "au", "text")   # also the prompt order
_MULTI = {"multiface": "face", "multiframe": "frame"}
_SPELLINGS = ("multiface", "multiframe") + TOKENS[1:]


@dataclass(frozen=True)
class Modalities:
    tokens: frozenset                 # subset of TOKENS
    multi_visual: str | None = None   # "face" | "frame" when "multi" in tokens, else None

    def __post_init__(self):
        unknown = set(self.tokens) - set(TOKENS)
        if unknown:
            raise InputError("face_or_frame", f"unknown modality token(s) {sorted(unknown)}")
        if ("multi" in self.tokens) != (self.multi_visual is not None) or \
                self.multi_visual not in (None, "face", "frame"):
            raise InputError("face_or_frame", "multi needs multi_visual face or frame, and only multi has one")

    def __contains__(self, token: str) -> bool:
        return token in self.tokens

    @property
    def ordered(self) -> tuple:
        return tuple(t for t in TOKENS if t in self.tokens)

    @property
    def visual_inputs(self) -> frozenset:
        """The visual streams the data must load: face and/or frame, the multi token's included."""
        needed = {t for t in ("face", "frame") if t in self.tokens}
        if self.multi_visual:
            needed.add(self.multi_visual)
        return frozenset(needed)

    @property
    def needs_audio(self) -> bool:
        return "audio" in self.tokens or "multi" in self.tokens

    @property
    def name(self) -> str:
        """The canonical face_or_frame spelling (parse_face_or_frame(m.name) == m)."""
        return "_".join(f"multi{self.multi_visual}" if t == "multi" else t for t in self.ordered)


def parse_face_or_frame(value: str) -> Modalities:
    """Modalities of a face_or_frame value; unknown, repeated or conflicting tokens are errors."""
    if not isinstance(value, str) or not value.strip():
        raise InputError("face_or_frame", f"needs at least one modality token ({', '.join(_SPELLINGS)}), "
                                          f"got {value!r}")
    tokens, multi_visual = set(), None
    for part in value.strip().split("_"):
        if part not in _SPELLINGS:
            close = difflib.get_close_matches(part, _SPELLINGS, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError("face_or_frame", f"unknown modality token {part!r} in {value!r} "
                                              f"(tokens: {', '.join(_SPELLINGS)}){hint}")
        token = "multi" if part in _MULTI else part
        if token in tokens:
            what = "multiface and multiframe together" if part in _MULTI else f"{part!r} twice"
            raise InputError("face_or_frame", f"{what} in {value!r}: each modality token at most once")
        tokens.add(token)
        if part in _MULTI:
            multi_visual = _MULTI[part]
    return Modalities(frozenset(tokens), multi_visual)
