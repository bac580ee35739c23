"""A changed function that is running right now (a main loop, a worker thread's loop, a
suspended coroutine) goes on with the code it started with; fever says so, and `-v` names the
frames. A function that is not running gets no such line."""

import re

from conftest import edit, looping, write

RUNNING = r"^fever: {name}\(\) is running{frames}; its new code applies from its next call$"


def test_main_loop(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        def helper(i):
            return f"h1:{i}"
        ''', "helper(i)"))
    p = fever.run("-v", "app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ h1:\d+$")
    edit(app, 'return f"h1:{i}"', 'return f"h2:{i}"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.helper\b")
    p.wait_stdout(r"^\d+ h2:\d+$")
    assert not p.fever_lines(r"is running"), p.report()
    edit(app, "time.sleep(0.02)", "time.sleep(0.021)", save)
    p.wait_stderr(r"^fever: reloaded __main__\.main\b")
    p.wait_stderr(RUNNING.format(name="main", frames=r" \(thread MainThread at app\.py:\d+\)"))
    p.wait_iterations(3)
    p.assert_not_restarted()
    p.assert_no_fever_errors()


WORKER = '''
import threading
import time


def work(i):
    return f"w1:{i}"


def worker():
    i = 0
    while True:
        print(i, work(i), flush=True)
        i += 1
        time.sleep(0.02)


threading.Thread(target=worker, name="pump", daemon=True).start()
time.sleep(60)
'''


def test_worker_thread(fever, tmp_path, save):
    app = write(tmp_path / "app.py", WORKER)
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ w1:\d+$")
    edit(app, "time.sleep(0.02)", "time.sleep(0.021)", save)
    p.wait_stderr(r"^fever: reloaded __main__\.worker\b")
    # Without -v, no frames are named.
    p.wait_stderr(RUNNING.format(name="worker", frames=""))
    edit(app, "time.sleep(0.021)", "time.sleep(0.02)", save)
    p.wait_stderr(RUNNING.format(name="worker", frames=""))
    p.wait_iterations(3)
    p.assert_not_restarted()
    p.assert_no_fever_errors()


TICKER = '''
import asyncio


async def ticker(name):
    i = 0
    while True:
        print(i, name, "t1", flush=True)
        i += 1
        await asyncio.sleep(0.02)


async def main():
    await asyncio.wait_for(asyncio.gather(ticker("a"), ticker("b")), 60)


asyncio.run(main())
'''


def test_suspended_coroutines(fever, tmp_path, save):
    app = write(tmp_path / "app.py", TICKER)
    p = fever.run("-v", "app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ b t1$")
    edit(app, 'name, "t1"', 'name, "t2"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.ticker\b")
    line = p.wait_stderr(RUNNING.format(name="ticker", frames=r" \((.+)\)"))
    frames = line[1].split("; ")
    assert len(frames) == 2, p.report()
    assert all(re.fullmatch(r"(suspended coroutine|thread MainThread) at app\.py:\d+", f)
               for f in frames), p.report()
    p.wait_stdout(r"^\d+ a t1$")
    p.assert_no_fever_errors()
