"""MER-Caption+ samples for AffectGPT: frames, faces, audio clips, AU features, subtitle, Q&A.

Layout under `data_root` (the synthetic generator writes the same):

    track2_train_mercaptionplus.csv     name, openset ("happy, excited")
    track3_train_mercaptionplus.csv     name, reason
    subtitle_chieng.csv                 name, english (and chinese)
    video/<name>.mp4                    frames: F sampled uniformly, RGB, CLIP-normalised
    openface_face/<name>/<name>.npy     aligned faces uint8 [N, H, W, 3]: F sampled uniformly
    audio/<name>.wav                    C windows of clip_seconds spread uniformly, zero-padded
    openface_output/<name>/<name>.csv   OpenFace CSV -> AU Agent -> features [T, D] (feature store)

Names are those of the label CSVs that `label_type` needs (both, intersected, for `hybird`).
A name whose files are missing or broken fails when it is loaded: `__getitem__` logs it once and
returns None, and `collate_samples` drops it, so one bad video never stops an epoch.

Only what the modalities need is read. With `encoder_feature_dir`, precomputed encoder outputs
`<dir>/{frame,face,audio}/<name>.npy` ([N, D], N rows sampled like frames) replace the media.

AU features. With `use_au_agent: true` the store at `au_feature_dir` is kept current for the
dataset's AU Agent: `ensure_au_features()` computes every missing or stale video in batched
AUAgent calls before training, and `__getitem__` computes a video that is still missing on its
own. With `use_au_agent: false` the store is read as it is (made elsewhere), nothing is computed.

AU values (`au_mode` values / hybrid, models/au_values.py): `__getitem__` reads the OpenFace CSV
itself, every time (cheap; nothing is cached), at the T frames the AU Agent samples (values: the
same rule, applied without any AU Agent, feature store or text encoder) or lists in the store's
`<video>.json` (hybrid: the frames of the features beside them). `--video` inference calls the
same functions, so training and inference see identical values.
"""
from __future__ import annotations

import csv
import logging
import wave
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch

from my_affectgpt.common.config import choice_error
from my_affectgpt.common.errors import InputError
from my_affectgpt.datasets.modalities import Modalities, parse_face_or_frame
from my_affectgpt.models.au_modes import AU_AGENT_MODES, AU_MODES

log = logging.getLogger(__name__)

QUESTIONS = {
    "openset": "Please recognize all possible emotional states of the character.",
    "description": "Please infer the person's emotional state and provide your reasoning process.",
}
LABEL_CSVS = {"openset": ("track2_train_mercaptionplus.csv", "openset"),
              "description": ("track3_train_mercaptionplus.csv", "reason")}
SUBTITLE_CSV = "subtitle_chieng.csv"
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv")
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
AU_CHUNK = 256   # videos per batched AUAgent call: bounded memory, progress persisted per chunk


class SampleError(Exception):
    """One sample cannot be loaded (the cause is logged, the sample skipped)."""


# ---- small readers --------------------------------------------------------------------------

def uniform_indices(n: int, k: int) -> np.ndarray:
    """k indices spread evenly over n items (segment centres); repeats when n < k."""
    if n < 1:
        raise SampleError("no frames")
    return np.minimum(((np.arange(k) + 0.5) * n / k).astype(np.int64), n - 1)


