"""Benchmark of the intake API: requests per second and latency percentiles on this machine.

    python -m services.intake.bench [--seconds 10] [--concurrency 16] [--kafka HOST:PORT | --local-kafka]

The server runs in its own process (uvicorn, one worker) so the load generator does not share its
CPU time; without `--kafka` records go nowhere, which measures the edge itself (parsing, validation,
sealing, rendering the answer); with it they go to a real broker with acks=all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from schemas import ReceivedSubmission

SAMPLE: dict[str, Any] = {
    "source": {"name": "Bench Mark", "role": "Teacher", "organisation": "Bench School",
               "organisation_type": "education", "email": "bench@example.org", "phone": "01632 960 001"},
    "lawful_basis": "safeguarding",
    "urgency": {"immediate_risk": False, "crime_in_progress": False},
    "categories": ["criminal_exploitation"],
    "subjects": [{"role": "at_risk", "approx_age": 14}],
    "locations": [{"description": "Outside the station", "postcode": "SW1A 1AA"}],
    "information": "A pupil is collected after school by older men in a car most evenings this term.",
    "how_known": "witnessed_directly",
}


class NullPublisher:
    """Takes every record and keeps nothing: the benchmark of the edge alone."""

    async def start(self) -> None:
        return None

    async def publish(self, record: ReceivedSubmission) -> None:
        return None

    async def stop(self) -> None:
        return None


def _serve(port: int, data_dir: str, kafka: str | None) -> None:
    import uvicorn

    from services.common.envelope import PrivateKeyring
    from services.common.logging import configure_logging
    from services.common.settings import IntakeSettings
    from services.intake.api import create_api
    from services.intake.server import edge_config

    settings = IntakeSettings(data_dir=Path(data_dir), kafka_bootstrap=kafka, topic_prefix="bench.",
                              rate_limit_per_minute=10_000_000, api_keys_file=Path(data_dir) / "partners.json")
    # Log as `cpi api` does (JSON, info), so its cost is counted, but into /dev/null, not the report.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    configure_logging("info", "json")
    publisher = None if kafka else NullPublisher()
    app = create_api(settings, transport_key=PrivateKeyring.generate("transport").recipient(), publisher=publisher)
    # Served as `cpi api` serves it: the read deadlines and the concurrency cap are part of the cost.
    uvicorn.Server(edge_config(settings.model_copy(update={"api_port": port}), app, log_level="error")).run()


async def _load(url: str, seconds: float, concurrency: int, key: str) -> tuple[list[float], dict[int, int]]:
    import httpx

    body = json.dumps(SAMPLE).encode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.post("/api/v1/submissions", content=body,
                                             headers={"content-type": "application/json",
                                                      "authorization": f"Bearer {key}"})
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses


def _wait_ready(url: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API under test did not become ready")


def run(seconds: float, concurrency: int, kafka: str | None) -> dict[str, Any]:
    """Serve the API in a child process, load it for `seconds`, and return the figures."""
    from services.common.kafka.broker import free_port

    if kafka:
        from schemas.topics import RECEIVED
        from services.common.kafka.admin import apply_topics
        from services.common.settings import PlatformSettings

        apply_topics(PlatformSettings(kafka_bootstrap=kafka, topic_prefix="bench."), (RECEIVED,))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    from services.intake.partners import add_partner

    with tempfile.TemporaryDirectory() as data_dir:
        key = add_partner(Path(data_dir) / "partners.json", "bench")
        server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, data_dir, kafka),
                                                              daemon=True)
        server.start()
        try:
            _wait_ready(url)
            asyncio.run(_load(url, 1.0, concurrency, key))  # warm up connections and code paths
            started = time.perf_counter()
            latencies, statuses = asyncio.run(_load(url, seconds, concurrency, key))
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.join(10)
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "requests_per_second": round(len(ordered) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "statuses": statuses,
        "concurrency": concurrency,
        "seconds": seconds,
        "publisher": "kafka (acks=all)" if kafka else "none (edge only)",
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }


def main(argv: list[str] | None = None) -> int:
    """Print the benchmark's figures as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kafka", default=os.environ.get("CPI_KAFKA_BOOTSTRAP"),
                        help="a broker to produce to; default: no broker, the edge alone")
    parser.add_argument("--local-kafka", action="store_true",
                        help="start a throwaway local broker (official jars) and produce to it")
    args = parser.parse_args(argv)
    if not args.local_kafka:
        print(json.dumps(run(args.seconds, args.concurrency, args.kafka), indent=2))
        return 0
    from services.common.kafka.broker import LocalBroker, free_port

    with tempfile.TemporaryDirectory() as broker_dir:
        broker = LocalBroker(Path(broker_dir), port=free_port(), controller_port=free_port())
        broker.start()
        try:
            print(json.dumps(run(args.seconds, args.concurrency, broker.bootstrap), indent=2))
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
