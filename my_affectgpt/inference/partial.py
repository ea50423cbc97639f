"""Progress of one checkpoint's predictions, kept so a killed run loses at most one chunk.

While a checkpoint runs, its answers go to `<ckpt>.partial/` beside the final npz:

    identity.json          what the answers depend on (checkpoint, question, generation length)
    part_000000.jsonl      one chunk of {"name", "answer"} lines, written atomically
    part_000001.jsonl      ...

Every file appears whole (temp file + rename) or not at all, so a kill at any moment leaves only
complete chunks. A rerun reads them, skips those videos and continues; when every video is done
the runner writes the npz/JSONL and removes the folder. Parts made under another identity (a
retrained checkpoint, another question or max_new_tokens) are discarded, never mixed in.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Mapping

from my_affectgpt.common.atomic import atomic_write_text

log = logging.getLogger(__name__)

IDENTITY = "identity.json"
_PART_RE = re.compile(r"^part_(\d{6})\.jsonl$")


class PartialResults:
    def __init__(self, folder, identity: Mapping):
        self.folder = Path(folder)
        self.identity = json.loads(json.dumps(dict(identity)))  # plain JSON values, comparable
        self._next = 0

    def _parts(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _PART_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def load(self) -> dict[str, str]:
        """{name: answer} of the chunks already written under this identity (else {})."""
        if not self.folder.is_dir():
            return {}
        try:
            stored = json.loads((self.folder / IDENTITY).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            stored = None
        if stored != self.identity:
            log.warning("discarding partial results in %s: made with other settings (%s)",
                        self.folder, "no identity" if stored is None else "identity differs")
            self.remove()
            return {}
        done: dict[str, str] = {}
        parts = self._parts()
        for part in parts:
            for line in part.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    done[str(row["name"])] = str(row["answer"])
        self._next = int(_PART_RE.match(parts[-1].name).group(1)) + 1 if parts else 0
        return done

    def add(self, name2answer: Mapping[str, str]) -> None:
        """Write one chunk (atomically); the identity goes first, once."""
        if not name2answer:
            return
        if not (self.folder / IDENTITY).is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.folder / IDENTITY, json.dumps(self.identity, indent=1) + "\n")
        atomic_write_text(self.folder / f"part_{self._next:06d}.jsonl", "".join(
            json.dumps({"name": str(n), "answer": str(a)}, ensure_ascii=False) + "\n"
            for n, a in name2answer.items()))
        self._next += 1

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self._next = 0
