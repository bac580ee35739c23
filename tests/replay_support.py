"""Helpers for the `fever replay` end-to-end tests (test_replay.py).

`Channel` speaks fever's control protocol (fever_core::control) to a program side started as
`fever _replay-serve --control SOCKET ...`, the way `fever replay`'s front end does: frames are a
little-endian u32 length, then the version byte, the tag byte and the body; strings and byte
strings are a u32 length then the bytes. Only what the tests need is decoded: the tag, for a
finished replay the outcome, the names of the locals, the argument notes and a few strings found
in the snapshots (snapshots are compared by the text they contain, not decoded), and for a reload
or an undo the functions it changed with the hash of their code.
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

VERSION = 2
PING, REPLAY, CANCEL, QUIT, UNDO = 1, 2, 3, 4, 5
PONG, FINISHED, DONE, FAILED, ERROR, RELOADED, UNDONE, DEBUGGING = 101, 102, 103, 104, 105, 106, 107, 108
RETURNED, RAISED, NOT_REACHED = 1, 2, 3


def frame(tag: int, body: bytes = b"", version: int = VERSION) -> bytes:
    return struct.pack("<I", len(body) + 2) + bytes([version, tag]) + body


def text(s: str) -> bytes:
    data = s.encode()
    return struct.pack("<I", len(data)) + data


def replay_body(start: str, end: str, number_start: int = 1, number_end: int = 1,
                break_at_end: bool = False) -> bytes:
    return (text(start) + struct.pack("<I", number_start) + text(end) + struct.pack("<I", number_end)
            + bytes([int(break_at_end)]) + text("pdb"))


@dataclass
class Reply:
    tag: int
    body: bytes
    outcome: int | None = None
    locals: dict[str, bytes] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    value: bytes = b""
    message: str = ""
    # RELOADED / UNDONE: the functions that changed, with the hash of the code they run now.
    functions: dict[str, int | None] = field(default_factory=dict)


class Reader:
    def __init__(self, body: bytes):
        self.body, self.at = body, 0

    def take(self, n: int) -> bytes:
        out = self.body[self.at:self.at + n]
        assert len(out) == n, "reply cut short"
        self.at += n
        return out

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def bytes(self) -> bytes:
        return self.take(self.u32())

    def str(self) -> str:
        return self.bytes().decode()


def parse(tag: int, body: bytes) -> Reply:
    reply = Reply(tag, body)
    r = Reader(body)
    if tag in (FAILED, ERROR):
        reply.message = r.str()
    elif tag in (RELOADED, UNDONE):
        if tag == UNDONE:
            reply.message = r.str()  # the file
        for _ in range(r.u32()):
            name = r.str()
            reply.functions[name] = struct.unpack("<Q", r.take(8))[0] if r.take(1)[0] else None
    elif tag == DONE:
        reply.outcome = r.take(1)[0]
        if reply.outcome == RETURNED:
            reply.value = r.bytes()
        elif reply.outcome == RAISED:
            reply.value = r.bytes()
            reply.message = r.str()
        else:
            reply.message = r.str()
        for _ in range(r.u32()):
            name = r.str()
            reply.locals[name] = r.bytes()
        for _ in range(r.u32()):
            name = r.str()
            reply.notes[name] = r.str()
    return reply


class Channel:
    """A connection to a program side's control socket."""

    def __init__(self, path: Path, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.sock.settimeout(timeout)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, tag: int, body: bytes = b"") -> None:
        self.send_raw(frame(tag, body))

    def _exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError("the program closed the connection")
            out += chunk
        return out

    def receive(self, timeout: float = 30.0) -> Reply:
        self.sock.settimeout(timeout)
        (length,) = struct.unpack("<I", self._exact(4))
        payload = self._exact(length)
        assert payload[0] == VERSION
        return parse(payload[1], payload[2:])

    def replay(self, start: str, end: str | None = None, number_start: int = 1, number_end: int = 1,
               timeout: float = 30.0) -> Reply:
        self.send(REPLAY, replay_body(start, end or start, number_start, number_end))
        return self.receive(timeout)

    def close(self) -> None:
        self.sock.close()


def private_socket_dir() -> Path:
    """A 0700 directory for a control socket (the front end makes one per session)."""
    return Path(tempfile.mkdtemp(prefix="fever-test-"))


def serve_args(sock: Path, trace: Path, script: str, *args: str, keep_first: int = 16) -> list[str]:
    return ["_replay-serve", "--control", str(sock), "--trace", str(trace), "--keep-first", str(keep_first),
            script, *args]


def wait_gone(path: Path, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(path):
            return True
        time.sleep(0.02)
    return False
