"""How a results file was made: recorded by every benchmark that writes one."""

from __future__ import annotations

import shlex
import sys


def command_line() -> str:
    """The running benchmark's command as typed, quoted so that a shell takes it back."""
    return shlex.join(["python", *sys.argv])
