"""The slow part of slow_boot: reading the data takes ~1.5 s, as if it came from a big file or a
database. `fever watch` caches load_data() calls, so re-runs after edits elsewhere skip it."""

import csv
import os
import time

from rows import parse_row

LOAD_SECONDS = 1.5  # what a real loader would spend decoding files or waiting on a server


def load_data(path, scale=1):
    """Reads the sales CSV at `path` (`scale` times over) into a list of Sale rows."""
    started = time.perf_counter()
    print(f"loading {os.path.basename(path)}...", flush=True)
    with open(path, newline="") as f:
        records = list(csv.reader(f))
    header, body = records[0], records[1:]
    sales = [parse_row(header, record) for _ in range(scale) for record in body]
    time.sleep(max(0.0, LOAD_SECONDS * scale - (time.perf_counter() - started)))
    return sales
