"""The results: a table for people, bench/results/latest.json for comparing runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.scenarios import Scenario, Target
from bench.stats import median, median_spread

# (label, key): spreads (p50/p90/p99/max) and single numbers, in the order they are shown.
_ROWS: tuple[tuple[str, str], ...] = (
    ("end to end (POST → transcript), ms", "e2e_ms"),
    ("  minus the fake API's own time, ms", "overhead_ms"),
    ("  × floor (API own time + download)", "ratio"),
    ("webhook answer (POST → 200), ms", "ack_ms"),
    ("notes/s end to end", "notes_per_s"),
    ("first POST → last transcript, s", "window_s"),
    ("bot peak RSS (VmHWM), MiB", "peak_rss_mib"),
    ("bot CPU per note, ms", "bot_cpu_ms_per_note"),
    ("Redis CPU per note, ms", "store_cpu_ms_per_note"),
    ("transcripts missing (lost)", "lost"),
    ("webhook answers not 200", "acks_failed"),
)


def summarize(scenario: Scenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs, and each target's verdict."""
    medians: dict[str, Any] = {}
    for key, value in runs[0].items() if runs else ():
        if isinstance(value, dict) and all(isinstance(v, float | int) for v in value.values()):
            medians[key] = median_spread([run[key] for run in runs])
        elif isinstance(value, float | int):
            medians[key] = median([float(run[key]) for run in runs])
    verdicts = []
    for target in scenario.targets:
        value = target.pick(runs)
        verdicts.append(
            {
                "key": target.key,
                "stat": target.stat,
                "target": target.label(),
                "value": value,
                "holds": target.holds(value),
            }
        )
    return {"median": medians, "targets": verdicts}


def table(results: dict[str, dict[str, Any]], scenarios: dict[str, Scenario]) -> str:
    header = f"{'scenario':<12} {'measure':<38} {'median over runs':<44} {'target':<24} result"
    lines = [header, "-" * len(header)]
    for name, result in results.items():
        runs: list[dict[str, Any]] = result["runs"]
        if not runs:
            lines.append(f"{name:<12} no run completed: {result.get('error', '?')}")
            continue
        first = True
        for label, key in _ROWS:
            targets = [t for t in scenarios[name].targets if t.key == key]
            if not targets and not _shown(key, runs):
                continue
            value = _format(key, runs)
            for index, target in enumerate(targets or [None]):
                target_text = verdict = ""
                if isinstance(target, Target):
                    target_text = target.label()
                    verdict = "PASS" if target.holds(target.pick(runs)) else "FAIL"
                lines.append(
                    f"{name if first else '':<12} {label if index == 0 else '':<38} "
                    f"{value if index == 0 else '':<44} {target_text:<24} {verdict}".rstrip()
                )
                first = False
        lines.append(_cpu_line(runs))
        lines.extend(_steps_lines(runs))
        lines.append("")
    return "\n".join(lines)


def _shown(key: str, runs: list[dict[str, Any]]) -> bool:
    """Rows without a target are shown when they say something (not all NaN, not all zero)."""
    value = runs[0].get(key)
    if isinstance(value, dict):
        return any(not math.isnan(float(v)) for v in value.values())
    return key not in ("lost", "acks_failed", "store_cpu_ms_per_note") or any(
        run[key] for run in runs
    )


def _format(key: str, runs: list[dict[str, Any]]) -> str:
    value = runs[0][key]
    if isinstance(value, dict):
        spread = median_spread([run[key] for run in runs])
        return "  ".join(f"{stat} {_num(v)}" for stat, v in spread.items())
    values = [float(run[key]) for run in runs]
    text = _num(median(values))
    if len(values) > 1:
        text += f"  (runs {_num(min(values))}–{_num(max(values))})"
    return text


def _num(value: float) -> str:
    if math.isnan(value):
        return "–"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cpu_line(runs: list[dict[str, Any]]) -> str:
    shares = {
        role: median([run["cpu_core_share"][role] * 100 for run in runs])
        for role in runs[0]["cpu_core_share"]
    }
    parts = "  ".join(f"{role} {share:.0f}%" for role, share in shares.items())
    return f"{'':<12} {'CPU, % of one core, over the run':<38} {parts}"


def _steps_lines(runs: list[dict[str, Any]]) -> list[str]:
    """Where the time between the POST and the transcript goes: each step's median p50."""
    steps: dict[str, dict[str, float]] = runs[0].get("steps_ms", {})
    parts = [
        f"{name} {_num(median([run['steps_ms'][name]['p50'] for run in runs]))}" for name in steps
    ]
    lines = []
    for index in range(0, len(parts), 3):
        label = "steps of a note, p50 ms" if index == 0 else ""
        lines.append(f"{'':<12} {label:<38} {' · '.join(parts[index : index + 3])}")
    return lines


# What a replica scenario is compared on: (label, key, stat of a spread or None).
_COMPARED: tuple[tuple[str, str, str | None], ...] = (
    ("notes/s end to end", "notes_per_s", None),
    ("first POST → last transcript, s", "window_s", None),
    ("end to end p50, ms", "e2e_ms", "p50"),
    ("webhook answer p99, ms", "ack_ms", "p99"),
    ("CPU per note (bots + Redis), ms", "cpu_ms_per_note", None),
)


def comparisons(
    results: dict[str, dict[str, Any]], scenarios: dict[str, Scenario]
) -> dict[str, dict[str, Any]]:
    """Each scenario whose baseline ran too: both medians and their ratio, per figure."""
    found: dict[str, dict[str, Any]] = {}
    for name, result in results.items():
        base = scenarios[name].baseline
        if base is None or not result["runs"] or not results.get(base, {}).get("runs"):
            continue
        figures: dict[str, Any] = {}
        for _, key, stat in _COMPARED:
            mine, theirs = (
                _compared(result["runs"], key, stat),
                _compared(results[base]["runs"], key, stat),
            )
            ratio = mine / theirs if theirs else math.nan
            figures[key if stat is None else f"{key}.{stat}"] = {
                "value": mine,
                "baseline": theirs,
                "ratio": ratio,
            }
        found[name] = {"baseline": base, "figures": figures}
    return found


def _compared(runs: list[dict[str, Any]], key: str, stat: str | None) -> float:
    if key == "cpu_ms_per_note":
        return median([run["bot_cpu_ms_per_note"] + run["store_cpu_ms_per_note"] for run in runs])
    if stat is not None:
        return median([float(run[key][stat]) for run in runs])
    return median([float(run[key]) for run in runs])


def comparison_table(found: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, entry in found.items():
        lines.append(f"{name} against {entry['baseline']} (medians; ratio = {name} ÷ baseline):")
        for (label, _, _), figure in zip(_COMPARED, entry["figures"].values(), strict=True):
            lines.append(
                f"  {label:<36} {_num(figure['value']):>8} vs {_num(figure['baseline']):>8}"
                f"   ×{_num(figure['ratio'])}"
            )
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(document), indent=2, ensure_ascii=False) + "\n")


def _finite(value: Any) -> Any:
    """NaN is not JSON: null instead."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
