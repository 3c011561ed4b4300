"""CPU and wall time per create, one request at a time, for three HTTP clients.

    python benchmarks/per_request.py                  # 60 creates each, emulator at 50 ms
    python benchmarks/per_request.py --latency-ms 0   # the clients' cost alone

Against `trunksync emulator` on loopback, sequentially: trunksync's own
`PlatformClient.create_trunk` (httpx transport, deadline watchdog, strict
parsing), a bare `httpx.HTTPTransport` request, and the standard library's
`http.client`, interleaved round by round. CPU is this process's (the
emulator runs in its own); the table shows medians of the rounds. This is
where the per-request CPU figures of docs/performance.md come from.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import API_KEY, emulator

from trunksync.client import PlatformClient

CREATE = "/sip/create-outbound-trunk"
Send = Callable[[dict[str, object]], None]


def body(index: int) -> dict[str, object]:
    return {
        "trunk_name": f"Per request {index:06d} {time.time_ns()}",
        "trunk_type": "exotel",
        "trunk_config": {"exotel_number": f"+9180{index % 10**8:08d}"},
    }


def trunksync_client(url: str) -> Send:
    client = PlatformClient(url, API_KEY)

    def send(payload: dict[str, object]) -> None:
        client.create_trunk(payload)

    return send


def httpx_transport(url: str) -> Send:
    transport = httpx.HTTPTransport()
    target = httpx.URL(url + CREATE)
    headers = httpx.Headers(
        {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    )

    def send(payload: dict[str, object]) -> None:
        request = httpx.Request("POST", target, headers=headers, content=json.dumps(payload))
        response = transport.handle_request(request)
        response.read()
        response.close()

    return send


def stdlib_client(url: str) -> Send:
    parts = urlsplit(url)
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    holder: list[http.client.HTTPConnection] = []

    def send(payload: dict[str, object]) -> None:
        if not holder:
            holder.append(http.client.HTTPConnection(parts.hostname or "", parts.port))
        connection = holder[0]
        try:
            connection.request("POST", CREATE, body=json.dumps(payload), headers=headers)
            connection.getresponse().read()
        except (ConnectionError, http.client.HTTPException):
            holder.clear()  # the server closed an idle keep-alive connection: once more
            send(payload)

    return send


def measure(send: Send, count: int, start: int) -> tuple[float, float]:
    """Median CPU and wall milliseconds per create over `count` creates."""
    cpu: list[float] = []
    wall: list[float] = []
    for index in range(start, start + count):
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        send(body(index))
        cpu.append(time.process_time() - cpu_before)
        wall.append(time.perf_counter() - wall_before)
    return statistics.median(cpu) * 1000, statistics.median(wall) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--count", type=int, default=60, help="creates per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, emulator(options.latency_ms, Path(folder)) as url:
        clients = {
            "trunksync PlatformClient": trunksync_client(url),
            "httpx.HTTPTransport alone": httpx_transport(url),
            "http.client (stdlib)": stdlib_client(url),
        }
        for send in clients.values():
            send(body(0))  # connect and warm up outside the measure
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        start = 1
        for _ in range(options.rounds):
            for name, send in clients.items():
                results[name].append(measure(send, options.count, start))
                start += options.count
    print(f"| client ({options.latency_ms} ms latency) | CPU per create | wall per create |")
    print("|---|---|---|")
    for name, rounds in results.items():
        cpu = statistics.median(r[0] for r in rounds)
        wall = statistics.median(r[1] for r in rounds)
        print(f"| {name} | {cpu:.2f} ms | {wall:.2f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
