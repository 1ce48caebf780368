"""Scores loglens incidents against the generator's ground truth (issue #6, measured quality).

`loglens generate --out DIR` writes `DIR/ground_truth.json` (the injected incidents);
`loglens process --detect` / `loglens detect` writes `DATA/incidents/*.parquet`
(docs/datasets.md). This script says how many injected incidents loglens found, how many of its
incidents are explained by one, and how late it was. Usage:

    bench/detect-score --gen DIR [--data DATA] [--grace 300] [--min-severity warning]
                       [--days N] [--json]

Scoring rules:

- Only detected incidents with severity >= --min-severity (info < warning < critical) count.
- What a detected incident can explain follows from its detector, metric and direction
  (`explains`):
    - error_rate / errors with observed > expected  -> error_burst, new_error
      (new-error lines are ERROR lines, so they raise the error rate too);
    - latency_* with observed > expected            -> latency_spike;
    - volume / bytes with observed < expected       -> traffic_drop, host_silent;
    - volume / bytes with observed > expected       -> error_burst, new_error
      (their error lines come on top of the traffic: a quiet service's volume rises);
    - silence detector                              -> host_silent, traffic_drop;
    - new_template detector, severity warning+      -> new_error;
    - template_count from another detector          -> new_error.
  Anything else (a falling error rate or latency, an info new template) explains nothing
  and is counted under the kind `other`.
- Time: the incident's [start, end) overlaps the ground-truth [start, end + grace); grace
  (default 300 s, a few buckets) covers detectors that fire on the bucket after the change
  (silence) or on the recovery.
- Labels: a ground-truth incident with a host is explained by an incident on that host (any
  service: a host's syslog programs are other services) or by a host-less incident of its
  service (the service rollup); one without a host by any incident of its service (rollup or
  one of its hosts). Incidents on the `total` series (no service, no host) also match: every
  injected change shows in the total, so an alarm there is not a false one.
- A detected incident matches when a ground-truth incident fits all three. It is attributed to
  the kind of the ground-truth incident it overlaps most; an incident that matches none is a
  false positive, attributed to the first kind it could explain (or `other`). Several
  incidents matching one ground-truth incident (several detectors, series or metrics) all
  count as matched; the `dup` column counts those beyond the first.
- Per kind: precision = matched detected / detected of that kind; recall = ground-truth
  incidents with at least one match / ground-truth incidents; F1 = 2PR / (P + R); delay =
  median over found ground-truth incidents of (earliest matching incident start - ground-truth
  start) in seconds, negative when the first bucket starts before the injection. The overall
  row pools every kind (micro average). False incidents per simulated day = unmatched / days,
  days from `manifest.json` (the generated span), else the records' span, else the ground
  truth's span (or --days).
- Templates: when GEN was generated with `--template-truth`, the report adds the grouping
  accuracy of the mined templates against the generator's (bench/template_score.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import template_score

KINDS = ("error_burst", "latency_spike", "traffic_drop", "new_error", "host_silent")
OTHER = "other"
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
US_PER_SEC = 1_000_000
SECS_PER_DAY = 86_400
# Issue #6 goals, printed beside the figures.
GOAL_F1 = 0.9
GOAL_FALSE_PER_DAY = 1.0


@dataclass(frozen=True)
class Truth:
    """One injected incident from ground_truth.json; times in epoch microseconds."""

    kind: str
    start: int
    end: int
    service: str
    host: str | None
    description: str = ""


@dataclass(frozen=True)
class Detected:
    """The columns of one incidents/ row that scoring uses; times in epoch microseconds."""

    incident_id: str
    start: int
    end: int
    detector: str
    metric: str
    series: str
    service: str | None
    host: str | None
    severity: str
    observed: float | None
    expected: float | None


@dataclass
class KindScore:
    """Counts and rates of one kind (or the overall row)."""

    truth: int = 0
    found: int = 0
    detected: int = 0
    matched: int = 0
    delays: list[float] = field(default_factory=list)

    def precision(self) -> float | None:
        return self.matched / self.detected if self.detected else None

    def recall(self) -> float | None:
        return self.found / self.truth if self.truth else None

    def f1(self) -> float | None:
        p, r = self.precision(), self.recall()
        if p is None or r is None:
            return 0.0 if self.truth and not self.detected else None
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    def median_delay(self) -> float | None:
        return statistics.median(self.delays) if self.delays else None

    def as_dict(self) -> dict:
        return {
            "truth": self.truth,
            "found": self.found,
            "detected": self.detected,
            "matched": self.matched,
            "duplicates": self.matched - self.found if self.matched > self.found else 0,
            "false": self.detected - self.matched,
            "precision": self.precision(),
            "recall": self.recall(),
            "f1": self.f1(),
            "median_delay_secs": self.median_delay(),
        }


def parse_time(text: str) -> int:
    """RFC 3339 (with `Z` or an offset) to epoch microseconds."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {text}")
    return round(moment.timestamp() * US_PER_SEC)


