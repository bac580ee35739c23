"""`fever show`: the call tree's options, the profile table, the exports (Perfetto, Chrome JSON,
speedscope) and clear errors for every kind of unreadable trace file.

Traces are recorded from real scripts with the real `fever record`; both the venv's `fever` and
the standalone binary are tested (see record_support.py).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from conftest import write
from record_support import (Cli, clean_stderr, cli, describe, make_cli, parse_tree, profile_row,  # noqa: F401
                            record, show, show_profile, show_tree)

SMALL = """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def leaf(i):
    return i


def fan_out(n):
    return [leaf(i) for i in range(n)]


def main():
    fan_out(4)
    return fib(6)


print(main())
"""
FIB6_CALLS = 25


@pytest.fixture
def small_trace(tmp_path) -> Path:
    """A trace of SMALL, recorded once per test with the venv's fever."""
    write(tmp_path / "small.py", SMALL)
    rec = record(make_cli("venv"), "small.py", cwd=tmp_path, trace=tmp_path / "small.trace")
    assert rec.result.stdout == "8\n"
    return rec.trace


# --------------------------------------------------------------------------------------------
# The call tree and the profile


def test_tree_nesting(cli, small_trace):
    tree = show_tree(cli, small_trace)
    assert len(tree.threads) == 1 and tree.threads[0][1], tree.text
    main = tree.one("__main__.main")
    assert "→ 8" in main.text, tree.text
    assert [c.short for c in main.children] == ["fan_out", "fib"], tree.text
    fan_out, fib = main.children
    assert "n=4" in fan_out.text and "→ [0, 1, 2, 3]" in fan_out.text, tree.text
    # The four calls of leaf(): consecutive siblings, shown one by one or collapsed as [×4].
    leaves = [c for c in fan_out.children if c.is_("leaf")] + \
        [g for c in fan_out.children for g in c.children if g.is_("leaf")]  # under a <listcomp> on 3.12-
    assert sum(c.count for c in leaves) == 4, tree.text
    collapsed = [c for c in leaves if c.count > 1]
    if collapsed:
        assert re.search(r"\[[×x]4\]", collapsed[0].text), tree.text
    assert "n=6" in fib.text and "→ 8" in fib.text, tree.text
    assert tree.total("__main__.fib") == FIB6_CALLS, tree.text


def test_time_column_is_there(cli, small_trace):
    tree = show_tree(cli, small_trace)
    main = tree.one("__main__.main")
    assert re.search(r"\d(\.\d+)?\s*(ns|µs|us|ms|s)\b", main.text), main.text


def test_depth_limits_nesting(cli, small_trace):
    full = show_tree(cli, small_trace)
    full_depth = max(c.depth for c in full.calls)
    assert full_depth >= 5, full.text
    d2 = show_tree(cli, small_trace, "--depth", "2")
    d3 = show_tree(cli, small_trace, "--depth", "3")
    assert max(c.depth for c in d2.calls) in (1, 2), d2.text
    assert max(c.depth for c in d3.calls) == max(c.depth for c in d2.calls) + 1, d3.text
    assert len(d2.calls) < len(d3.calls) < len(full.calls)


def test_max_lines_limits_output(cli, small_trace):
    full = show_tree(cli, small_trace)
    assert len(full.calls) > 6, full.text
    short = show(cli, small_trace, "--max-lines", "5")
    lines = [c for c in parse_tree(short.stdout).calls]
    assert 1 <= len(lines) <= 5, short.stdout
    assert [c.text for c in lines] == [c.text for c in full.calls[:len(lines)]], short.stdout


def test_profile_table(cli, small_trace):
    rows = show_profile(cli, small_trace)
    fib = profile_row(rows, "__main__.fib")
    assert fib.calls == FIB6_CALLS and not fib.capped, fib.text
    assert profile_row(rows, "__main__.leaf").calls == 4
    assert profile_row(rows, "__main__.main").calls == 1
    assert re.search(r"small\.py:\d+", fib.text), fib.text
    # Sorted by total time, descending: a caller above its callees.
    order = list(rows)
    assert order.index(profile_row(rows, "__main__.main").name) < order.index(fib.name), order
    assert order.index(profile_row(rows, "__main__.fan_out").name) < \
        order.index(profile_row(rows, "__main__.leaf").name), order


def test_profile_limit(cli, small_trace):
    everything = list(show_profile(cli, small_trace))
    assert len(everything) >= 4, everything
    top = list(show_profile(cli, small_trace, "--limit", "2"))
    assert top == everything[:2]


