"""Percentiles of one run, and medians of them across runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of one run's values (NaN when there are none)."""
    found = {name: percentile(values, q) for name, q in PERCENTILES}
    found["max"] = max(values) if values else math.nan
    return found


def median(values: Sequence[float]) -> float:
    present = [v for v in values if not math.isnan(v)]
    return statistics.median(present) if present else math.nan


def median_spread(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each percentile's median over the runs."""
    if not runs:
        return {}
    return {key: median([run[key] for run in runs]) for key in runs[0]}
