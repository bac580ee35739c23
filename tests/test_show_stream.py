"""`fever show` reads a trace chunk by chunk: a trace of many chunks, with a distinct snapshot per
call, shows every call with its own arguments in each export; a corrupt chunk in the middle of
the file is a clear error that names it, and leaves no partial export behind.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from conftest import write
from record_support import clean_stderr, cli, describe, make_cli, record, show_profile  # noqa: F401

CALLS = 30_000

MANY = f"""
def label(i, text, parts):
    return len(text) + len(parts) + i


def main():
    total = 0
    for i in range({CALLS}):
        total += label(i, "item-" + str(i) * 60, [str(i + k) * 9 for k in range(16)])
    return total


print(main())
"""


@pytest.fixture(scope="module")
def many_chunks(tmp_path_factory) -> Path:
    """A trace of MANY: tens of thousands of calls, each with arguments of its own."""
    d = tmp_path_factory.mktemp("many")
    write(d / "many.py", MANY)
    rec = record(make_cli("venv"), "--max-calls-per-function", "0", "many.py", cwd=d, trace=d / "many.trace")
    assert rec.result.returncode == 0, describe(rec.result)
    assert len(chunk_payloads(rec.trace)) >= 3, "test bug: the trace should hold several chunks"
    return rec.trace


def chunk_payloads(trace: Path) -> list[tuple[int, int]]:
    """(offset, length) of each record chunk's payload, walking the blocks of the file."""
    data = trace.read_bytes()
    header_len = struct.unpack_from("<I", data, 12)[0]
    pos = (32 + header_len + 7) // 8 * 8
    chunks = []
    while pos + 40 <= len(data) and data[pos:pos + 4] == b"FVCH":
        payload_len = struct.unpack_from("<I", data, pos + 4)[0]
        chunks.append((pos + 40, payload_len))
        pos = (pos + 40 + payload_len + 7) // 8 * 8
    return chunks


def test_every_call_of_a_many_chunk_trace_is_exported_with_its_own_arguments(cli, many_chunks, tmp_path):
    out = tmp_path / "many.json"
    result = cli.run("show", many_chunks, "--format", "chrome", "-o", out, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    clean_stderr(result.stderr)
    events = json.loads(out.read_text())["traceEvents"]
    calls = [e for e in events if e.get("ph") in ("B", "X") and "label" in str(e.get("name"))]
    assert len(calls) == CALLS, len(calls)
    texts = [json.dumps(e.get("args")) for e in calls]
    for i in (0, 1, CALLS // 2, CALLS - 1):
        assert f"i={i}," in texts[i] and f"item-{str(i) * 60}"[:40] in texts[i], (i, texts[i])

    rows = show_profile(cli, many_chunks)
    assert any(name.endswith("label") and row.calls == CALLS for name, row in rows.items()), rows


@pytest.mark.parametrize("fmt", ["perfetto", "tree"])
def test_a_corrupt_chunk_in_the_middle_is_a_clear_error(cli, many_chunks, tmp_path, fmt):
    chunks = chunk_payloads(many_chunks)
    middle = len(chunks) // 2
    offset, length = chunks[middle]
    data = bytearray(many_chunks.read_bytes())
    data[offset + length // 2] ^= 0x55
    bad = tmp_path / "bad.trace"
    bad.write_bytes(bytes(data))
    out = tmp_path / "bad.out"
    args = ["--format", fmt, "-o", out] if fmt != "tree" else []
    result = cli.run("show", bad, *args, cwd=tmp_path)
    assert result.returncode == 2, describe(result)
    clean_stderr(result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("fever: error:")]
    assert errors and str(bad) in errors[0] or "bad.trace" in errors[0], describe(result)
    assert f"chunk {middle} checksum mismatch" in errors[0], describe(result)
    assert result.stdout == "", describe(result)
    assert not out.exists()
