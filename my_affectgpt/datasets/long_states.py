"""Composite long states for the train split: the data remedy for AUs left out of long lists.

Why: frames as they come rarely have a face region with 5 or more active AUs (3% of the
default CPU training rows), and a small model fine-tuned on them learns to close a region's
list after about four items. On long simulated states the tuned CPU agent left out the mouth's
fifth AU in 26 of 31 cases (bench/RESULTS.md, "Omission on long states"). Which AUs occur
together does not change how each one is described, so extra training rows are made by joining
the AU states of two training frames (each OpenFace value at the larger of the two). A row is
kept when some region then lists 5 or more AUs. The rule teacher describes it like any frame.
The rows are spread evenly through train.jsonl, so any prefix of the file (the CPU recipe's
`max_train_samples`) holds the same share. The validation and test splits keep real frames only.
"""
from __future__ import annotations

import random
from collections import Counter

from ..au import prompts
from ..au.facs import ACTION_UNITS, IntensityBands, active_aus, au_state_text
from ..au.teacher import RuleTeacher

LONG_LIST = 5            # AUs in one region that make a state "long"
SOURCE = "composite+rule"


def longest_region(active) -> int:
    """The most active AUs any one face region has."""
    return max(Counter(ACTION_UNITS[c].region for c in active).values(), default=0)


def composite_samples(train: list, share: float, seed: int, bands: IntensityBands) -> list:
    """Training rows (DESIGN.md §4 layout) that make up `share` (0 <= share < 1) of `train`
    plus them, each joining the AU states of two rows of `train` into one with a long region
    list."""
    want = round(share * len(train) / (1 - share))
    rng, teacher = random.Random(seed), RuleTeacher(bands)
    seen = {au_state_text(active_aus(s["au"], bands)) for s in train}
    out, tries = [], 0
    while len(out) < want and tries < 50 * want and len(train) >= 2:
        tries += 1
        a, b = rng.sample(train, 2)
        au = {k: max(a["au"].get(k, 0.0), b["au"].get(k, 0.0))
              for k in sorted(a["au"].keys() | b["au"].keys())}
        active = active_aus(au, bands)
        prompt = au_state_text(active)
        if longest_region(active) < LONG_LIST or prompt in seen:
            continue
        seen.add(prompt)
        video = f"composite_{len(out):05d}"
        out.append({"id": f"{video}_f0000", "video": video, "frame": 0, "source": SOURCE,
                    "au": au,
                    "messages": prompts.chat_messages(prompt, teacher.describe(active))})
    return out


def interleaved(rows: list, extra: list) -> list:
    """`extra` spread evenly through `rows`, in order: every prefix holds about the same share."""
    total = len(rows) + len(extra)
    out, i, j = [], 0, 0
    for k in range(total):
        if j < len(extra) and (i >= len(rows) or (j + 1) * total <= (k + 1) * len(extra)):
            out.append(extra[j])
            j += 1
        else:
            out.append(rows[i])
            i += 1
    return out
