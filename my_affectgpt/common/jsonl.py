"""Reading JSON Lines: the parsed value of each non-blank line with its line number. What a row must
hold, and how a bad line is reported, is the caller's (`bad_json` builds the error to raise)."""
from __future__ import annotations

import json
from typing import Callable, Iterable, Iterator


def jsonl_rows(lines: Iterable[str],
               bad_json: Callable[[int, json.JSONDecodeError], Exception]) -> Iterator[tuple]:
    """(line number from 1, parsed value) per non-blank line of `lines` (an open file or a list);
    a line that is not JSON raises `bad_json(line number, error)`."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise bad_json(lineno, err) from None
        yield lineno, row
