"""pytest plugin: ``pytest --fever-trace TRACE`` turns each recorded call into a test item.

Each item re-invokes one call recorded by ``fever record`` and compares its result with the
recording, exactly as ``fever check TRACE`` does (the same native checker): a difference fails
with the diff, a call that cannot be replayed is skipped with the reason. Items are named after
the function, ``module.qualname[k]`` for its k-th recorded call, so ``-k``, ``--lf`` and
``pytest -n auto`` (pytest-xdist: every worker opens the trace itself) work as usual.

Without ``--fever-trace`` (or the ``fever_trace`` ini option) the plugin does nothing.

It is a top-level package of its own, not part of ``fever``: pytest rewrites the asserts of the
plugins it loads, which it cannot do for a package already imported, and under ``fever run -m
pytest`` the ``fever`` package is imported before pytest starts.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fever", "fever: replay recorded calls")
    group.addoption(
        "--fever-trace",
        metavar="TRACE",
        default=None,
        help="re-invoke the calls recorded in TRACE (fever record) as test items",
    )
    group.addoption(
        "--fever-select",
        metavar="PATTERN",
        action="append",
        default=[],
        help="only calls whose module.qualname matches this glob (repeatable)",
    )
    group.addoption(
        "--fever-depth",
        metavar="N",
        type=int,
        default=0,
        help="also the calls up to N levels below the outermost ones",
    )
    group.addoption(
        "--fever-rel-tol",
        metavar="X",
        type=float,
        default=None,
        help="relative tolerance for floats (default: fever check's)",
    )
    group.addoption(
        "--fever-root",
        metavar="DIR",
        default=None,
        help="the project's directory, for a trace recorded in another checkout "
        "(default: the recorded root if it exists, else the current directory)",
    )
    group.addoption(
        "--fever-timeout",
        metavar="SECONDS",
        type=float,
        default=60.0,
        help="seconds each recorded call may run before it fails as timed out (0: no limit)",
    )
    group.addoption(
        "--fever-twice",
        action="store_true",
        default=False,
        help="run each call twice; skip it as nondeterministic when the two runs differ",
    )
    parser.addini("fever_trace", "trace whose recorded calls become test items", default="")


def _trace_path(config: pytest.Config) -> str | None:
    given = config.getoption("fever_trace")
    if given:
        return given
    ini = config.getini("fever_trace")
    if ini:
        return os.path.join(str(config.rootpath), ini)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    trace = _trace_path(config)
    if trace is None:
        return
    from fever import _native

    timeout = config.getoption("fever_timeout")
    kwargs = {
        "select": config.getoption("fever_select"),
        "depth": config.getoption("fever_depth"),
        "timeout": timeout if timeout > 0 else None,
        "twice": config.getoption("fever_twice"),
    }
    root = config.getoption("fever_root")
    if root is not None:
        kwargs["root"] = root
    rel_tol = config.getoption("fever_rel_tol")
    if rel_tol is not None:
        kwargs["rel_tol"] = rel_tol
    try:
        checker = _native.CheckSession(trace, **kwargs)
    except (_native.FeverError, ValueError) as err:
        raise pytest.UsageError(f"fever: {err}") from None
    name = os.path.basename(trace)
    collector = FeverTrace.from_parent(session, name=name, nodeid=name, checker=checker)
    items.extend(collector.collect())


class FeverTrace(pytest.Collector):
    """The recorded calls of one trace."""

    def __init__(self, *, checker, **kwargs) -> None:
        super().__init__(**kwargs)
        self.checker = checker

    def collect(self) -> list[FeverCall]:
        return [
            FeverCall.from_parent(self, name=case_id, index=index, file=file, line=line)
            for index, (case_id, file, line) in enumerate(self.checker.cases())
        ]


class FeverCallFailed(Exception):
    """A re-invoked call did something else than recorded; the message is the diff."""


class FeverCall(pytest.Item):
    """One recorded call, re-invoked and compared with its recording."""

    def __init__(self, *, index: int, file: str, line: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.index = index
        self.location_file = file
        self.location_line = line

    def runtest(self) -> None:
        status, message = self.parent.checker.run(self.index)
        if status == "skipped":
            # Reported at the recorded function (reportinfo), not at this line.
            raise pytest.skip.Exception(message, _use_item_location=True)
        if status == "failed":
            raise FeverCallFailed(message)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, FeverCallFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.location_file, max(self.location_line - 1, 0), self.name
