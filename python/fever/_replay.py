"""Glue for `fever replay` that is plainer in Python than through the C API.

The engine (``fever._native``) calls these; nothing here is public:
- ``fork()``: the checkpoint. Freezes the heap for the garbage collector so the child's
  collections do not touch (and copy) the warm program's pages, forks without the warning
  Python gives for forking a multi-threaded process (fever's own threads do not run in the
  child), and unfreezes the parent.
- ``drive(function, args, kwargs)``: the start call again: an ``async def`` in a new event
  loop, a generator or async generator consumed to its end (the end call stops the replay
  before, usually).
- ``probe_kind(obj)``: whether an argument is a generator/coroutine (its frame's position) or an
  open file (its position and whether it is closed), else None.
- ``debug(debugger, frame, tb)``: pdb (or pdb++, ipdb, pudb) in ``frame`` or post-mortem on
  ``tb``.
"""

import asyncio
import gc
import inspect
import io
import os
import warnings


def fork() -> int:
    gc.freeze()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid:
        gc.unfreeze()
    return pid


async def _consume_async(agen):
    async for _ in agen:
        pass


def drive(function, args, kwargs):
    result = function(*args, **kwargs)
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    if inspect.isgenerator(result):
        for _ in result:
            pass
        return None
    if inspect.isasyncgen(result):
        asyncio.run(_consume_async(result))
        return None
    return result


def probe_kind(obj):
    """("generator", position or None, locals) / ("file", position or None, closed) / None."""
    if inspect.isgenerator(obj):
        frame = obj.gi_frame
    elif inspect.iscoroutine(obj):
        frame = obj.cr_frame
    elif inspect.isasyncgen(obj):
        frame = obj.ag_frame
    else:
        frame = False
    if frame is not False:
        if frame is None:
            return ("generator", None, {})
        return ("generator", frame.f_lasti, dict(frame.f_locals))
    if isinstance(obj, io.IOBase):
        closed = bool(obj.closed)
        position = None
        if not closed:
            try:
                position = obj.tell()
            except (OSError, ValueError):
                position = None
        return ("file", position, closed)
    return None


def _debugger(name):
    if name == "pudb":
        import pudb  # noqa: PLC0415

        return pudb._get_debugger()
    if name == "ipdb":
        from IPython.terminal.debugger import TerminalPdb  # noqa: PLC0415

        return TerminalPdb()
    import pdb  # noqa: PLC0415  (pdb++ installs itself as `pdb`)

    return pdb.Pdb()


def debug(name, frame=None, tb=None):
    """Opens the debugger in `frame` (stopped at its return) or post-mortem on `tb`; returns
    when the user continues or quits."""
    import bdb  # noqa: PLC0415

    debugger = _debugger(name)
    debugger.reset()
    try:
        if tb is not None:
            debugger.interaction(None, tb)
        else:
            debugger.interaction(frame, None)
    except bdb.BdbQuit:
        pass
    finally:
        import sys  # noqa: PLC0415

        sys.settrace(None)