def format_time(micros: int) -> str:
    return datetime.fromtimestamp(micros / US_PER_SEC, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def truth_from_json(items: list[dict]) -> list[Truth]:
    return [
        Truth(
            kind=item["kind"],
            start=parse_time(item["start"]),
            end=parse_time(item["end"]),
            service=item["service"],
            host=item.get("host"),
            description=item.get("description", ""),
        )
        for item in items
    ]


def load_truth(path: Path) -> list[Truth]:
    return truth_from_json(json.loads(path.read_text(encoding="utf-8")))


def severity_ok(severity: str, min_severity: str) -> bool:
    return SEVERITY_RANK.get(severity, -1) >= SEVERITY_RANK[min_severity]


def _above(incident: Detected) -> bool:
    observed, expected = incident.observed, incident.expected
    return observed is not None and expected is not None and observed > expected


def _below(incident: Detected) -> bool:
    observed, expected = incident.observed, incident.expected
    return observed is not None and expected is not None and observed < expected


def explains(incident: Detected) -> tuple[str, ...]:
    """The ground-truth kinds this incident can be evidence of (see the module rules)."""
    detector, metric = incident.detector, incident.metric
    # The first rule whose condition holds decides; the detector rules come before the metric.
    rules = (
        (detector == "silence", ("host_silent", "traffic_drop")),
        (
            detector == "new_template",
            ("new_error",) if severity_ok(incident.severity, "warning") else (),
        ),
        (
            metric in ("error_rate", "errors"),
            ("error_burst", "new_error") if _above(incident) else (),
        ),
        (metric.startswith("latency_"), ("latency_spike",) if _above(incident) else ()),
        (
            metric in ("volume", "bytes"),
            ("traffic_drop", "host_silent")
            if _below(incident)
            else ("error_burst", "new_error")
            if _above(incident)
            else (),
        ),
        (metric == "template_count", ("new_error",)),
    )
    return next((kinds for hit, kinds in rules if hit), ())


def labels_agree(incident: Detected, truth: Truth) -> bool:
    """Same service (or host), or the `total` series (see the module rules)."""
    if incident.service is None and incident.host is None:
        return True
    if truth.host is not None:
        if incident.host == truth.host:
            return True
        return incident.host is None and incident.service == truth.service
    return incident.service == truth.service


def overlap_us(incident: Detected, truth: Truth, grace_us: int) -> int:
    """Microseconds of [start, end) shared with [truth.start, truth.end + grace); <= 0: none."""
    return min(incident.end, truth.end + grace_us) - max(incident.start, truth.start)


def candidates(incident: Detected, truth: list[Truth], grace_us: int) -> list[int]:
    """Indexes of the ground-truth incidents this incident matches, most overlap first."""
    kinds = explains(incident)
    scored = []
    for index, item in enumerate(truth):
        if item.kind not in kinds or not labels_agree(incident, item):
            continue
        shared = overlap_us(incident, item, grace_us)
        if shared > 0:
            scored.append((-shared, item.start, index))
    return [index for _, _, index in sorted(scored)]


def score(
    truth: list[Truth],
    detected: list[Detected],
    grace_secs: float = 300,
    min_severity: str = "warning",
    days: float | None = None,
) -> dict:
    """Matches, then the per-kind and overall figures as a JSON-ready dict."""
    grace_us = round(grace_secs * US_PER_SEC)
    kept = [d for d in detected if severity_ok(d.severity, min_severity)]
    per_kind = {kind: KindScore() for kind in (*KINDS, OTHER)}
    overall = KindScore(truth=len(truth))
    first_match: dict[int, int] = {}
    for item in truth:
        per_kind.setdefault(item.kind, KindScore()).truth += 1
    false: list[dict] = []
    for incident in kept:
        matches = candidates(incident, truth, grace_us)
        if matches:
            kind = truth[matches[0]].kind
            per_kind[kind].matched += 1
            overall.matched += 1
            for index in matches:
                earliest = first_match.get(index)
                first_match[index] = (
                    incident.start if earliest is None else min(earliest, incident.start)
                )
        else:
            kind = next(iter(explains(incident)), OTHER)
            false.append(
                {
                    **asdict(incident),
                    "start": format_time(incident.start),
                    "end": format_time(incident.end),
                    "kind": kind,
                }
            )
        per_kind[kind].detected += 1
        overall.detected += 1
    for index, start in first_match.items():
        item = truth[index]
        delay = (start - item.start) / US_PER_SEC
        for row in (per_kind[item.kind], overall):
            row.found += 1
            row.delays.append(delay)
    false_count = overall.detected - overall.matched
    kinds = {
        kind: row.as_dict()
        for kind, row in per_kind.items()
        if row.truth or row.detected or kind in KINDS
    }
    missed = [
        {**asdict(item), "start": format_time(item.start), "end": format_time(item.end)}
        for index, item in enumerate(truth)
        if index not in first_match
    ]
    return {
        "grace_secs": grace_secs,
        "min_severity": min_severity,
        "incidents_read": len(detected),
        "incidents_scored": len(kept),
        "simulated_days": days,
        "kinds": kinds,
        "overall": overall.as_dict(),
        "false_per_day": false_count / days if days else None,
        "missed": missed,
        "false": false,
    }


def goals(report: dict) -> list[tuple[str, bool, str]]:
    """Issue #6 goals: (goal, met, measured)."""
    f1 = report["overall"]["f1"] or 0.0
    missed = len(report["missed"])
    per_day = report["false_per_day"]
    return [
        (f"F1 >= {GOAL_F1} overall", f1 >= GOAL_F1, f"{f1:.3f}"),
        ("every injected incident found", missed == 0, f"{missed} missed"),
        (
            f"<= {GOAL_FALSE_PER_DAY:g} false incident per simulated day",
            per_day is not None and per_day <= GOAL_FALSE_PER_DAY,
            "unknown span" if per_day is None else f"{per_day:.1f}",
        ),
    ]


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(report: dict) -> str:
    """The human-readable table."""
    head = (
        f"{'kind':<14} {'truth':>5} {'found':>5} {'detected':>8} {'matched':>7} {'dup':>5} "
        f"{'false':>6} {'precision':>9} {'recall':>6} {'F1':>6} {'delay s':>8}"
    )
    lines = [
        f"incidents scored: {report['incidents_scored']} of {report['incidents_read']} "
        f"(severity >= {report['min_severity']}), grace {report['grace_secs']:g} s",
        head,
        "-" * len(head),
    ]
    rows = [*report["kinds"].items(), ("overall", report["overall"])]
    for kind, row in rows:
        lines.append(
            f"{kind:<14} {row['truth']:>5} {row['found']:>5} {row['detected']:>8} "
            f"{row['matched']:>7} {row['duplicates']:>5} {row['false']:>6} "
            f"{_cell(row['precision']):>9} {_cell(row['recall']):>6} {_cell(row['f1']):>6} "
            f"{_cell(row['median_delay_secs'], 0):>8}"
        )
    days = report["simulated_days"]
    per_day = report["false_per_day"]
    lines.append(
        f"false incidents: {report['overall']['false']} over {_cell(days, 2)} simulated days "
        f"= {_cell(per_day, 1)} per day"
    )
    lines.append(f"missed ground-truth incidents: {len(report['missed'])}")
    for item in report["missed"]:
        host = f" host={item['host']}" if item["host"] else ""
        lines.append(
            f"  {item['kind']:<14} {item['start']} .. {item['end']}  "
            f"service={item['service']}{host}  {item['description']}"
        )
    lines.append(f"false incidents (no injected incident explains them): {len(report['false'])}")
    for item in report["false"]:
        lines.append(
            f"  {item['kind']:<14} {item['start']} .. {item['end']}  {item['detector']} "
            f"{item['metric']} {item['series'] or 'total'}  observed {_cell(item['observed'])} "
            f"expected {_cell(item['expected'])}"
        )
    for goal, met, measured in goals(report):
        lines.append(f"goal: {goal}: {'met' if met else 'NOT met'} ({measured})")
    return "\n".join(lines)


def incident_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "incidents").rglob("*.parquet"))


