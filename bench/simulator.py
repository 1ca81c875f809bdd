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
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # finds the app package from any directory

from bench import _common as common  # noqa: E402


def main() -> int:
    args = _arguments()
    process, base_url = common.start_simulator(["--no-webhooks"], {})
    try:
        figures = _run(base_url, args.sends, args.concurrency)
    finally:
        common.stop([process])
    print(json.dumps(figures))
    return 0 if figures["errors"] == 0 else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=4, help="threads, and keep-alive connections in the pool")
    return parser.parse_args()


def _run(base_url: str, sends: int, concurrency: int) -> dict[str, object]:
    from app.whatsapp.client import WhatsAppClient, body_parameters
    from app.whatsapp.settings import WhatsAppSettings

    settings = WhatsAppSettings(base_url=base_url, api_version="v23.0",
                                access_token=common.TOKEN, phone_number_id=common.PHONE_NUMBER_ID,
                                business_account_id=common.WABA_ID, concurrency=concurrency)
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
    ledger = common.ledger(base_url)
    errors += abs(ledger["accepted"] - (sends - errors)) + ledger["duplicates"]
    return {"sends": sends, "seconds": round(seconds, 3), "sends_per_second": round(sends / seconds),
            "concurrency": concurrency, "errors": errors, "ledger_accepted": ledger["accepted"],
            "ledger_duplicates": ledger["duplicates"], "client_cpu_ms_per_send": round(cpu_seconds / sends * 1000, 3)}


if __name__ == "__main__":
    sys.exit(main())
