"""`fever record` while the program's own code blocks at the end of a recorded call: the
other threads' calls are all recorded."""

from __future__ import annotations

from conftest import write
from record_support import describe, make_cli, record


SLOW_DEL = """
    import sys
    import threading
    import time

    sys.setswitchinterval(1e-4)

    class Slow:
        def __init__(self):
            self.items = []          # mutable: the recorder keeps it to see it change

        def __del__(self):
            time.sleep(0.1)          # blocks, the GIL released: the other thread runs

    def use(box):
        box.items.append(1)
        del box                      # the recorder's reference is the last one left

    def tick(i):
        return i + 1

    def worker(started, stop):
        n = 0
        started.set()
        while not stop.is_set():
            tick(n)
            n += 1
            if n % 50 == 0:
                time.sleep(0.0005)
        print("ticks", n)

    started, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=worker, args=(started, stop))
    thread.start()
    started.wait(10)
    for _ in range(5):
        use(Slow())                  # Slow.__del__ runs as the recorder lets `box` go
    stop.set()
    thread.join(30)
    print("done")
"""


def test_a_del_that_blocks_as_a_call_ends_loses_no_call_of_another_thread(tmp_path):
    # The recorder dropped a call's last reference to a watched argument inside a section
    # other threads wait for (at most 20 ms): their calls during the rest of a `__del__` that
    # slept were passed by, unrecorded.
    write(tmp_path / "app.py", SLOW_DEL)
    cli = make_cli("venv")
    recording = record(cli, "--max-calls-per-function", "0", "app.py", cwd=tmp_path,
                       trace=tmp_path / "run.trace")
    out = recording.result.stdout
    assert "done" in out, describe(recording.result)
    ticks = next(line.split()[1] for line in out.splitlines() if line.startswith("ticks "))
    profile = cli.run("show", "run.trace", "--profile", cwd=tmp_path)
    assert profile.returncode == 0, describe(profile)
    calls = {line.split()[-2]: line.split()[0] for line in profile.stdout.splitlines()[1:]}
    assert calls.get("__main__.tick") == ticks, describe(profile)
    assert calls.get("__main__.use") == "5", describe(profile)
    assert "lost" not in profile.stderr, describe(profile)
