"""Features for a whole OpenFace folder, resumable and shared between processes (one per GPU):
`extract` writes `<out>/<video>.npy` + `<video>.json` for every CSV without up-to-date features."""
from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm

from my_affectgpt.au.openface import find_openface_csvs
from my_affectgpt.common.errors import InputError
from my_affectgpt.models.au_agent import verify
from my_affectgpt.models.au_agent.runtime import AUAgent
from my_affectgpt.models.feature_store import FeatureStore


def dist_share() -> tuple[int, int]:
    """(rank, world size) from the variables `accelerate launch` / torchrun set; (0, 1) alone."""
    try:
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    except ValueError:
        raise InputError("RANK/WORLD_SIZE", "must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise InputError("RANK/WORLD_SIZE", f"rank {rank} is not within world size {world}")
    return rank, world


def extract(agent: AUAgent, openface_dir, out_dir, *, rank: int = 0, world: int = 1,
            chunk_videos: int = 64, force: bool = False, limit: int | None = None,
            progress: bool = True, errors=None) -> dict:
    """Write features for every CSV under `openface_dir` that has no up-to-date feature files.

    Process `rank` of `world` takes every world-th video of the sorted list, so processes share
    nothing but the description cache. Finished videos are skipped (resume); missing, stale,
    corrupt ones and those whose CSV changed are (re)computed. Returns counts.
    """
    if chunk_videos < 1:
        raise InputError("--chunk-videos", f"must be >= 1, got {chunk_videos}")
    items = find_openface_csvs(openface_dir)
    if not items:
        raise InputError(openface_dir, "no OpenFace CSV found (<dir>/<video>.csv or <dir>/<video>/<video>.csv)")
    if limit is not None:
        items = items[:limit]
    share = items[rank::world]
    store = FeatureStore(out_dir, agent.feature_identity())
    counts = {"videos": len(items), "share": len(share), "skipped": 0, "written": 0, "empty": 0,
              "few_frames": 0, "failed": 0, "missing": 0, "stale": 0, "changed_input": 0, "corrupt": 0,
              "verified": verify.counts([]), "verified_videos": {}}
    todo = []
    for video, csv in share:
        state = "missing" if force else store.status(video, csv)
        if state == "done":
            counts["skipped"] += 1
        else:
            counts[state] += 1
            todo.append((video, csv))
    start = time.perf_counter()
    bar = tqdm(total=len(share), initial=counts["skipped"], desc=f"AU features [{rank}/{world}]" if world > 1
               else "AU features", unit="video", disable=not progress, dynamic_ncols=True)
    try:
        for i in range(0, len(todo), chunk_videos):
            for video, feats, meta, err in agent.videos_features(todo[i:i + chunk_videos], progress=progress):
                if err is not None:
                    counts["failed"] += 1
                    print(f"error: {err}", file=errors or sys.stderr)
                    continue
                store.save(video, feats, meta)
                counts["written"] += 1
                for key, n in meta["verified"].items():     # frames, per video and in all
                    counts["verified"][key] += n
                if meta["verified"]["failed_first"]:
                    counts["verified_videos"][video] = meta["verified"]
                counts["empty"] += meta["status"] == "empty"
                counts["few_frames"] += meta["status"] == "few_frames"
            bar.update(len(todo[i:i + chunk_videos]))
            s = agent.stats
            bar.set_postfix(generated=s.generated, cache_hits=s.cache_hits, neutral=s.neutral_frames, refresh=False)
    finally:
        bar.close()
    counts["seconds"] = round(time.perf_counter() - start, 2)
    counts["stats"] = agent.stats.as_dict()
    return counts
