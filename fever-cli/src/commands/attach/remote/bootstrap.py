# fever attach's bootstrap, run by sys.remote_exec (PEP 768) on the main thread of a process
# that was not started under fever. It reports to `fever attach` through files in the private
# directory below (STATUS, written whole by a rename): "started", then "ok SOCKET ROOT",
# "missing EXECUTABLE ERROR" (fever is not importable here), "unsupported MESSAGE HINT" or
# "error MESSAGE". If `fever attach` gave up waiting ("cancelled" exists), it does nothing.
# Nothing is left in the program's namespaces, and nothing it does can raise into the program.


def _fever_attach(directory):
    import os
    import sys

    def say(*lines):
        part = os.path.join(directory, "status.part")
        with open(part, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("".join(line.replace("\n", " ") + "\n" for line in lines))
        os.replace(part, os.path.join(directory, "status"))

    if os.path.exists(os.path.join(directory, "cancelled")):
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)
        return
    say("started")
    try:
        from fever._support import problem
    except ImportError as err:
        say("missing", sys.executable, str(err))
        return
    found = problem()
    if found is not None:
        say("unsupported", *found)
        return
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is None and isinstance(script, str) and os.path.isfile(script):
        root = os.path.dirname(os.path.abspath(script))
    else:
        root = os.getcwd()
    try:
        from fever import _native

        listen = getattr(_native, "listen_for_attach", None)
        if listen is None:
            say("unsupported", f"the fever installed there ({_native.__version__}) is too old to be loaded "
                "into a running process", f"upgrade it: `{sys.executable} -m pip install -U fever`")
            return
        socket = listen(root)
    except Exception as err:
        say("error", f"{type(err).__name__}: {err}")
        return
    say("ok", socket, root)


try:
    _fever_attach(__import__("os").fsdecode(bytes.fromhex("@DIRECTORY@")))
except Exception:
    pass
