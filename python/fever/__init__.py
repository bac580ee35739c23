"""fever: an instant edit-run loop for Python.

The engine lives in the Rust extension ``fever._native``; this package is the thin shell that
pip installs: the ``fever`` command (``fever.__main__``) hands its arguments to the Rust CLI.
"""

from fever._native import __version__

__all__ = ["__version__"]
