"""`fever watch --persist-cache` costs what the cache file holds, not its capacity: a 1 GiB cache
file is created sparse and never faulted in whole, so the program's memory stays small (a timing
is not asserted: the resident memory is what start-up work on the whole file would show)."""

import pytest

from conftest import write
from test_watch import CACHE_OPTS
from watch_support import next_run, watch

APP = """
import re

status = open("/proc/self/status").read()
print("rss_kib:", re.search(r"VmRSS:\\s+(\\d+)", status)[1])
print("end")
"""


@pytest.mark.parametrize("size", ["1G", "8G"])
def test_a_large_persisted_cache_is_not_loaded_whole(fever, tmp_path, size):
    write(tmp_path / "app.py", APP)
    for start in ("empty", "restart"):
        p = watch(fever, tmp_path, *CACHE_OPTS, "--persist-cache", "--cache-size", size, "app.py")
        run = next_run(p)
        rss_mib = int(run.value("rss_kib")) / 1024
        assert rss_mib < 300, f"{start}: {rss_mib:.0f} MiB resident\n{run.report}"
        ring = tmp_path / ".fever" / "cache" / "calls.ring"
        assert ring.stat().st_size == (1 << 30) + 256, run.report  # capped at 1 GiB of records
        assert ring.stat().st_blocks * 512 < 16 << 20, run.report  # sparse
        p.kill()
