"""Answer for one raw video: OpenFace -> AU Agent -> encoders -> AffectGPT.

    python inference_hybird.py --cfg-path inference_config_au_agent.yaml --video clip.mp4 \\
        [--openface-csv clip.csv] [--audio clip.wav] [--subtitle "..."] [--zeroshot]

Inputs, each from the first source that has it (a notice on stderr says when a fallback is used):
- AU intensities (when face_or_frame has `au`): `--openface-csv`; else a CSV an earlier run left
  at `<openface out>/<stem>/<stem>.csv`; else OpenFace FeatureExtraction is run on the video
  (binary from `--openface-bin`, `inference.openface_bin`, `$OPENFACE_BIN` or PATH; `-simalign`
  too when faces are needed, for the aligned face crops). `<openface out>` is `--openface-out`,
  else the config's `openface_output_dir`, else `<results_dir>/openface_output`. No CSV and no
  OpenFace: an error, before anything is loaded.
- faces: `--faces N.npy` (uint8 [N, H, W, 3]); else the MER-Caption+ face stack
  `<video folder>/../openface_face/<stem>/<stem>.npy` when the video sits in a `video/` folder;
  else OpenFace's aligned crops `<stem>_aligned/` beside the CSV; else the video frames.
- audio: `--audio clip.wav`; else `clip.wav` beside the video, or `../audio/clip.wav` in the
  MER-Caption+ layout; else silence. The audio track of an mp4 is not read: that needs ffmpeg,
  which this project does not depend on (`ffmpeg -i clip.mp4 -ac 1 -ar 16000 clip.wav` makes one).
- subtitle (when face_or_frame has `text`): `--subtitle`, else empty.
Frames are read from the video with OpenCV, as in training. The CSV becomes the AU input of
`model.au_mode` as the dataset makes it (`au_inputs`); with `values` no AU Agent is built: the
printed per-frame lines are then the AU values (canonical AU text), not descriptions.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from my_affectgpt.common.errors import InputError
from my_affectgpt.datasets import mercaptionplus as mcp
from my_affectgpt.datasets.modalities import parse_face_or_frame
from my_affectgpt.inference import checkpoints as ckpts
from my_affectgpt.inference.runner import question_kind, template_entry

IMAGE_EXTENSIONS = (".bmp", ".png", ".jpg", ".jpeg")


@dataclass
class VideoAnswer:
    video: str
    checkpoint: str
    question: str
    answer: str
    openface_csv: str | None = None
    au_status: str | None = None
    au_frames: list = field(default_factory=list)   # [{"frame", "timestamp", "au", "description"}]
    au_mode: str | None = None
    notices: list = field(default_factory=list)


def _notice(notices: list, text: str) -> None:
    notices.append(text)
    print(f"note: {text}", file=sys.stderr, flush=True)


def _mer_sibling(video: Path, sub: str, suffix: str) -> Path | None:
    """`<root>/<sub>/<stem><suffix>` when the video is `<root>/video/<stem>.*` (MER-Caption+)."""
    if video.parent.name != "video":
        return None
    stem = video.stem
    path = video.parent.parent / sub / (f"{stem}/{stem}{suffix}" if sub == "openface_face" else f"{stem}{suffix}")
    return path if path.is_file() else None


def openface_out_dir(cfg: DictConfig, entry: DictConfig, flag=None) -> Path:
    if flag:
        return Path(flag)
    if entry.get("openface_output_dir"):
        return Path(entry.openface_output_dir)
    return Path(cfg.inference.results_dir) / "openface_output"


def resolve_openface_csv(video: Path, csv, out_dir: Path, *, openface_bin=None, config_bin=None,
                         simalign: bool = False) -> Path:
    """The video's OpenFace CSV: given, left by an earlier run, or made now (module docstring)."""
    from my_affectgpt.au.openface import openface_csv_path, resolve_openface_bin, run_openface

    if csv:
        csv = Path(csv)
        if not csv.is_file():
            raise InputError(csv, "OpenFace CSV not found")
        return csv
    earlier = openface_csv_path(out_dir, video)
    if earlier.is_file():
        return earlier
    try:
        binary = resolve_openface_bin(openface_bin, config_bin)
    except InputError as err:
        if err.path is None:  # not found at all (a bad explicit path keeps its own message)
            raise InputError(video, "no --openface-csv given and OpenFace FeatureExtraction not found "
                                    "(pass --openface-bin, set inference.openface_bin or export "
                                    "OPENFACE_BIN)") from None
        raise
    print(f"running OpenFace ({binary}) on {video} -> {out_dir}", file=sys.stderr, flush=True)
    return run_openface(video, out_dir, binary, ("-simalign",) if simalign else ())


