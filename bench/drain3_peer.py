"""Drain3 peer of loglens's template miner: mining throughput on one file of messages.

Reads MESSAGES (one message a line, as `loglens-mine --messages-out` writes them, so both
miners see the same text), then mines every message with a fresh `drain3.TemplateMiner` in its
default configuration (`TemplateMinerConfig()`: no masking instructions, no persistence), RUNS
times, and prints the fastest run as one JSON object: lines, seconds, lines/s, clusters.
Reading the file is outside the timing, as parsing is for loglens-mine.

Usage: python bench/drain3_peer.py MESSAGES [--runs N]   (needs `pip install drain3`)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import metadata


def mine(messages: list[str]) -> tuple[float, int]:
    """Mines every message in a fresh Drain3 miner; returns seconds and cluster count."""
    # drain3 is optional (a benchmark peer): imported here so a missing install is reported.
    from drain3 import TemplateMiner  # noqa: PLC0415
    from drain3.template_miner_config import TemplateMinerConfig  # noqa: PLC0415

    miner = TemplateMiner(config=TemplateMinerConfig())
    add = miner.add_log_message
    start = time.perf_counter()
    for message in messages:
        add(message)
    seconds = time.perf_counter() - start
    return seconds, len(miner.drain.clusters)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("messages", help="file of messages, one a line")
    parser.add_argument("--runs", type=int, default=1, help="runs; the fastest is reported")
    args = parser.parse_args(argv)
    try:
        version = metadata.version("drain3")
    except metadata.PackageNotFoundError:
        print("drain3_peer.py: drain3 is not installed (pip install drain3)", file=sys.stderr)
        return 3
    with open(args.messages, encoding="utf-8", errors="replace") as f:
        messages = [line.rstrip("\n") for line in f]
    best, clusters = min(mine(messages) for _ in range(max(args.runs, 1)))
    report = {
        "tool": "drain3",
        "version": version,
        "lines": len(messages),
        "seconds": best,
        "lines_per_sec": len(messages) / best if best > 0 else 0.0,
        "clusters": clusters,
        "runs": args.runs,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
