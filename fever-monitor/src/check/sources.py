"""Sources of nondeterminism that `fever check` watches while it re-invokes recorded calls.

Loaded by fever before the project's modules are imported: the functions below are replaced in
their modules by wrappers that note they were called, so code that imports them afterwards
(``from random import choice`` too) gets the wrappers. A call whose result differs from its
recording after it reached one of them is reported as nondeterministic, not as a regression.
"""

import functools
import os
import random
import time
import uuid

_reached = []
_seeded = False

_RANDOM = (
    "random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform",
    "gauss", "getrandbits", "randbytes", "triangular", "normalvariate", "expovariate",
    "betavariate", "lognormvariate", "vonmisesvariate", "gammavariate", "paretovariate",
    "weibullvariate", "binomialvariate",
)
_TIME = (
    "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
    "process_time", "process_time_ns", "localtime", "ctime", "asctime",
)


def _note(label):
    if label not in _reached:
        _reached.append(label)


def _watch(module, name, label, unless_seeded=False):
    original = getattr(module, name, None)
    if original is None or getattr(original, "__fever_watched__", False):
        return

    @functools.wraps(original)
    def watched(*args, **kwargs):
        if not (unless_seeded and _seeded):
            _note(label)
        return original(*args, **kwargs)

    watched.__fever_watched__ = True
    setattr(module, name, watched)


def _watch_seed():
    original = random.seed
    if getattr(original, "__fever_watched__", False):
        return

    @functools.wraps(original)
    def seed(a=None, *args, **kwargs):
        global _seeded
        _seeded = a is not None
        return original(a, *args, **kwargs)

    seed.__fever_watched__ = True
    random.seed = seed


for _name in _RANDOM:
    _watch(random, _name, "random without a fixed seed", unless_seeded=True)
for _name in _TIME:
    _watch(time, _name, "the clock (time." + _name + ")")
for _name in ("uuid1", "uuid4"):
    _watch(uuid, _name, "uuid." + _name)
_watch(os, "urandom", "os.urandom")
_watch_seed()


def reset():
    """Forgets what the previous call reached."""
    global _seeded
    _reached.clear()
    _seeded = False


def reached():
    """The sources reached since `reset`, in the order first reached."""
    return list(_reached)
