"""User-facing errors: one line on stderr naming the file and the cause, exit code 2."""
from __future__ import annotations

import functools
import sys


class InputError(Exception):
    """Bad input from the user (a file, a flag, a config value). Never shown as a traceback."""

    def __init__(self, path, cause: str):
        self.path = str(path) if path is not None else None
        self.cause = cause
        super().__init__(f"{self.path}: {cause}" if self.path else cause)

    def __reduce__(self):  # raised in a worker process, re-raised in the parent
        return type(self), (self.path, self.cause)


def report(err: InputError, stream=None) -> None:
    print(f"error: {err}", file=stream or sys.stderr)


def cli_entry(main):
    """Wrap a CLI main(argv) -> int: InputError becomes one line on stderr and exit code 2."""
    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(argv) or 0
        except InputError as err:
            report(err)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
    return wrapper
