"""The PNG chart of a `cpi bench --kafka` run: throughput and latency over time.

matplotlib is the bench's own dependency (the `bench` extra), not the workers': only this module imports it,
and only when a chart is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_WINDOW = 5


def _rolling(values: list[float]) -> list[float]:
    """The mean of each value and the ones before it, up to `_WINDOW` in all: a rate that is readable."""
    return [sum(values[max(0, i - _WINDOW + 1):i + 1]) / min(i + 1, _WINDOW) for i in range(len(values))]


def draw(report: dict[str, Any], path: Path) -> Path:
    """Write `report`'s timeline to `path` as a PNG: decided and notified (and, open-loop, written) per second
    above, and received → decided p50 and p99 (ms) per second below."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    from matplotlib import pyplot

    rows = report["timeline"]
    seconds = [row["second"] for row in rows]
    figure, (rates, latency) = pyplot.subplots(2, 1, sharex=True, figsize=(10, 7))
    # A backlog is written in its first second or two: drawn, it would flatten the rest of the chart.
    for key in ("written", "decided", "notified") if report["rate"] else ("decided", "notified"):
        rates.plot(seconds, _rolling([row[key] for row in rows]), label=f"{key} /s ({_WINDOW} s mean)")
    rates.set_ylabel("records per second")
    rates.legend()
    relay = report["raw_relay"]["per_second"]
    title = f"cpi bench --kafka ({report['mode']}, {report['records']} records"
    title += f" at {report['rate']:g}/s)" if report["rate"] else ")"
    rates.set_title(f"{title}; raw relay {relay:g}/s; {report.get('machine', {}).get('cpu', '')}")
    for key in ("p50_ms", "p99_ms"):
        points = [(row["second"], row[key]) for row in rows if row[key] is not None]
        latency.plot([x for x, _ in points], [y for _, y in points], marker=".", label=f"received → decided {key[:3]}")
    latency.set_ylabel("milliseconds")
    latency.set_xlabel("seconds since the first submission was written")
    latency.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")
    pyplot.close(figure)
    return path