def clip_preprocess(frames_rgb: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N, H, W, 3] RGB -> float32 [N, 3, size, size]: resize the short side, centre crop,
    CLIP mean/std (what CLIPImageProcessor does, without PIL)."""
    import cv2

    out = np.empty((len(frames_rgb), 3, size, size), dtype=np.float32)
    for i, frame in enumerate(frames_rgb):
        h, w = frame.shape[:2]
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        resized = cv2.resize(frame, (nw, nh), interpolation=interp)
        top, left = (nh - size) // 2, (nw - size) // 2
        crop = resized[top:top + size, left:left + size].astype(np.float32) / 255.0
        out[i] = ((crop - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)
    return out


def read_video_frames(path: Path, count: int) -> np.ndarray:
    """`count` frames sampled uniformly from a video, uint8 [count, H, W, 3] RGB."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SampleError(f"cannot open video {path}")
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = [int(w) for w in uniform_indices(n, count)] if n > 0 else None
        keep = set(wanted) if wanted is not None else None
        decoded: dict = {}
        i = 0
        # grab() walks the stream without converting; only the wanted frames are retrieved.
        while (wanted is None or i <= wanted[-1]) and cap.grab():
            if keep is None or i in keep:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    decoded[i] = frame
            i += 1
    finally:
        cap.release()
    if wanted is not None and all(w in decoded for w in wanted):
        picked = [decoded[w] for w in wanted]
    elif wanted is not None:
        return read_video_frames_all(path, count)  # the container's frame count was wrong
    elif decoded:
        keys = sorted(decoded)
        picked = [decoded[keys[j]] for j in uniform_indices(len(keys), count)]
    else:
        raise SampleError(f"no decodable frame in video {path}")
    return np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in picked])


def read_video_frames_all(path: Path, count: int) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise SampleError(f"no decodable frame in video {path}")
    return np.stack([cv2.cvtColor(frames[j], cv2.COLOR_BGR2RGB) for j in uniform_indices(len(frames), count)])


def read_faces(path: Path, count: int) -> np.ndarray:
    """`count` face crops sampled uniformly from an OpenFace face stack, uint8 [count, H, W, 3]."""
    faces = np.load(path, allow_pickle=False)
    if faces.ndim != 4 or faces.shape[-1] != 3:
        raise SampleError(f"{path}: face stack must be [N, H, W, 3], got shape {faces.shape}")
    if faces.dtype != np.uint8:
        faces = np.clip(faces, 0, 255).astype(np.uint8)
    return faces[uniform_indices(len(faces), count)]


