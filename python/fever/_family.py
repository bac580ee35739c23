"""Child processes started by ``multiprocessing``'s spawn and forkserver methods join fever.

Such a child is a fresh interpreter: nothing of fever runs in it unless asked. Every spawn or
forkserver child first unpickles the *preparation data* its parent sends (``sys.path``, the main
module, ...), before it imports the program's main module. ``install`` (called by fever in the
process that watches files) makes ``multiprocessing.spawn.get_preparation_data`` add one entry to
it whose unpickling calls ``join``: the child then connects to that process's family socket and
applies each save it receives, and, when that process records (``fever record``), records its own
calls into the same trace (``record``: the recording's settings, as fever passes them). Entries
``multiprocessing`` does not know are ignored by it. When fever cannot be imported in the child
(another interpreter), the entry does nothing. loky (joblib's default backend) starts its workers
with a copy of ``multiprocessing.spawn`` of its own, patched the same way.
"""

from __future__ import annotations

import sys

# The modules whose ``get_preparation_data`` makes what a spawned child unpickles first:
# multiprocessing's, and loky's (vendored by joblib, or on its own).
SPAWNERS = ("multiprocessing.spawn", "joblib.externals.loky.backend.spawn", "loky.backend.spawn")

# Run in the child by unpickling: never raises, so the program never dies because of fever.
_JOIN = """
try:
    import fever._family
    fever._family.join({socket!r}, {root!r}, {record!r})
except Exception:
    pass
"""


class _Join:
    """Pickles as a call that joins the family at ``socket`` (a project at ``root``), or with no
    ``socket`` (``fever run --no-watch``: no family) only opens the child's control socket."""

    def __init__(self, socket: str | None, root: str, record: str | None) -> None:
        socket = None if socket is None else str(socket)
        self.source = _JOIN.format(socket=socket, root=str(root), record=record)

    def __reduce__(self):
        return (exec, (self.source, {}))


def join(socket: str | None, root: str, record: str | None = None) -> None:
    """In a spawned child: join the family (when there is one: ``socket``), have this child's
    own spawned children join, and open this child's control socket (``fever attach`` reaches
    it)."""
    from fever import _native

    if socket is not None:
        _native.join_family(socket, root, record)
    install(socket, root, record)
    _native.listen_as_child(root)


def install(socket: str | None, root: str, record: str | None = None) -> None:
    """Makes every later spawn or forkserver child join the family at ``socket`` (and record
    with the settings ``record`` when it is not None); with no ``socket``, only open its
    control socket."""
    waiting = set()
    for name in SPAWNERS:
        spawn = sys.modules.get(name)
        if spawn is not None:
            _patch(spawn, socket, root, record)
        else:
            waiting.add(name)
    if waiting and not any(isinstance(f, _SpawnFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SpawnFinder(waiting, socket, root, record))


def _patch(spawn, socket: str, root: str, record: str | None) -> None:
    original = getattr(spawn, "get_preparation_data", None)
    if original is None or getattr(original, "_fever_joins", False):
        return

    def get_preparation_data(*args, **kwargs):
        data = original(*args, **kwargs)
        data["fever"] = _Join(socket, root, record)
        return data

    get_preparation_data._fever_joins = True
    spawn.get_preparation_data = get_preparation_data


class _SpawnFinder:
    """Patches each of ``SPAWNERS`` right after the program imports it (importing them eagerly
    would cost every program ~10 ms of start-up); asks nothing of other imports."""

    def __init__(self, waiting: set[str], socket: str, root: str, record: str | None) -> None:
        self.waiting = waiting
        self.socket = socket
        self.root = root
        self.record = record

    def find_spec(self, name, path=None, target=None):
        if name not in self.waiting:
            return None
        self.waiting.discard(name)
        if not self.waiting:
            try:
                sys.meta_path.remove(self)
            except ValueError:
                pass
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module
        socket, root, record = self.socket, self.root, self.record

        def exec_and_patch(module):
            exec_module(module)
            _patch(module, socket, root, record)

        spec.loader.exec_module = exec_and_patch
        return spec
