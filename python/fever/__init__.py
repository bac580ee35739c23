"""fever: an instant edit-run loop for Python.

The engine lives in the Rust extension ``fever._native``; this package is the thin shell that
pip installs: the ``fever`` command (``fever.__main__``) hands its arguments to the Rust CLI.
``import fever`` does not load the extension, so ``python -m fever`` can first say clearly when
the interpreter is one fever does not support (``fever._support``).
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from fever._support import problem

        found = problem()
        if found is not None:
            raise ImportError(f"{found[0]} ({found[1]})")
        from fever._native import __version__

        return __version__
    raise AttributeError(f"module 'fever' has no attribute {name!r}")