def test_show_help_lists_the_options(cli, tmp_path):
    result = cli.run("show", "--help", cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    for option in ("--profile", "--format", "perfetto", "chrome", "speedscope", "-o", "--depth",
                   "--max-lines", "--limit"):
        assert option in result.stdout, f"{option} not in\n{result.stdout}"


# --------------------------------------------------------------------------------------------
# Exports

WROTE = re.compile(r"^fever: wrote (?P<path>.+) \((?P<size>[^)]*)\): open it at (?P<url>\S+)")


def export(cli: Cli, trace: Path, fmt: str, *args) -> tuple[Path, str]:
    result = cli.run_bytes("show", trace, "--format", fmt, *args, cwd=trace.parent)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, f"exit {result.returncode}\n{stderr}"
    clean_stderr(stderr)
    lines = stderr.splitlines()
    m = WROTE.match(lines[-1]) if lines else None
    assert m, f"no `fever: wrote OUT (SIZE): open it at URL` line:\n{stderr}"
    assert m["url"].startswith("http"), m["url"]
    path = Path(m["path"])
    if not path.is_absolute():
        path = trace.parent / path
    return path, m["url"]


def protobuf_fields(data: bytes) -> list[tuple[int, int, bytes | int]]:
    """Decodes one level of protobuf wire format: (field, wire type, value) triples; raises
    ValueError unless the bytes are exactly a sequence of well-formed fields."""

    def varint(pos: int) -> tuple[int, int]:
        value, shift = 0, 0
        while True:
            if pos >= len(data) or shift > 63:
                raise ValueError(f"bad varint at {pos}")
            byte = data[pos]
            value |= (byte & 0x7F) << shift
            pos += 1
            if not byte & 0x80:
                return value, pos
            shift += 7

    fields, pos = [], 0
    while pos < len(data):
        key, pos = varint(pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = varint(pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire} at {pos}")
        if pos > len(data) or number == 0:
            raise ValueError(f"field {number} runs past the end")
        fields.append((number, wire, value))
    return fields


def test_perfetto_export(cli, small_trace):
    out, url = export(cli, small_trace, "perfetto")
    assert out == small_trace.with_suffix(".pftrace"), out
    assert "perfetto" in url
    data = out.read_bytes()
    assert len(data) > 100
    # A Perfetto `Trace` message: nothing but TracePacket fields (number 1, length-delimited).
    packets = protobuf_fields(data)
    assert packets and all(number == 1 and wire == 2 for number, wire, _ in packets), packets[:5]
    for packet in packets:
        protobuf_fields(packet[2])  # each packet is itself well-formed
    for name in (b"fib", b"fan_out", b"leaf", b"main"):
        assert name in data, name


def chrome_events(data) -> list[dict]:
    events = data if isinstance(data, list) else data["traceEvents"]
    assert isinstance(events, list) and events
    return events


def calls_named(events: list[dict], name: str) -> int:
    """Calls in Chrome trace events: complete events (X) plus begin events (B)."""
    return sum(1 for e in events if e.get("ph") in ("X", "B") and re.search(rf"\b{name}\b", str(e.get("name"))))


def test_chrome_export(cli, small_trace):
    out, url = export(cli, small_trace, "chrome")
    assert out == small_trace.parent / "small.chrome.json", out
    events = chrome_events(json.loads(out.read_text()))
    assert calls_named(events, "fib") == FIB6_CALLS, events[:5]
    assert calls_named(events, "leaf") == 4
    assert calls_named(events, "main") == 1
    for e in events:
        if e.get("ph") == "X":
            assert e["dur"] >= 0 and "ts" in e and "pid" in e and "tid" in e, e


def test_speedscope_export(cli, small_trace):
    out, url = export(cli, small_trace, "speedscope")
    assert out == small_trace.parent / "small.speedscope.json", out
    assert "speedscope" in url
    data = json.loads(out.read_text())
    assert data["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = [f["name"] for f in data["shared"]["frames"]]
    fib = [i for i, name in enumerate(frames) if re.search(r"\bfib\b", name)]
    assert len(fib) == 1, frames
    assert any("fan_out" in name for name in frames) and any("leaf" in name for name in frames), frames
    profiles = data["profiles"]
    assert profiles and all(p["type"] in ("evented", "sampled") for p in profiles), profiles
    evented = [p for p in profiles if p["type"] == "evented"]
    if evented:
        opens = sum(1 for p in evented for e in p["events"] if e["type"] == "O" and e["frame"] == fib[0])
        closes = sum(1 for p in evented for e in p["events"] if e["type"] == "C" and e["frame"] == fib[0])
        assert opens == closes == FIB6_CALLS, (opens, closes)


@pytest.mark.parametrize("fmt", ["perfetto", "chrome", "speedscope"])
def test_export_to_a_chosen_path_and_to_stdout(cli, small_trace, fmt):
    chosen = small_trace.parent / "sub" / f"export.{fmt}"
    chosen.parent.mkdir()
    out, _ = export(cli, small_trace, fmt, "-o", chosen)
    assert out == chosen and chosen.stat().st_size > 0
    result = cli.run_bytes("show", small_trace, "--format", fmt, "-o", "-", cwd=small_trace.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout == chosen.read_bytes() or fmt != "perfetto" and \
        json.loads(result.stdout) == json.loads(chosen.read_bytes())
    assert not (small_trace.parent / "-").exists()


def test_export_of_a_two_thread_trace(cli, tmp_path):
    write(tmp_path / "app.py", """
        import threading


        def work(n):
            return sum(i for i in range(n))


        t = threading.Thread(target=work, args=(3,))
        t.start()
        t.join()
        work(2)
    """)
    rec = record(make_cli("venv"), "app.py", cwd=tmp_path)
    out, _ = export(cli, rec.trace, "chrome")
    events = chrome_events(json.loads(out.read_text()))
    work_threads = {e["tid"] for e in events if e.get("ph") in ("X", "B") and "work" in str(e.get("name"))}
    assert len(work_threads) == 2, events


# --------------------------------------------------------------------------------------------
# Unreadable traces


def assert_clear_error(result, path: Path) -> None:
    assert result.returncode == 2, describe(result)
    clean_stderr(result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("fever: error:")]
    assert errors, describe(result)
    assert str(path) in errors[0] or path.name in errors[0], describe(result)
    assert result.stdout == "", describe(result)


BAD_FILES = {
    "empty": b"",
    "garbage": bytes(random.Random(7).randrange(256) for _ in range(4096)),
    "python-source": b"print('hello')\n" * 20,
    "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
    "json": b'{"traceEvents": []}',
    "magic-only": b"FEVERTRC",
    "other-version": b"FEVERTRC\xff\x00\x00\x00" + b"\0" * 200,
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
@pytest.mark.parametrize("args", [[], ["--profile"], ["--format", "chrome"]], ids=["tree", "profile", "export"])
def test_bad_file_is_a_clear_error(cli, tmp_path, kind, args):
    bad = tmp_path / f"{kind}.trace"
    bad.write_bytes(BAD_FILES[kind])
    assert_clear_error(cli.run("show", bad, *args, cwd=tmp_path), bad)
    assert not (tmp_path / f"{kind}.chrome.json").exists()


def test_missing_file_and_directory(cli, tmp_path):
    missing = tmp_path / "nope.trace"
    assert_clear_error(cli.run("show", missing, cwd=tmp_path), missing)
    folder = tmp_path / "dir.trace"
    folder.mkdir()
    assert_clear_error(cli.run("show", folder, cwd=tmp_path), folder)


def test_truncated_header_is_an_error(cli, small_trace):
    data = small_trace.read_bytes()
    for cut in (4, 8, 31, 40):
        bad = small_trace.parent / f"cut{cut}.trace"
        bad.write_bytes(data[:cut])
        assert_clear_error(cli.run("show", bad, cwd=bad.parent), bad)


def test_truncated_body_is_an_error_or_an_incomplete_trace(cli, tmp_path):
    """A trace cut short after its header (a recorder killed mid-write) is either refused or read
    up to its last complete chunk with a warning; never a crash or silently partial output."""
    write(tmp_path / "fib.py", SMALL.replace("fib(6)", "fib(18)"))
    data = record(make_cli("venv"), "fib.py", cwd=tmp_path).trace.read_bytes()
    for fraction in (0.5, 0.9, 0.999):
        cut = int(len(data) * fraction)
        bad = tmp_path / f"cut{cut}.trace"
        bad.write_bytes(data[:cut])
        for args in ([], ["--profile"]):
            result = cli.run("show", bad, *args, cwd=tmp_path)
            clean_stderr(result.stderr)
            if result.returncode == 2:
                assert_clear_error(result, bad)
            else:
                assert result.returncode == 0, describe(result)
                assert re.search(r"^fever: .*incomplete", result.stderr, re.M), describe(result)


def test_flipped_bits_are_errors(cli, small_trace):
    data = small_trace.read_bytes()
    positions = sorted({0, 9, 13, 17, 25, len(data) - 1, len(data) - 9, len(data) - 30,
                        *range(40, len(data), max(len(data) // 24, 1))})
    failures = []
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        bad = small_trace.parent / "flipped.trace"
        bad.write_bytes(bytes(flipped))
        result = cli.run("show", bad, "--profile", cwd=bad.parent)
        ok = result.returncode == 2 and result.stderr.startswith("fever: error:") and \
            not any(m in result.stderr for m in ("Traceback", "panicked"))
        if not ok:
            failures.append(f"byte {pos} of {len(data)}: exit {result.returncode}, stderr {result.stderr[-300:]!r}")
    assert not failures, "\n".join(failures)


def test_trace_written_by_a_newer_fever_format_is_refused(cli, small_trace):
    data = bytearray(small_trace.read_bytes())
    data[8:12] = (99).to_bytes(4, "little")
    bad = small_trace.parent / "future.trace"
    bad.write_bytes(bytes(data))
    result = cli.run("show", bad, cwd=bad.parent)
    assert_clear_error(result, bad)
    assert "99" in result.stderr or "version" in result.stderr, result.stderr


V1_TRACE = Path(__file__).resolve().parent.parent / "fever-core" / "tests" / "golden" / "v1.trace"


def test_trace_recorded_by_an_older_fever_is_named_as_such(cli, tmp_path):
    """Format 1 traces (before compression) are refused with a message that says what to do."""
    old = tmp_path / "old.trace"
    old.write_bytes(V1_TRACE.read_bytes())
    for args in ([], ["--profile"], ["--format", "chrome"]):
        result = cli.run("show", old, *args, cwd=tmp_path)
        assert_clear_error(result, old)
        assert "recorded by an older fever" in result.stderr, describe(result)
        assert "record the trace again" in result.stderr, describe(result)
