"""Benchmark: does the shared rate limiter hold a campaign to its rate? Measured where it counts, at the simulator.

A 10,000-message campaign runs through several real RQ workers (`python worker.py`) with SEND_RATE_PER_SECOND=80
against the Cloud API simulator (its own process, webhooks off, no throughput cap of its own, so nothing but our
limiter paces the sends). The simulator notes when each accepted send arrived (`/_sim/ledger?times=1`); from those
times the script works out the overall rate, its error against the configured rate, and the largest number of sends
in any sliding one-second window, which the limiter's GCRA allows to be at most the rate plus its burst allowance
(app/services/sending/rate_limit.py) at the moments the sends leave; arrivals can bunch by a few tens of milliseconds of
scheduling jitter more, which is reported apart (and over ten-second windows, where it hardly matters). It also
checks duplicates (the ledger) and lost messages, and prints one final JSON line with a verdict: the rate within
±5%, the window within the ceiling plus the jitter allowance, no duplicates, nothing lost.

`--simple-workers` runs the jobs inside the worker processes (RQ's SimpleWorker) instead of a forked work horse
per batch, to compare.

    python bench/limiter_accuracy.py [--messages 10000] [--workers 4] [--rate 80] [--latency-ms 50]
        [--db postgresql|sqlite] [--postgresql postgresql://postgres@127.0.0.1:5432/bench_h4]
        [--redis redis://127.0.0.1:6379/10]

It drops and recreates the public schema of --postgresql (or deletes the --sqlite file) and empties --redis, which
must be an index holding nothing or only what an earlier run of the dispatch benchmarks left (it is marked as ours).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common as common  # noqa: E402

LOG_PATH = Path(tempfile.gettempdir()) / "bench-limiter-accuracy-workers.log"
TOLERANCE_PERCENT = 5.0
# Sends leave at their slots, but reach the simulator after a thread switch, the GIL and a socket write, which on a
# busy machine can take a few tens of milliseconds: that many sends' worth of arrival jitter is reported apart.
ARRIVAL_JITTER_SECONDS = 0.025


def main() -> int:
    args = _arguments()
    database = args.postgresql if args.db == "postgresql" else f"sqlite:///{args.sqlite}"
    os.environ.update({**common.whatsapp_env(), "REDIS_URL": args.redis, "SEND_RATE_PER_SECOND": str(args.rate),
                       "DATABASE_URL": database})
    simulator, sim_url = common.start_simulator(["--no-webhooks"], {})
    os.environ["WHATSAPP_API_BASE_URL"] = sim_url
    try:
        app = common.prepare(args.messages, common.DISPATCH_CLAIM_KEY, args.sqlite if args.db == "sqlite" else None)
        common.configure_simulator(sim_url, args.latency_ms, cap=0)
        run = _run(app, args)
        times = sorted(common.ledger(sim_url, times="1")["times"])
        rows = common.campaign_messages(app, run["campaign_id"])
        figures = common.audit(rows, common.ledger(sim_url, detail="1"), run["campaign_id"])
        figures["throttled"] = sum(1 for row in rows if row.error_code == 130429)
    finally:
        common.stop([simulator])
    if args.times_file:
        Path(args.times_file).write_text("".join(f"{moment:.6f}\n" for moment in times))
    with app.app_context():
        burst = common.burst_allowance()
    result = _verdict(args, times, burst, figures, run)
    print(json.dumps(result), flush=True)
    return 0 if result["verdict"] == "pass" else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=80.0, help="SEND_RATE_PER_SECOND")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="simulator latency per send")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--postgresql", default="postgresql://postgres@127.0.0.1:5432/bench_h4")
    parser.add_argument("--sqlite", default=str(Path(tempfile.gettempdir()) / "bench-limiter-accuracy.sqlite3"))
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--simple-workers", action="store_true",
                        help="run jobs inside the worker process (RQ's SimpleWorker) instead of a forked work horse")
    parser.add_argument("--times-file", help="also write the arrival times here, one per line")
    return parser.parse_args()


def _run(app, args: argparse.Namespace) -> dict[str, Any]:
    workers = common.start_workers(app, args.workers, {}, LOG_PATH, args.simple_workers)
    campaign_id = common.launch_campaign(app, "Limiter accuracy")
    started = time.perf_counter()
    try:
        common.wait_until(app, lambda: common.campaign_status(app, campaign_id) in ("completed", "paused",
                                                                                    "cancelled"),
                          timeout=args.messages / args.rate * 2 + 120, log=LOG_PATH)
    finally:
        common.stop_workers(app, workers)
    return {"campaign_id": campaign_id, "seconds": round(time.perf_counter() - started, 1),
            "campaign_status": common.campaign_status(app, campaign_id)}


def max_in_window(times: list[float], seconds: float) -> int:
    """The most sends in any window [t, t + seconds) starting at a send (sorted times)."""
    return max((bisect.bisect_left(times, start + seconds, lo=index) - index for index, start in enumerate(times)),
               default=0)


def _verdict(args: argparse.Namespace, times: list[float], burst: int, figures: dict, run: dict) -> dict[str, Any]:
    measured = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    error = (measured - args.rate) / args.rate * 100
    window_max, ceiling = max_in_window(times, 1.0), int(args.rate) + burst
    # Over ten seconds a few milliseconds of network and scheduling jitter in arrival times hardly matter.
    ten_max, ten_ceiling = max_in_window(times, 10.0), int(args.rate * 10) + burst
    jitter = math.ceil(args.rate * ARRIVAL_JITTER_SECONDS)
    rate_ok, window_ok = abs(error) <= TOLERANCE_PERCENT, window_max <= ceiling + jitter
    doubled = figures["duplicates"] + figures["other_duplicates"]
    clean = not doubled and not figures["lost"] and len(times) == args.messages
    return {"messages": args.messages, "workers": args.workers, "configured_rate": args.rate, "db": args.db,
            "worker_class": "SimpleWorker" if args.simple_workers else "Worker (fork per job)",
            "received": len(times), "seconds": round(times[-1] - times[0], 2) if times else 0,
            "measured_rate": round(measured, 2), "error_percent": round(error, 2),
            "max_sends_in_1s_window": window_max, "burst_allowance": burst, "window_ceiling": ceiling,
            "max_sends_in_10s_window": ten_max, "ten_second_ceiling": ten_ceiling,
            "arrival_jitter_allowance": jitter, "rate_within_5_percent": rate_ok,
            "window_within_ceiling": window_max <= ceiling, "window_within_ceiling_plus_jitter": window_ok,
            "duplicates": figures["duplicates"], "lost": figures["lost"], "throttled": figures["throttled"],
            "campaign_status": run["campaign_status"], "load_average": common.load_average(),
            "verdict": "pass" if rate_ok and window_ok and clean else "fail"}


if __name__ == "__main__":
    sys.exit(main())