def _aligned_faces(folder: Path, count: int) -> np.ndarray | None:
    import cv2

    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in files]
    images = [cv2.cvtColor(im, cv2.COLOR_BGR2RGB) for im in images if im is not None]
    if not images:
        return None
    size = images[0].shape[:2]
    images = [im if im.shape[:2] == size else cv2.resize(im, size[::-1]) for im in images]
    return np.stack(images)[mcp.uniform_indices(len(images), count)]


def read_face_inputs(video: Path, entry, faces=None, csv: Path | None = None, notices=None) -> np.ndarray:
    """uint8 [num_faces, H, W, 3] from the first face source that exists (module docstring)."""
    n = int(entry.num_faces)
    if faces:
        faces = Path(faces)
        if not faces.is_file():
            raise InputError(faces, "face stack not found")
        try:
            return mcp.read_faces(faces, n)
        except (mcp.SampleError, ValueError) as err:
            raise InputError(faces, str(err)) from None
    stack = _mer_sibling(video, "openface_face", ".npy")
    if stack is not None:
        return mcp.read_faces(stack, n)
    if csv is not None:
        aligned = _aligned_faces(csv.parent / f"{video.stem}_aligned", n)
        if aligned is not None:
            return aligned
    _notice(notices if notices is not None else [],
            "no aligned faces (--faces, openface_face/, or OpenFace -simalign output): the video "
            "frames stand in for the faces")
    return mcp.read_video_frames(video, n)


def read_audio_clips(video: Path, entry, audio=None, notices=None) -> np.ndarray:
    """float32 [num_audio_clips, clip_samples] from --audio, a .wav beside the video, or silence."""
    clip_samples = int(round(float(entry.clip_seconds) * int(entry.sample_rate)))
    path = Path(audio) if audio else None
    if path is not None and not path.is_file():
        raise InputError(path, "audio file not found")
    if path is None:
        beside = video.with_suffix(".wav")
        path = beside if beside.is_file() else _mer_sibling(video, "audio", ".wav")
    if path is None:
        _notice(notices if notices is not None else [],
                f"no audio: pass --audio or put {video.stem}.wav beside the video (the mp4's own "
                "track needs ffmpeg); using silence")
        wave_ = np.zeros(clip_samples, dtype=np.float32)
    else:
        try:
            wave_ = mcp.read_wav(path, int(entry.sample_rate))
        except Exception as err:  # noqa: BLE001 - wave.Error, EOFError, SampleError: all a bad file
            raise InputError(path, f"cannot read WAV ({err})") from None
    return mcp.audio_clips(wave_, int(entry.num_audio_clips), clip_samples)


def au_inputs(entry, csv: Path, au_mode: str) -> tuple[dict, dict]:
    """(the sample's AU keys as the dataset gives them: au / au_values, au_mask, au_text; meta).

    - features: the AU Agent's features [T, D] and descriptions;
    - text: the descriptions only, so the text encoder is not loaded and the features are zeros
      [T, 1] (never looked at);
    - values: the CSV's AU vectors [T, 18] at the AU Agent's frames (au_values.sample_values, as
      the dataset reads them); no AU Agent and no text encoder are built;
    - hybrid: the features and the values at their frames (au_values.values_at_frames)."""
    from my_affectgpt.datasets.affectgpt_config import au_agent_config
    from my_affectgpt.models import au_values

    if au_mode == "values":
        got = au_values.sample_values(csv, au_agent_config(entry, describer=False), video=csv.stem)
        meta = {"status": got.status, "valid": got.valid, "frames": got.frames,
                "timestamps": got.timestamps, "prompts": got.states}
        return {"au_values": torch.from_numpy(got.values), "au_mask": got.valid}, meta

    from my_affectgpt.models.au_agent import AUAgent

    config = au_agent_config(entry)
    with AUAgent(config) as agent:
        if au_mode == "text":
            plan = agent.plan_video(csv, video=csv.stem)
            slots = plan["slots"]
            meta = {"status": plan["status"], "valid": bool(slots), "frames": [s.frame for s in slots],
                    "timestamps": [s.timestamp for s in slots], "prompts": [s.prompt for s in slots],
                    "descriptions": agent.describe(slots) if slots else []}
            feats = np.zeros((plan["num_frames"], 1), dtype=np.float32)
        else:
            feats, meta = agent.video_features(csv)
    del agent
    if torch.cuda.is_available():  # the AU Agent's LLM leaves room for AffectGPT's
        torch.cuda.empty_cache()
    T = feats.shape[0]
    texts = [str(t) for t in meta.get("descriptions", [])][:T]
    texts += [""] * (T - len(texts))
    valid = bool(meta.get("valid", True))
    sample = {"au": torch.from_numpy(feats.astype(np.float32)), "au_mask": valid, "au_text": texts}
    if au_mode == "hybrid":
        sample["au_values"] = torch.from_numpy(au_values.values_at_frames(
            csv, config, meta.get("frames", []) if valid else [], T, face_id=meta.get("face_id"),
            video=csv.stem))
    return sample, meta


