__version__: str

def cli_main(argv: list[str]) -> int:
    """Run the fever command line with ``argv`` (``argv[0]`` is the program name); returns the exit code."""

def join_family(socket: str, root: str, record: str | None = None) -> None:
    """In a spawned child process: join the family of the fever process whose family socket is
    ``socket`` (its project at ``root``), which then sends this process each save; with
    ``record`` (that process's recording settings), record this process into its trace."""

def listen_as_child(root: str) -> None:
    """In a spawned child that joined the family of the project at ``root``: open this process's
    control socket, so ``fever attach`` and ``fever ps`` reach it. Raises ``FeverError`` when it
    cannot be opened."""

def family_pids() -> list[int]:
    """The pids of this program's child processes that joined fever and are still connected."""

def listen_for_attach(root: str) -> str:
    """Open this process's control socket (``fever attach``'s bootstrap calls it, through PEP 768,
    in a process not started under fever), with ``root`` as the project; returns the socket's
    path. Raises ``FeverError`` when it cannot be opened."""

class FeverError(Exception):
    """An error of fever itself, raised into the program or the pytest plugin."""

class CheckSession:
    """A trace opened for replay (what ``fever check`` and the pytest plugin use).

    Raises ``FeverError`` when the trace cannot be read or a pattern is invalid, ``ValueError``
    for an invalid ``rel_tol`` or ``timeout``.
    """

    def __init__(
        self,
        trace: str,
        select: list[str] = ...,
        depth: int = 0,
        rel_tol: float = 1e-9,
        root: str | None = None,
        timeout: float | None = None,
        twice: bool = False,
    ) -> None: ...
    def cases(self) -> list[tuple[str, str, int]]:
        """``(id, file, line)`` of every selected call, in order; ids are ``module.qualname[k]``."""
    def run(self, index: int) -> tuple[str, str]:
        """Re-invoke call ``index``: ``("passed", "")``, ``("failed", diff)`` or ``("skipped", reason)``.

        ``KeyboardInterrupt`` propagates; anything the call raises is its result.
        """
