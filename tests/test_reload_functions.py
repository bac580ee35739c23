"""Saved functions are patched into the running program: plain, decorated, generator, async,
referenced from data structures, newly added, called from threads."""

from conftest import CHANGE_LINE, edit, looping, save_by_rename, save_in_place, write

COMPUTE = '''
def compute(i):
    return f"v1:{i * 2}"
'''


def test_module_level_function(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping(COMPUTE, "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    old = p.wait_stdout(r"^(\d+) v1:(\d+)$")
    assert int(old[2]) == 2 * int(old[1])

    edit(app, 'return f"v1:{i * 2}"', 'return f"v2:{i * 3}"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    new = p.wait_stdout(r"^(\d+) v2:(\d+)$")
    assert int(new[2]) == 3 * int(new[1])
    assert int(new[1]) > int(old[1])
    p.assert_not_restarted()
    # Only the changed function was touched, and fever said so on stderr only.
    assert len(p.fever_lines(CHANGE_LINE)) == 1, p.report()
    assert not [line for line in p.stdout if line.startswith("fever:")], p.report()
    p.assert_no_fever_errors()


def test_edited_again_and_reverted(fever, tmp_path):
    app = write(tmp_path / "app.py", looping(COMPUTE, "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ v1:")
    current = "v1"
    for version, save in [("v2", save_in_place), ("v3", save_by_rename), ("v1", save_in_place)]:
        edit(app, f'"{current}:', f'"{version}:', save)
        current = version
        p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
        p.wait_stdout(rf"^\d+ {version}:")
    p.wait_iterations(3)
    assert p.stdout[-1].split()[1].startswith("v1:"), p.report()
    p.assert_not_restarted()


def test_burst_of_saves_ends_with_the_last(fever, tmp_path):
    app = write(tmp_path / "app.py", looping(COMPUTE, "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ v1:")
    edit(app, '"v1:', '"v2:')
    edit(app, '"v2:', '"v3:', save_by_rename)
    edit(app, '"v3:', '"v4:')
    first = p.wait_stdout(r"^(\d+) v4:")
    p.wait_iterations(5)
    after = [line for line in p.stdout if int(line.split()[0]) >= int(first[1])]
    assert all(" v4:" in line for line in after), p.report()
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_function_under_functools_wraps_decorator(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        import functools

        def tagged(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return "tag:" + fn(*args, **kwargs)
            return wrapper

        @tagged
        def compute(i):
            return f"v1:{i}"
        ''', "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ tag:v1:\d+$")
    edit(app, 'return f"v1:{i}"', 'return f"v2:{i + 1000}"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    # The new body runs, and still under the decorator.
    new = p.wait_stdout(r"^(\d+) (.*)$", where=lambda m: "v2" in m[2])
    assert new[2] == f"tag:v2:{int(new[1]) + 1000}", p.report()
    p.assert_not_restarted()


def test_generator_function(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        def numbers(i):
            yield f"g1:{i}"
            yield f"g1:{i + 1}"
        ''', '",".join(numbers(i))'))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ g1:\d+,g1:\d+$")
    edit(app, '''
            yield f"g1:{i}"
            yield f"g1:{i + 1}"
        ''', '''
            yield f"g2:{i}"
            yield f"g2:{i * 10}"
            yield "g2:end"
        ''', save)
    p.wait_stderr(r"^fever: reloaded __main__\.numbers\b")
    new = p.wait_stdout(r"^(\d+) g2:(\d+),g2:(\d+),g2:end$")
    assert (int(new[2]), int(new[3])) == (int(new[1]), 10 * int(new[1]))
    p.assert_not_restarted()


def test_async_function_in_asyncio_loop(fever, tmp_path, save):
    app = write(tmp_path / "app.py", '''
        import asyncio
        import time

        async def step(i):
            await asyncio.sleep(0)
            return f"a1:{i}"

        async def main():
            deadline = time.monotonic() + 60
            i = 0
            while time.monotonic() < deadline:
                print(i, await step(i), flush=True)
                i += 1
                await asyncio.sleep(0.02)

        if __name__ == "__main__":
            asyncio.run(main())
        ''')
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ a1:\d+$")
    edit(app, 'return f"a1:{i}"', 'return f"a2:{i * 2}"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.step\b")
    new = p.wait_stdout(r"^(\d+) a2:(\d+)$")
    assert int(new[2]) == 2 * int(new[1])
    p.assert_not_restarted()


def test_references_in_dict_list_and_default_argument(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        def compute(i):
            return f"c1:{i}"

        HANDLERS = {"go": compute}
        CALLBACKS = [compute]

        def run(i, fn=compute):
            return fn(i)
        ''', 'HANDLERS["go"](i), CALLBACKS[0](i), run(i)'))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^(\d+) c1:\1 c1:\1 c1:\1$")
    edit(app, 'return f"c1:{i}"', 'return f"c2:{-i}"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    p.wait_stdout(r"^(\d+) c2:-\1 c2:-\1 c2:-\1$")
    p.assert_not_restarted()


def test_new_function_called_from_edited_one(fever, tmp_path, save):
    app = write(tmp_path / "app.py", looping('''
        def compute(i):
            return f"c1:{i}"
        ''', "compute(i)"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ c1:\d+$")
    edit(app, '''
        def compute(i):
            return f"c1:{i}"
        ''', '''
        def helper(i):
            return f"h:{i * 10}"


        def compute(i):
            return "c2+" + helper(i)
        ''', save)
    p.wait_stderr(r"^fever: added __main__\.helper\b")
    new = p.wait_stdout(r"^(\d+) c2\+h:(\d+)$")
    assert int(new[2]) == 10 * int(new[1])
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b", from_start=True)
    p.assert_not_restarted()
    p.assert_no_fever_errors()


def test_function_running_in_worker_threads(fever, tmp_path, save):
    app = write(tmp_path / "app.py", '''
        import threading
        import time

        LOCK = threading.Lock()

        def compute(i):
            return f"t1:{i}"

        def worker(n):
            deadline = time.monotonic() + 60
            i = 0
            while time.monotonic() < deadline:
                value = compute(i)
                with LOCK:
                    print(f"w{n} {i} {value}", flush=True)
                i += 1
                time.sleep(0.02)

        def main():
            threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        if __name__ == "__main__":
            main()
        ''')
    p = fever.run("app.py", cwd=tmp_path)
    for n in range(3):
        p.wait_stdout(rf"^w{n} \d+ t1:")
    edit(app, 'return f"t1:{i}"', 'return f"t2:{i * 2}"', save)
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    for n in range(3):
        p.wait_stdout(rf"^w{n} (\d+) t2:(\d+)$", where=lambda m: int(m[2]) == 2 * int(m[1]))
    for n in range(3):
        p.assert_not_restarted(rf"^w{n} (\d+) ")


def test_source_with_coding_cookie(fever, tmp_path):
    """The file is decoded as Python decodes it (PEP 263), also when it is reloaded."""
    app = tmp_path / "app.py"
    source = "# -*- coding: latin-1 -*-\n" + looping('''
        def compute(i):
            return "café"
        ''', "compute(i)")
    app.write_bytes(source.encode("latin-1"))
    p = fever.run("app.py", cwd=tmp_path)
    p.wait_stdout(r"^\d+ café$")
    save_in_place(app, source.replace("café", "naïve àçé").encode("latin-1"))
    p.wait_stderr(r"^fever: reloaded __main__\.compute\b")
    p.wait_stdout(r"^\d+ naïve àçé$")
    p.assert_not_restarted()
    p.assert_no_fever_errors()
