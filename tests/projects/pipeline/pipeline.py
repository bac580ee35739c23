"""A small sensor-data pipeline: parse readings, convert them to Celsius, group them by sensor and
summarize each group. `fever check` replays its recorded calls (tests/test_check*.py)."""

import random
import sys
import threading
from dataclasses import dataclass
from enum import Enum

import stats


class Unit(Enum):
    C = "C"
    F = "F"


@dataclass
class Reading:
    sensor: str
    value: float
    unit: Unit


def parse(line):
    sensor, value, unit = line.split(",")
    return Reading(sensor.strip(), float(value), Unit(unit.strip()))


def to_celsius(reading):
    if reading.unit is Unit.F:
        return (reading.value - 32) * 5 / 9
    return reading.value


def normalize(readings, scale=1.0):
    return [Reading(r.sensor, round(to_celsius(r) * scale, 3), Unit.C) for r in readings]


def group(readings):
    groups = {}
    for r in readings:
        groups.setdefault(r.sensor, []).append(r.value)
    return groups


class Report:
    def __init__(self, title):
        self.title = title
        self.lines = []

    def add(self, name, summary):
        print(f"adding {name}")
        self.lines.append(f"{name}: {summary.mean:.2f} ({summary.low} .. {summary.high})")
        return len(self.lines)


def check_positive(value):
    if value < 0:
        raise ValueError(f"negative reading: {value}")
    return value


def sample_id(prefix):
    return f"{prefix}-{random.random()}"


def describe(lock):
    return "locked" if lock.locked() else "free"


def ask(prompt):
    try:
        return input(prompt)
    except EOFError:
        return "default"


def leave(code):
    sys.exit(code)


LINES = ["a, 68.0, F", "b, 21.5, C", "a, 71.6, F", "b, 19.0, C", "c, 0.25, C"]

if __name__ == "__main__":
    readings = [parse(line) for line in LINES]
    celsius = normalize(readings)
    report = Report("temperatures")
    for name, values in group(celsius).items():
        report.add(name, stats.summarize(values))
    for value in (2.5, -1.0):
        try:
            check_positive(value)
        except ValueError:
            pass
    sample_id("run")
    sample_id("run")
    describe(threading.Lock())
    ask("continue? ")
    try:
        leave(3)
    except SystemExit:
        pass
    print("\n".join(report.lines))