def load_incidents(data_dir: Path) -> list[Detected]:
    """Every row of DATA/incidents (docs/datasets.md); [] when the directory holds no file."""
    import duckdb  # noqa: PLC0415 (the unit tests of the matching do not need it)

    if not incident_files(data_dir):
        return []
    glob = str(data_dir / "incidents" / "**" / "*.parquet").replace("'", "''")
    # Epoch microseconds: fetching TIMESTAMPTZ as datetime needs pytz, which is not installed.
    rows = (
        duckdb.connect()
        .execute(
            f"""SELECT incident_id, epoch_us(start), epoch_us("end"), detector, metric, series,
                       service, host, severity, observed, expected
                FROM read_parquet('{glob}', union_by_name=true)
                ORDER BY start, incident_id"""
        )
        .fetchall()
    )
    return [Detected(*row) for row in rows]


def simulated_days(gen_dir: Path, data_dir: Path, truth: list[Truth]) -> float | None:
    """Days spanned by the generated set: manifest.json, else the records, else the ground truth."""
    manifest = gen_dir / "manifest.json"
    if manifest.exists():
        options = json.loads(manifest.read_text(encoding="utf-8")).get("options", {})
        if options.get("duration_secs"):
            return options["duration_secs"] / SECS_PER_DAY
    if any((data_dir / "records").rglob("*.parquet")):
        import duckdb  # noqa: PLC0415

        glob = str(data_dir / "records" / "**" / "*.parquet").replace("'", "''")
        low, high = (
            duckdb.connect()
            .execute(f"SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM read_parquet('{glob}')")
            .fetchone()
        )
        if low is not None and high > low:
            return (high - low) / US_PER_SEC / SECS_PER_DAY
    if truth:
        span = max(t.end for t in truth) - min(t.start for t in truth)
        return span / US_PER_SEC / SECS_PER_DAY if span > 0 else None
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="detect-score",
        description="Score loglens incidents against the generator's ground truth.",
    )
    parser.add_argument("--gen", required=True, type=Path, help="generated dir (ground_truth.json)")
    parser.add_argument("--data", type=Path, help="data directory (default GEN/data)")
    parser.add_argument("--grace", type=float, default=300, help="seconds after GT end (300)")
    parser.add_argument("--min-severity", choices=list(SEVERITY_RANK), default="warning")
    parser.add_argument("--days", type=float, help="simulated days (default: from manifest.json)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = args.data or args.gen / "data"
    truth_path = args.gen / "ground_truth.json"
    if not truth_path.exists():
        print(
            f"detect-score: no {truth_path}: run `loglens generate --out {args.gen}`",
            file=sys.stderr,
        )
        return 2
    if not (data_dir / "incidents").is_dir():
        print(
            f"detect-score: no incidents dataset in {data_dir}: run "
            f"`loglens detect --data-dir {data_dir}` (or `loglens process ... --detect`) first",
            file=sys.stderr,
        )
        return 2
    truth = load_truth(truth_path)
    days = args.days or simulated_days(args.gen, data_dir, truth)
    report = score(truth, load_incidents(data_dir), args.grace, args.min_severity, days)
    templates = (
        template_score.score_dirs(args.gen, data_dir)
        if template_score.has_truth(args.gen)
        else None
    )
    if args.json:
        report["templates"] = templates.as_dict() if templates else None
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
        if templates:
            print(template_score.render(templates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
