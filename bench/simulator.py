"""Benchmark: accepted sends per second from WhatsAppClient to the Cloud API simulator, webhooks off.

Starts the simulator the way it really runs (`python -m app.whatsapp.simulator` in its own process), sends
template messages from a pool of threads sharing the client's keep-alive connections, checks the simulator's
ledger (every send accepted exactly once), and prints one final JSON line of figures.

    python bench/simulator.py [--sends 20000] [--concurrency 4]

The default of 4 threads is where a Python client peaks on a 2-core machine that also runs the simulator: more
threads only add GIL hand-offs (16 still manages over 2,000/s here). Production's larger pool exists to cover
Meta's network latency, which a local simulator does not have.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
TOKEN, PHONE_NUMBER_ID, WABA_ID = "bench-token", "100000000000001", "200000000000001"


def main() -> int:
    args = _arguments()
    sys.path.insert(0, str(ROOT))  # so `python bench/simulator.py` finds the app package from any directory
    process, base_url = _start_simulator()
    try:
        figures = _run(base_url, args.sends, args.concurrency)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    print(json.dumps(figures))
    return 0 if figures["errors"] == 0 else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=4, help="threads, and keep-alive connections in the pool")
    return parser.parse_args()


def _start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WHATSAPP_ACCESS_TOKEN": TOKEN,
           "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID, "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA_ID}
    command = [sys.executable, "-m", "app.whatsapp.simulator", "--port", str(port), "--no-webhooks"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base_url}/_sim/health", timeout=1).ok:
                return process, base_url
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the simulator did not start")


def _run(base_url: str, sends: int, concurrency: int) -> dict[str, object]:
    from app.whatsapp.client import WhatsAppClient, body_parameters
    from app.whatsapp.settings import WhatsAppSettings

    settings = WhatsAppSettings(base_url=base_url, api_version="v23.0",
                                access_token=TOKEN, phone_number_id=PHONE_NUMBER_ID,
                                business_account_id=WABA_ID, concurrency=concurrency)
    client = WhatsAppClient(settings)

    def send_share(worker: int, offset: int, total: int) -> int:
        """One pool thread's share of the sends; returns how many failed."""
        failures = 0
        for i in range(offset + worker, offset + total, concurrency):
            result = client.send_template(f"91{7000000000 + i}", "order_update", "en_US",
                                          [body_parameters(["Asha", f"#{i}"])],
                                          biz_opaque_callback_data=f"bench:{i}")
            failures += not result.ok
        return failures

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send_share, range(concurrency), [sends] * concurrency, [1000] * concurrency))  # warm up
        requests.post(f"{base_url}/_sim/reset", json={"keep_config": True}, timeout=5)
        started, cpu_started = time.perf_counter(), time.process_time()
        errors = sum(pool.map(send_share, range(concurrency), [0] * concurrency, [sends] * concurrency))
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    client.close()
    ledger = requests.get(f"{base_url}/_sim/ledger", timeout=5).json()
    errors += abs(ledger["accepted"] - (sends - errors)) + ledger["duplicates"]
    return {"sends": sends, "seconds": round(seconds, 3), "sends_per_second": round(sends / seconds),
            "concurrency": concurrency, "errors": errors, "ledger_accepted": ledger["accepted"],
            "ledger_duplicates": ledger["duplicates"], "client_cpu_ms_per_send": round(cpu_seconds / sends * 1000, 3)}


if __name__ == "__main__":
    sys.exit(main())
