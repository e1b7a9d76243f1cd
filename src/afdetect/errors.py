"""Exceptions that carry a one-line, user-facing message."""

from __future__ import annotations

from pathlib import Path


class AfdetectError(Exception):
    """Base class for errors the CLI reports as one line without a traceback."""


class InputError(AfdetectError):
    """A user-supplied file (recording, model, dataset) is missing or unusable.

    The message always names the file, so a batch report can list failures line by line.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