def answer_video(cfg: DictConfig, cfg_path, video, *, openface_csv=None, openface_bin=None,
                 openface_out=None, audio=None, faces=None, subtitle=None, zeroshot: bool | None = None,
                 checkpoint=None) -> VideoAnswer:
    """The model's answer for one video, with the AU descriptions it was given."""
    video = Path(video)
    if not video.is_file():
        raise InputError(video, "video not found")
    _, entry = template_entry(cfg)
    modalities = parse_face_or_frame(entry.face_or_frame)
    if cfg.model.encoder_feature_dir:
        raise InputError("model.encoder_feature_dir", "a raw video needs the encoders; set it to null "
                                                      "for --video")
    zeroshot = bool(cfg.inference.zeroshot) if zeroshot is None else bool(zeroshot)
    question = mcp.QUESTIONS[question_kind(zeroshot)]
    notices: list[str] = []

    # Everything that can fail cheaply is checked before the AU Agent or the model loads.
    csv = None
    if "au" in modalities:
        csv = resolve_openface_csv(video, openface_csv, openface_out_dir(cfg, entry, openface_out),
                                   openface_bin=openface_bin, config_bin=cfg.inference.openface_bin,
                                   simalign="face" in modalities.visual_inputs and not faces)
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise InputError(checkpoint, "checkpoint not found")
        folder = checkpoint.parent
    else:
        folder = ckpts.checkpoint_folder(cfg, cfg_path)
        inf = cfg.inference
        checkpoint = ckpts.select_checkpoints(folder, inf.test_epoch, inf.test_epochs, inf.skip_epoch)[-1]
    ckpts.check_modes(cfg, [checkpoint])

    sample = {"name": video.stem, "question": question, "label_type": question_kind(zeroshot), "answer": ""}
    size = int(entry.image_size)
    try:
        if "frame" in modalities.visual_inputs:
            sample["frames"] = torch.from_numpy(mcp.clip_preprocess(
                mcp.read_video_frames(video, int(entry.num_frames)), size))
        if "face" in modalities.visual_inputs:
            sample["faces"] = torch.from_numpy(mcp.clip_preprocess(
                read_face_inputs(video, entry, faces, csv, notices), size))
    except mcp.SampleError as err:
        raise InputError(video, str(err)) from None
    if modalities.needs_audio:
        sample["audio"] = torch.from_numpy(read_audio_clips(video, entry, audio, notices))
    if "text" in modalities:
        sample["subtitle"] = subtitle or ""
    meta = {}
    if csv is not None:
        au, meta = au_inputs(entry, csv, str(cfg.model.au_mode))
        sample.update(au)

    device = ckpts.device_for()
    model = ckpts.build_inference_model(cfg, modalities, folder, checkpoint, device)
    with ckpts.autocast(cfg, device):
        answer = model.generate(mcp.collate_samples([sample]),
                                max_new_tokens=int(cfg.inference.max_new_tokens))[0]
    frames = []
    descriptions, states = meta.get("descriptions"), meta.get("prompts") or []
    for i, (f, t) in enumerate(zip(meta.get("frames", []), meta.get("timestamps", []))):
        frame = {"frame": f, "timestamp": t, "au": states[i] if i < len(states) else ""}
        if descriptions is not None:  # au_mode values has none
            frame["description"] = descriptions[i] if i < len(descriptions) else ""
        frames.append(frame)
    return VideoAnswer(video=str(video), checkpoint=str(checkpoint), question=question, answer=answer,
                       openface_csv=str(csv) if csv else None, au_status=meta.get("status"),
                       au_frames=frames, notices=notices, au_mode=str(cfg.model.au_mode))


def format_answer(result: VideoAnswer) -> str:
    lines = [f"video: {result.video}", f"checkpoint: {result.checkpoint}"]
    if result.openface_csv:
        described = result.au_mode != "values"
        lines.append(f"AU {'descriptions' if described else 'values'} ({len(result.au_frames)} frames "
                     f"from {result.openface_csv}, status {result.au_status}):")
        lines += [f"  frame {a['frame']} ({float(a['timestamp']):.2f} s): "
                  f"{a['description'] if described else a.get('au', '')}"
                  for a in result.au_frames] or ["  (none: no usable face in the OpenFace CSV)"]
    lines += [f"question: {result.question}", f"answer: {result.answer}"]
    return "\n".join(lines)
