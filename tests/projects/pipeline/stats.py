"""Summary statistics for the pipeline."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    count: int
    mean: float
    low: float
    high: float


def mean(values):
    return sum(values) / len(values)


def summarize(values):
    return Summary(len(values), mean(values), min(values), max(values))
