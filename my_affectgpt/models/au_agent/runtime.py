"""The AU Agent: OpenFace CSV -> sampled frames -> one description per frame -> text features.

    with AUAgent(AUAgentConfig(backend="template", text_encoder="minilm")) as agent:
        feats, meta = agent.video_features("data/openface/vid0001/vid0001.csv")

Why it is fast. AffectGPT reads AU features of 30K-130K videos x 8 frames; describing each frame
with a sampled `generate` call inside the data path costs tens of GPU-hours per epoch. Here:
- frames are described once, offline (`extract`), and stored per video (feature_store.py);
- equal AU states give equal canonical prompts (DESIGN.md §3), and each distinct prompt is
  generated once, greedily, in length-sorted left-padded batches that stop at EOS;
- a persistent SQLite cache keyed by prompt + prompt version + model identity + adapter hash +
  generation settings answers every prompt seen before, in any later run or process, without
  even loading the model;
- neutral shortcut: a frame with no active AU (canonical prompt ``neutral``) gets the fixed
  sentence NEUTRAL_DESCRIPTION without a model call. It is the sentence the rule teacher writes
  for neutral frames, so a fine-tuned adapter was trained towards it; it is part of the
  identity, and `au_agent_neutral_shortcut: false` sends neutral frames to the model instead.

Videos with fewer than T usable frames. Every usable frame is used, in time order, and slot k of T
shows usable frame floor(k * n / T) (nearest-frame upsampling, as frame samplers do for short
clips; au_values.sampled_rows, the rule the AU-values route shares), so the Q-Former still
sees T time steps with the same statistics; meta `status` is `few_frames` and `mask` is all
ones. A video with no usable frame (tracking lost throughout, or a header-only CSV) gets zero
features, `status: empty`, `valid: false` and an all-zero `mask`, so training can mask it.
A file that is not an OpenFace CSV at all is an error for that video.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from my_affectgpt.au import prompts as au_prompts
from my_affectgpt.au.frames import FrameAU, frame_aus
from my_affectgpt.au.openface import read_openface_csv, video_name
from my_affectgpt.au.teacher import NEUTRAL_SENTENCE, RuleTeacher
from my_affectgpt.common.answer_cache import AnswerCache
from my_affectgpt.common.errors import InputError
from my_affectgpt.models import base_llm
from my_affectgpt.models.au_agent.backends import make_backend, resolve_device
from my_affectgpt.models.au_agent.config import AUAgentConfig
from my_affectgpt.models.au_agent import verify
from my_affectgpt.models.au_agent.identity import prompt_identity
from my_affectgpt.models.au_values import is_empty_video_error, sampled_rows
from my_affectgpt.models.feature_store import csv_fingerprint, identity_hash
from my_affectgpt.models.text_encoders import TextEncoderSpec, encoder_identity, load_text_encoder

NEUTRAL_PROMPT = "neutral"
NEUTRAL_DESCRIPTION = NEUTRAL_SENTENCE
FEATURE_FORMAT = 1        # bump when the per-video rules above change


@dataclass
class AgentStats:
    frames: int = 0           # frames asked for
    unique_prompts: int = 0   # distinct prompts per describe() call, summed
    neutral_frames: int = 0   # answered by the neutral shortcut
    memory_hits: int = 0      # distinct prompts answered from this process's memory
    cache_hits: int = 0       # distinct prompts answered from the persistent cache
    generated: int = 0        # distinct prompts the backend generated
    generate_s: float = 0.0
    checked: int = 0          # distinct descriptions the judge read (au_agent_verify flag|repair)
    failed_first: int = 0     # ... that failed it
    regenerated: int = 0      # ... repaired by a second attempt of the model
    fell_back: int = 0        # ... replaced by the rule teacher's description
    repairs_generated: int = 0  # second attempts the backend generated (not from the cache)
    verify_s: float = 0.0

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["duplicate_rate"] = round(1 - self.unique_prompts / self.frames, 4) if self.frames else 0.0
        return d


class AUAgent:
    """Descriptions and text features of OpenFace frames; see the module docstring.

    `model`/`tokenizer` inject an already loaded hf model (benchmarks, notebooks); otherwise the
    model loads on the first prompt that neither the neutral shortcut nor a cache answers.
    `encoder` injects an already loaded text encoder (an object with `encode` and `dim`); the
    config's `text_encoder` is the spec string (`minilm`, `open_clip:ViT-B-32`) it must match.
    """

    def __init__(self, config: AUAgentConfig | None = None, *, model=None, tokenizer=None,
                 encoder=None, **overrides):
        if isinstance(encoder, (str, TextEncoderSpec)):  # not hasattr: a lazy proxy would load on it
            raise TypeError(f"AUAgent(encoder=...) takes a loaded text encoder (models.text_encoders), "
                            f"got {encoder!r}; to choose one by name set the config's text_encoder "
                            f"spec, e.g. AUAgent(config, text_encoder={encoder!r})")
        if config is None:
            config = AUAgentConfig(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        if not isinstance(config.text_encoder, str):
            raise TypeError(f"text_encoder is the encoder spec string (e.g. 'minilm'), got "
                            f"{config.text_encoder!r}; pass a loaded encoder as AUAgent(encoder=...)")
        self.config = config
        self.backend = make_backend(config, model=model, tokenizer=tokenizer)
        self._identity = None
        self._memory: dict = {}
        self._cache = None
        self._encoder = encoder
        self._verdicts: dict = {}   # prompt -> (final description, verify status)
        self._teacher = RuleTeacher(bands=config.bands)
        self.stats = AgentStats()

    # -- identity -----------------------------------------------------------------------------

    def identity(self) -> dict:
        """Everything that changes a description (no model is loaded to compute it)."""
        if self._identity is None:
            ident = {**self.backend.identity(), **prompt_identity()}
            ident["neutral_shortcut"] = NEUTRAL_DESCRIPTION if self.config.neutral_shortcut else None
            self._identity = ident
        return self._identity

    def encoder_spec(self) -> TextEncoderSpec:
        return TextEncoderSpec.parse(self.config.text_encoder, self.config.text_encoder_pretrained)

    def feature_identity(self) -> dict:
        """Identity of a video's features: describer + checks + encoder + frame selection rules."""
        cfg = self.config
        return {"format": FEATURE_FORMAT, "describer": self.identity(),
                **verify.verify_identity(cfg.verify),
                "text_encoder": encoder_identity(self.encoder_spec()),
                "num_frames": cfg.num_frames, "sampling": cfg.sampling,
                "bands": dataclasses.asdict(cfg.bands), "min_confidence": cfg.min_confidence}

    def cache_key(self, prompt: str) -> str:
        blob = json.dumps([prompt, identity_hash(self.identity())], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _persistent_cache(self) -> AnswerCache | None:
        if not self.backend.uses_cache:
            return None
        if self._cache is None:
            path = self.config.cache_path
            if path == "auto":
                path = base_llm.cache_root(self.config.model_cache_dir) / "au_descriptions.sqlite"
            self._cache = AnswerCache(path)
        return self._cache

    # -- descriptions -------------------------------------------------------------------------

    def describe(self, frames: Iterable[FrameAU | str], progress: bool = False) -> list:
        """One description per frame (FrameAU or canonical AU text), in input order."""
        return self.describe_checked(frames, progress)[0]

    def describe_checked(self, frames: Iterable[FrameAU | str], progress: bool = False) -> tuple:
        """(descriptions, verify statuses) per frame, in input order (see verify.py)."""
        texts = [f.prompt if isinstance(f, FrameAU) else str(f) for f in frames]
        answers = self._answers(texts, progress)
        status = self._checked(answers, progress)
        return [answers[t] for t in texts], [status[t] for t in texts]

    def _answers(self, texts: list, progress: bool, stats: AgentStats | None = None) -> dict:
        """{prompt: the model's description} for the distinct prompts of `texts` (counted in
        `stats`, by default the agent's)."""
        stats = self.stats if stats is None else stats
        stats.frames += len(texts)
        distinct = list(dict.fromkeys(texts))
        stats.unique_prompts += len(distinct)
        answers: dict = {}
        if self.config.neutral_shortcut and NEUTRAL_PROMPT in distinct:
            answers[NEUTRAL_PROMPT] = NEUTRAL_DESCRIPTION
            stats.neutral_frames += texts.count(NEUTRAL_PROMPT)
        todo = [t for t in distinct if t not in answers]
        for t in todo:
            if t in self._memory:
                answers[t] = self._memory[t]
        stats.memory_hits += len(answers) - (NEUTRAL_PROMPT in answers)
        todo = [t for t in todo if t not in answers]
        cache = self._persistent_cache()
        if cache is not None and todo:
            keys = {t: self.cache_key(t) for t in todo}
            found = cache.get_many(keys.values())
            for t in todo:
                if keys[t] in found:
                    answers[t] = self._memory[t] = found[keys[t]]
                    stats.cache_hits += 1
            todo = [t for t in todo if t not in answers]
        if todo:
            start = time.perf_counter()
            tag = identity_hash(self.identity())
            for chunk, outs in self.backend.generate(todo, progress=progress):
                for t, o in zip(chunk, outs):
                    answers[t] = self._memory[t] = o
                if cache is not None:  # per batch: a killed run keeps what it generated
                    cache.put_many([(self.cache_key(t), o) for t, o in zip(chunk, outs)],
                                   model=tag, prompt_version=au_prompts.PROMPT_VERSION)
                stats.generated += len(chunk)
            stats.generate_s += time.perf_counter() - start
        return answers

    def _checked(self, answers: dict, progress: bool) -> dict:
        """Reads each new description with the judge (au_agent_verify) and, in repair mode,
        replaces failures in `answers`; returns {prompt: status}. Outcomes are memoised: a
        prompt is checked and repaired once per process, and second attempts are cached."""
        mode = self.config.verify
        if mode == "off":
            return {t: verify.UNCHECKED for t in answers}
        start = time.perf_counter()
        new = [t for t in answers if t not in self._verdicts]
        finals, statuses = verify.verified(
            new, [answers[t] for t in new], mode, lambda items: self._second_attempts(items, progress),
            self.config.bands, self._teacher)
        for t, final, status in zip(new, finals, statuses):
            self._verdicts[t] = (final, status)
        c = verify.counts(statuses)
        self.stats.checked += c["checked"]
        self.stats.failed_first += c["failed_first"]
        self.stats.regenerated += c["regenerated"]
        self.stats.fell_back += c["fell_back"]
        for t in answers:
            answers[t] = self._memory[t] = self._verdicts[t][0]
        self.stats.verify_s += time.perf_counter() - start
        return {t: self._verdicts[t][1] for t in answers}

    def _second_attempts(self, items: list, progress: bool) -> list:
        """Second answers to (prompt, first answer, problems): the model describes the part of
        the state it got wrong as ordinary prompts (verify.second_attempts), cached like any."""
        scratch = AgentStats()        # not frames of the data: counted as repairs only
        out = verify.second_attempts(items, lambda texts: [
            a[t] for a in [self._answers(texts, progress, scratch)] for t in texts])
        self.stats.repairs_generated += scratch.generated
        self.stats.generate_s += scratch.generate_s
        return out

    # -- per video ----------------------------------------------------------------------------

    def text_encoder(self):
        if self._encoder is None:
            self._encoder = load_text_encoder(self.encoder_spec(), device=resolve_device(self.config.device))
        return self._encoder

    def plan_video(self, csv, video: str | None = None, num_frames: int | None = None,
                   sampling: str | None = None) -> dict:
        """Read and sample one video: {video, track, slots (T FrameAU or []), status, ...}.

        Raises InputError for a file that is not a usable OpenFace CSV; a CSV without any usable
        frame gives status `empty` (see the module docstring).
        """
        csv = Path(csv)
        video = video or video_name(csv)
        T = num_frames or self.config.num_frames
        sampling = sampling or self.config.sampling
        plan = {"video": video, "csv": str(csv), "track": None, "slots": [], "n_rows": 0,
                "n_usable": 0, "face_id": None, "n_faces": 0, "reason": None,
                "num_frames": T, "sampling": sampling}
        try:
            track = read_openface_csv(csv, min_confidence=self.config.min_confidence, video=video)
        except InputError as err:
            if not is_empty_video_error(err):
                raise
            plan.update(status="empty", reason=err.cause, n_rows=_count_rows(csv))
            return plan
        rows, status = sampled_rows(track, T, sampling)  # nearest-frame upsampling when short
        plan.update(track=track, slots=frame_aus(track, rows, self.config.bands),
                    status=status, n_rows=len(track.frames),
                    n_usable=int(track.usable.sum()), face_id=track.face_id, n_faces=track.n_faces)
        return plan

    def videos_features(self, items: Sequence[tuple[str, Path]], progress: bool = False,
                        num_frames: int | None = None, sampling: str | None = None) -> list:
        """[(video, features | None, meta | None, error | None)] for (video, csv) pairs.

        All frames of all videos are described in one call (distinct prompts once) and all
        distinct descriptions are encoded once. A bad CSV fails its own video only.
        """
        plans, out = [], []
        for video, csv in items:
            try:
                plans.append(self.plan_video(csv, video, num_frames, sampling))
            except InputError as err:
                out.append((video, None, None, err))
        slots = [s for p in plans for s in p["slots"]]
        descriptions, statuses = self.describe_checked(slots, progress=progress) if slots else ([], [])
        distinct = list(dict.fromkeys(descriptions))
        enc = self.text_encoder()
        vectors = enc.encode(distinct) if distinct else np.zeros((0, enc.dim), np.float32)
        row = {d: i for i, d in enumerate(distinct)}
        pos = 0
        for p in plans:
            T = p["num_frames"]
            k = len(p["slots"])
            descs, checks = descriptions[pos:pos + k], statuses[pos:pos + k]
            pos += k
            feats = np.zeros((T, enc.dim), dtype=np.float16)
            if k:
                feats[:] = vectors[[row[d] for d in descs]].astype(np.float16)
            out.append((p["video"], feats, self._meta(p, descs, checks), None))
        return out

    def video_features(self, csv, num_frames: int | None = None, sampling: str | None = None):
        """(features float16 [T, D], meta) of one OpenFace CSV (see the module docstring).

        T and the sampling method default to the config's; the feature store only accepts
        features made with the config's values (they are part of its identity).
        """
        csv = Path(csv)
        _, feats, meta, err = self.videos_features([(video_name(csv), csv)], num_frames=num_frames,
                                                   sampling=sampling)[0]
        if err is not None:
            raise err
        return feats, meta

    def _meta(self, plan: dict, descriptions: list, checks: list) -> dict:
        T = plan["num_frames"]
        slots = plan["slots"]
        valid = bool(slots)
        try:
            fp = csv_fingerprint(plan["csv"])
        except OSError:
            fp = None
        return {
            "csv": plan["csv"], "input": fp, "status": plan["status"], "valid": valid,
            "reason": plan["reason"], "num_frames": T, "sampling": plan["sampling"],
            "face_id": plan["face_id"], "n_faces": plan["n_faces"], "n_rows": plan["n_rows"],
            "n_usable": plan["n_usable"], "n_distinct_frames": len({s.frame for s in slots}),
            "mask": [1 if valid else 0] * T,
            "frames": [s.frame for s in slots], "timestamps": [s.timestamp for s in slots],
            "prompts": [s.prompt for s in slots], "descriptions": list(descriptions),
            "verify": list(checks), "verified": verify.counts(checks),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def __enter__(self) -> "AUAgent":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _count_rows(csv) -> int:
    try:
        with open(csv, "rb") as f:
            return max(0, sum(1 for line in f if line.strip()) - 1)
    except OSError:
        return 0
