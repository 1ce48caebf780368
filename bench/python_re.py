#!/usr/bin/env python3
"""Baseline for bench/peers.sh: parse an nginx combined access log with one compiled regex.

Reads FILE line by line, matches each line against the combined format (optionally followed
by nginx's request time), counts requests by status and prints a JSON summary on stdout:
{"lines": N, "matched": M, "unmatched": U, "by_status": {"200": ...}}.
Standard library only; run it with the system python3.
"""

import json
import re
import sys

COMBINED = re.compile(
    rb"(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    rb'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    rb'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)"'
    rb"(?: (?P<request_time>[\d.]+))?"
)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python_re.py FILE", file=sys.stderr)
        return 2
    lines = 0
    unmatched = 0
    by_status: dict[bytes, int] = {}
    match = COMBINED.match
    with open(sys.argv[1], "rb") as f:
        for line in f:
            lines += 1
            m = match(line)
            if m is None:
                unmatched += 1
                continue
            status = m.group("status")
            by_status[status] = by_status.get(status, 0) + 1
    result = {
        "lines": lines,
        "matched": lines - unmatched,
        "unmatched": unmatched,
        "by_status": {k.decode(): v for k, v in sorted(by_status.items())},
    }
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