def read_wav(path: Path, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform in [-1, 1] at `sample_rate` (PCM WAV; other rates are resampled)."""
    with wave.open(str(path), "rb") as w:
        channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648
    else:
        raise SampleError(f"{path}: unsupported WAV sample width {width} bytes")
    if channels > 1:
        x = x[: len(x) // channels * channels].reshape(-1, channels).mean(axis=1)
    if rate != sample_rate and len(x):
        # Linear interpolation: plenty for speech features, and no extra dependency.
        n_out = max(1, round(len(x) * sample_rate / rate))
        x = np.interp(np.arange(n_out) * (rate / sample_rate), np.arange(len(x)), x).astype(np.float32)
    return x


def audio_clips(wave_: np.ndarray, num_clips: int, clip_samples: int) -> np.ndarray:
    """[num_clips, clip_samples]: windows spread evenly from start to end, zero-padded when short."""
    if len(wave_) < clip_samples:
        clip = np.zeros(clip_samples, dtype=np.float32)
        clip[:len(wave_)] = wave_
        return np.repeat(clip[None], num_clips, axis=0)
    starts = np.linspace(0, len(wave_) - clip_samples, num_clips).round().astype(np.int64)
    return np.stack([wave_[s:s + clip_samples] for s in starts]).astype(np.float32)


def read_feature_rows(path: Path, count: int) -> np.ndarray:
    """Precomputed encoder features [N, D] -> float32 [count, D], rows sampled uniformly."""
    feats = np.load(path, allow_pickle=False)
    if feats.ndim != 2:
        raise SampleError(f"{path}: encoder features must be [N, D], got shape {feats.shape}")
    return feats[uniform_indices(len(feats), count)].astype(np.float32)


def openset_answer(value: str) -> str:
    """"['happy', 'excited']", "[happy,excited]" or "happy, excited" -> "happy, excited"."""
    text = str(value).strip().strip("[]")
    labels = [part.strip().strip("'\"").strip() for part in text.split(",")]
    return ", ".join(label for label in labels if label)


def _read_csv_column(path: Path, column: str) -> dict:
    """{name: value} of a two-or-more-column CSV with a `name` column; empty values dropped."""
    if not path.is_file():
        raise InputError(path, "label CSV not found" if not path.exists() else "not a file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            if "name" not in fields or column not in fields:
                raise InputError(path, f"needs columns 'name' and '{column}', has {fields}")
            out = {}
            for row in reader:
                name, value = (row.get("name") or "").strip(), row.get(column)
                if name and value is not None and value.strip() and value.strip().lower() != "nan":
                    out[name] = value.strip()
            return out
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(path, f"cannot read CSV ({err})") from None


def find_openface_csv(openface_dir: Path, name: str) -> Path | None:
    """MER-Factory's <dir>/<name>/<name>.csv, or a flat <dir>/<name>.csv."""
    for p in (openface_dir / name / f"{name}.csv", openface_dir / f"{name}.csv"):
        if p.is_file():
            return p
    return None


# ---- the dataset ----------------------------------------------------------------------------

class MERCaptionPlusDataset(torch.utils.data.Dataset):
    """One MER-Caption+ folder; see the module docstring. Items are dicts or None (failed)."""

    def __init__(self, data_root, modalities: Modalities | str, *, label_type: str = "hybird",
                 num_frames: int = 8, num_faces: int = 8, num_audio_clips: int = 8,
                 clip_seconds: float = 2.0, sample_rate: int = 16000, image_size: int = 224,
                 encoder_feature_dir=None, use_au_agent: bool = True, au_agent_config=None,
                 au_agent=None, seed: int = 0, names: Iterable[str] | None = None,
                 au_mode: str = "features"):
        self.root = Path(data_root)
        if not self.root.is_dir():
            raise InputError(self.root, "dataset folder not found" if not self.root.exists() else "not a folder")
        self.modalities = parse_face_or_frame(modalities) if isinstance(modalities, str) else modalities
        if label_type not in ("openset", "description", "hybird"):
            raise InputError("label_type", f"unknown label type {label_type!r} (description, openset, hybird)")
        self.label_type = label_type
        self.num_frames, self.num_faces, self.num_audio_clips = num_frames, num_faces, num_audio_clips
        self.sample_rate = int(sample_rate)
        self.clip_samples = int(round(clip_seconds * sample_rate))
        self.image_size = int(image_size)
        self.encoder_feature_dir = Path(encoder_feature_dir) if encoder_feature_dir else None
        self.seed, self.epoch = int(seed), 0
        self._logged: set = set()

        kinds = ("openset", "description") if label_type == "hybird" else (label_type,)
        if names is not None:
            # Inference: the caller's videos; label CSVs are optional (answers "" without them).
            self.labels = {k: _read_csv_column(self.root / LABEL_CSVS[k][0], LABEL_CSVS[k][1])
                           if (self.root / LABEL_CSVS[k][0]).is_file() else {} for k in kinds}
            self.names = list(dict.fromkeys(str(n) for n in names))
            if not self.names:
                raise InputError(self.root, "no sample names given")
        else:
            self.labels = {k: _read_csv_column(self.root / LABEL_CSVS[k][0], LABEL_CSVS[k][1]) for k in kinds}
            found = set(self.labels[kinds[0]])
            for k in kinds[1:]:
                found &= set(self.labels[k])
            self.names = sorted(found)
            if not self.names:
                raise InputError(self.root / LABEL_CSVS[kinds[0]][0],
                                 f"no sample has a {' and '.join(kinds)} label")
        self.subtitles = _read_csv_column(self.root / SUBTITLE_CSV, "english") \
            if "text" in self.modalities else {}

        # AU branch: the agent (only when features may be computed) and the feature store.
        if choice_error(au_mode, AU_MODES):
            raise InputError("model.au_mode", choice_error(au_mode, AU_MODES))
        self.au_mode = au_mode
        self.use_au_agent = bool(use_au_agent)
        self._agent, self._own_agent, self._store = au_agent, au_agent is None, None
        self._au_failed: set = set()  # videos whose AU features could not be computed
        self.au_config = None
        if "au" in self.modalities:
            from my_affectgpt.models.au_agent import AUAgentConfig

            if au_agent_config is None and au_agent is not None:
                au_agent_config = au_agent.config
            if au_agent_config is None:
                au_agent_config = AUAgentConfig(backend="template")
            elif isinstance(au_agent_config, Mapping):
                from my_affectgpt.datasets.affectgpt_config import au_agent_config as entry_config

                au_agent_config = entry_config({"data_root": str(self.root), **au_agent_config})
            self.au_config = au_agent_config
            self.openface_dir = Path(au_agent_config.openface_dir or self.root / "openface_output")
            self.au_feature_dir = Path(au_agent_config.feature_dir or self.root / "au_features")
            self.au_num_frames = au_agent_config.num_frames

    @classmethod
    def from_config(cls, entry: Mapping, modalities: Modalities | str | None = None, *, au_agent=None,
                    encoder_feature_dir=None, seed: int = 0, names: Iterable[str] | None = None,
                    au_mode: str = "features") -> "MERCaptionPlusDataset":
        """From one `datasets.<name>` entry of a loaded config (datasets/affectgpt_config.py) and the
        model's `au_mode`; `names` (inference) lists the videos instead of the label CSVs."""
        from my_affectgpt.datasets.affectgpt_config import au_agent_config

        if modalities is None:
            modalities = entry["face_or_frame"]
        mods = parse_face_or_frame(modalities) if isinstance(modalities, str) else modalities
        agent_cfg = au_agent_config(entry, describer=au_mode in AU_AGENT_MODES) if "au" in mods else None
        return cls(entry["data_root"], mods, label_type=entry["label_type"],
                   num_frames=entry["num_frames"], num_faces=entry["num_faces"],
                   num_audio_clips=entry["num_audio_clips"], clip_seconds=entry["clip_seconds"],
                   sample_rate=entry["sample_rate"], image_size=entry["image_size"],
                   encoder_feature_dir=encoder_feature_dir, use_au_agent=entry["use_au_agent"],
                   au_agent_config=agent_cfg, au_agent=au_agent, seed=seed, names=names,
                   au_mode=au_mode)

    # -- bookkeeping --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.names)

    def set_epoch(self, epoch: int) -> None:
        """The hybird label choice depends on (seed, epoch, index)."""
        self.epoch = int(epoch)

    @property
    def failed(self) -> frozenset:
        """Names that failed to load in this process so far."""
        return frozenset(self._logged)

    def _fail(self, name: str, cause) -> None:
        if name not in self._logged:
            self._logged.add(name)
            log.warning("skipping sample %s of %s: %s", name, self.root, cause)

    def __getstate__(self):
        state = dict(self.__dict__)
        if self._own_agent:  # a worker process builds its own agent when it needs one
            state["_agent"] = None
        state["_store"] = None
        return state

    # -- AU features --------------------------------------------------------------------------

    @property
    def au_agent(self):
        if self._agent is None:
            from my_affectgpt.models.au_agent import AUAgent

            self._agent = AUAgent(self.au_config)
        return self._agent

    @property
    def au_store(self):
        if self._store is None:
            from my_affectgpt.models.feature_store import FeatureStore

            identity = self.au_agent.feature_identity() if self.use_au_agent else None
            self._store = FeatureStore(self.au_feature_dir, identity)
        return self._store

    def ensure_au_features(self, progress: bool = True, rank: int = 0, world: int = 1) -> dict:
        """Compute the features of every video missing (or stale) in the store, batched.

        Process `rank` of `world` takes every world-th video (callers sync afterwards). Returns
        counts: videos, up_to_date, computed, failed, no_csv. Does nothing without the AU branch,
        with use_au_agent false or with au_mode values (no features: the CSVs are read per sample).
        """
        counts = {"videos": 0, "up_to_date": 0, "computed": 0, "failed": 0, "no_csv": 0}
        if "au" not in self.modalities or not self.use_au_agent or self.au_mode not in AU_AGENT_MODES:
            return counts
        from tqdm import tqdm

        store, todo = self.au_store, []
        for name in self.names[rank::world]:
            counts["videos"] += 1
            csv_path = find_openface_csv(self.openface_dir, name)
            if csv_path is None:
                counts["no_csv"] += 1
                self._fail(name, f"no OpenFace CSV in {self.openface_dir}")
            elif store.status(name, csv_path) == "done":
                counts["up_to_date"] += 1
            else:
                todo.append((name, csv_path))
        bar = tqdm(total=len(todo), desc="AU features", unit="video", disable=not progress or not todo,
                   dynamic_ncols=True)
        try:
            for i in range(0, len(todo), AU_CHUNK):
                for name, feats, meta, err in self.au_agent.videos_features(todo[i:i + AU_CHUNK]):
                    if err is not None:
                        counts["failed"] += 1
                        self._au_failed.add(name)
                        self._fail(name, err)
                        continue
                    store.save(name, feats, meta)
                    counts["computed"] += 1
                bar.update(len(todo[i:i + AU_CHUNK]))
        finally:
            bar.close()
        self.release_au_agent()
        return counts

    def release_au_agent(self) -> None:
        """Drop an agent this dataset built (with the hf backend, a whole describer LLM), so that
        it does not stay in memory for the rest of training; one is rebuilt only if needed."""
        if self._own_agent and self._agent is not None:
            self._agent.close()
            self._agent = None

    def _au_features(self, name: str):
        """(features float32 [T, D], valid, descriptions padded to T, meta)."""
        store = self.au_store
        if self.use_au_agent:
            csv_path = find_openface_csv(self.openface_dir, name)
            if csv_path is None:
                raise SampleError(f"no OpenFace CSV for it in {self.openface_dir}")
            if name in self._au_failed:  # already logged; not retried every epoch
                raise SampleError("its AU features could not be computed")
            if store.status(name, csv_path) != "done":
                _, feats, meta, err = self.au_agent.videos_features([(name, csv_path)])[0]
                if err is not None:
                    self._au_failed.add(name)
                    raise err
                store.save(name, feats, meta)
        feats, meta = store.load(name)
        T = feats.shape[0]
        texts = [str(t) for t in meta.get("descriptions", [])][:T]
        texts += [""] * (T - len(texts))
        return torch.from_numpy(feats.astype(np.float32)), bool(meta.get("valid", True)), texts, meta

    def _openface_csv(self, name: str) -> Path:
        csv_path = find_openface_csv(self.openface_dir, name)
        if csv_path is None:
            raise SampleError(f"no OpenFace CSV for it in {self.openface_dir}")
        return csv_path

    def _au_inputs(self, name: str) -> dict:
        """The sample's AU keys for this au_mode: au / au_values, au_mask, au_text."""
        from my_affectgpt.models import au_values

        if self.au_mode == "values":
            got = au_values.sample_values(self._openface_csv(name), self.au_config, video=name)
            return {"au_values": torch.from_numpy(got.values), "au_mask": got.valid}
        feats, valid, texts, meta = self._au_features(name)
        out = {"au": feats, "au_mask": valid, "au_text": texts}
        if self.au_mode == "hybrid":
            frames = meta.get("frames", []) if valid else []
            out["au_values"] = torch.from_numpy(au_values.values_at_frames(
                self._openface_csv(name) if frames else None, self.au_config, frames, feats.shape[0],
                face_id=meta.get("face_id"), video=name))
        return out

    # -- samples ------------------------------------------------------------------------------

    def label_type_of(self, index: int) -> str:
        if self.label_type != "hybird":
            return self.label_type
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return ("openset", "description")[int(rng.integers(2))]

    def _media(self, name: str, sub: str, suffix: str) -> Path:
        path = self.root / sub / f"{name}{suffix}"
        if not path.is_file():
            raise SampleError(f"missing {path}")
        return path

    def _video_path(self, name: str) -> Path:
        for ext in VIDEO_EXTENSIONS:
            p = self.root / "video" / f"{name}{ext}"
            if p.is_file():
                return p
        raise SampleError(f"no video {self.root / 'video' / name}.mp4 (or {', '.join(VIDEO_EXTENSIONS[1:])})")

    def _features(self, kind: str, name: str, count: int) -> torch.Tensor:
        path = self.encoder_feature_dir / kind / f"{name}.npy"
        if not path.is_file():
            raise SampleError(f"missing encoder features {path}")
        return torch.from_numpy(read_feature_rows(path, count))

    def load(self, index: int) -> dict:
        """The sample at `index`; raises (SampleError, InputError, OSError, ...) when it cannot load."""
        name = self.names[index]
        kind = self.label_type_of(index)
        answer = self.labels[kind].get(name, "")  # "" only for inference names without a label
        sample = {"name": name, "question": QUESTIONS[kind], "label_type": kind,
                  "answer": openset_answer(answer) if kind == "openset" else answer}
        m = self.modalities
        if "text" in m:
            if name not in self.subtitles:
                raise SampleError(f"no row in {self.root / SUBTITLE_CSV}")
            sample["subtitle"] = self.subtitles[name]
        feats = self.encoder_feature_dir is not None
        if "frame" in m.visual_inputs:
            sample["frames"] = self._features("frame", name, self.num_frames) if feats else torch.from_numpy(
                clip_preprocess(read_video_frames(self._video_path(name), self.num_frames), self.image_size))
        if "face" in m.visual_inputs:
            sample["faces"] = self._features("face", name, self.num_faces) if feats else torch.from_numpy(
                clip_preprocess(read_faces(self._media(name, f"openface_face/{name}", ".npy"), self.num_faces),
                                self.image_size))
        if m.needs_audio:
            if feats:
                sample["audio"] = self._features("audio", name, self.num_audio_clips)
            else:
                wav = read_wav(self._media(name, "audio", ".wav"), self.sample_rate)
                sample["audio"] = torch.from_numpy(audio_clips(wav, self.num_audio_clips, self.clip_samples))
        if "au" in m:
            sample.update(self._au_inputs(name))
        return sample

    def __getitem__(self, index: int) -> dict | None:
        import cv2

        try:
            return self.load(index)
        except (SampleError, InputError, OSError, ValueError, EOFError, RuntimeError, wave.Error,
                cv2.error) as err:
            self._fail(self.names[index], err)
            return None


def collate_samples(samples: Iterable[dict | None]) -> dict | None:
    """A batch (contract keys) from samples, dropping failed ones; None when none is left."""
    samples = [s for s in samples if s is not None]
    if not samples:
        return None
    batch = {"names": [s["name"] for s in samples], "questions": [s["question"] for s in samples],
             "answers": [s["answer"] for s in samples], "label_types": [s["label_type"] for s in samples]}
    first = samples[0]
    if "subtitle" in first:
        batch["subtitles"] = [s["subtitle"] for s in samples]
    for key in ("frames", "faces", "audio", "au", "au_values"):
        if key in first:
            batch[key] = torch.stack([s[key] for s in samples])
    if "au_mask" in first:
        batch["au_mask"] = torch.tensor([s["au_mask"] for s in samples], dtype=torch.bool)
    if "au_text" in first:
        batch["au_text"] = [list(s["au_text"]) for s in samples]
    return batch


__all__ = ("MERCaptionPlusDataset", "collate_samples", "QUESTIONS", "openset_answer", "uniform_indices")
