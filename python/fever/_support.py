"""Which interpreters fever runs on, checked before the extension is imported.

The same bounds as ``fever-core/src/python.rs`` (a Rust test keeps them equal): CPython 3.12 to
3.15 with the GIL. A free-threaded build (3.13t, 3.14t), an older Python or one newer than fever
knows gets a clear message instead of an import error or a crash.
"""

from __future__ import annotations

import sys

OLDEST = (3, 12)
NEWEST = (3, 15)


def problem(version: tuple[int, ...] = tuple(sys.version_info[:3]), abiflags: str = sys.abiflags) -> tuple[str, str] | None:
    """``(message, hint)`` when fever cannot run on this interpreter, else None."""
    major, minor, micro = version[:3]
    span = f"fever supports Python {OLDEST[0]}.{OLDEST[1]} to {NEWEST[0]}.{NEWEST[1]}"
    choose = f"choose a Python {OLDEST[0]}.{OLDEST[1]} to {NEWEST[0]}.{NEWEST[1]} with --python or FEVER_PYTHON"
    if (major, minor) < OLDEST:
        return f"Python {major}.{minor}.{micro} is too old: {span} (sys.monitoring arrived in 3.12)", choose
    if (major, minor) > NEWEST:
        return f"Python {major}.{minor}.{micro} is newer than fever knows: {span}", f"{choose}, or look for a newer fever"
    if "t" in abiflags:
        return (
            f"Python {major}.{minor}.{micro} is a free-threaded build ({major}.{minor}t), which fever does not support yet",
            f"use the regular build (python{major}.{minor}, not python{major}.{minor}t) with --python or FEVER_PYTHON",
        )
    return None
