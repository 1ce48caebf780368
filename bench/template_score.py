"""Template grouping accuracy of loglens on generated logs (issue #16).

`loglens generate --template-truth` labels every line with the template that wrote it
(`GEN/truth/<log path>.templates`, one 8-hex-digit label per line; `GEN/truth/templates.tsv`
lists the labels' texts). This module compares those labels with the templates loglens mined
(`records.template_id` resolved through `templates.canonical_id`, docs/datasets.md).

Grouping accuracy (GA) is Loghub's: a line is grouped right when the set of lines of its mined
template is exactly the set of lines of its true template; GA = such lines / lines. Lines that
did not parse, and continuation lines of multi-line records, are not records and not scored.
A true template whose lines got several mined templates is *split*; a mined template holding
several true templates is *merged*. Both are listed, largest first, so a drop can be read.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

TRUTH_DIR = "truth"
TRUTH_TEMPLATES = "templates.tsv"
GOAL_GA = 0.98


@dataclass
class Grouping:
    """The outcome of comparing true and mined templates over the scored lines."""

    lines: int
    correct: int
    true_templates: int
    mined_templates: int
    # (true template text, lines, number of mined templates), largest first
    split: list[tuple[str, int, int]] = field(default_factory=list)
    # (mined template text, lines, number of true templates), largest first
    merged: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.lines if self.lines else None

    def as_dict(self) -> dict:
        return {
            "lines": self.lines,
            "correct": self.correct,
            "grouping_accuracy": self.accuracy,
            "true_templates": self.true_templates,
            "mined_templates": self.mined_templates,
            "split": [{"template": t, "lines": n, "mined": k} for t, n, k in self.split],
            "merged": [{"template": t, "lines": n, "true": k} for t, n, k in self.merged],
        }


def grouping(
    pairs: list[tuple[str, int]], true_text: dict[str, str], mined_text: dict[int, str]
) -> Grouping:
    """GA of (true label, mined id) pairs, one per scored line."""
    lines_of: Counter[tuple[str, int]] = Counter(pairs)
    mined_of: dict[str, set[int]] = defaultdict(set)
    true_of: dict[int, set[str]] = defaultdict(set)
    true_lines: Counter[str] = Counter()
    mined_lines: Counter[int] = Counter()
    for (label, mined), n in lines_of.items():
        mined_of[label].add(mined)
        true_of[mined].add(label)
        true_lines[label] += n
        mined_lines[mined] += n
    correct = sum(
        n
        for (label, mined), n in lines_of.items()
        if len(mined_of[label]) == 1 and len(true_of[mined]) == 1
    )
    split = sorted(
        (
            (true_text.get(label, label), true_lines[label], len(ids))
            for label, ids in mined_of.items()
            if len(ids) > 1
        ),
        key=lambda row: (-row[1], row[0]),
    )
    merged = sorted(
        (
            (mined_text.get(mined, f"{mined:016x}"), mined_lines[mined], len(labels))
            for mined, labels in true_of.items()
            if len(labels) > 1
        ),
        key=lambda row: (-row[1], row[0]),
    )
    return Grouping(
        lines=len(pairs),
        correct=correct,
        true_templates=len(mined_of),
        mined_templates=len(true_of),
        split=split,
        merged=merged,
    )


def has_truth(gen_dir: Path) -> bool:
    return (gen_dir / TRUTH_DIR / TRUTH_TEMPLATES).is_file()


def load_truth_texts(gen_dir: Path) -> dict[str, str]:
    texts = {}
    for row in (gen_dir / TRUTH_DIR / TRUTH_TEMPLATES).read_text(encoding="utf-8").splitlines():
        label, _, text = row.partition("\t")
        texts[label] = text
    return texts


def log_paths(gen_dir: Path) -> list[str]:
    """The generated log files, relative to GEN (manifest.json)."""
    manifest = json.loads((gen_dir / "manifest.json").read_text(encoding="utf-8"))
    return [f["path"] for f in manifest["files"]]


def score_dirs(gen_dir: Path, data_dir: Path) -> Grouping:
    """GA of the records in DATA against the labels in GEN/truth."""
    import duckdb  # noqa: PLC0415 (the unit tests of `grouping` do not need it)

    con = duckdb.connect()
    records = str(data_dir / "records" / "**" / "*.parquet").replace("'", "''")
    templates = str(data_dir / "templates" / "templates.parquet").replace("'", "''")
    mined = dict(
        con.execute(
            f"""SELECT t.canonical_id, any_value(c.template)
                FROM read_parquet('{templates}') t
                JOIN read_parquet('{templates}') c ON c.template_id = t.canonical_id
                GROUP BY 1"""
        ).fetchall()
    )
    rows = con.execute(
        f"""SELECT r.source, r.line, coalesce(t.canonical_id, r.template_id)
            FROM read_parquet('{records}', union_by_name=true) r
            LEFT JOIN read_parquet('{templates}') t USING (template_id)"""
    ).fetchall()
    labels_of: dict[str, list[str] | None] = {}
    rels = log_paths(gen_dir)
    pairs: list[tuple[str, int]] = []
    for source, line, mined_id in rows:
        if source not in labels_of:
            rel = next((r for r in rels if source == r or source.endswith("/" + r)), None)
            path = gen_dir / TRUTH_DIR / f"{rel}.templates"
            labels_of[source] = path.read_text(encoding="ascii").split() if rel else None
        labels = labels_of[source]
        if labels is not None:
            pairs.append((labels[line - 1], mined_id))
    return grouping(pairs, load_truth_texts(gen_dir), mined)


def render(result: Grouping, top: int = 8) -> str:
    ga = result.accuracy
    lines = [
        f"templates: {result.true_templates} written, {result.mined_templates} mined over "
        f"{result.lines:,} records; grouping accuracy "
        f"{'-' if ga is None else f'{ga:.4f}'} ({result.correct:,} lines grouped right)",
    ]
    for text, n, k in result.split[:top]:
        lines.append(f"  split  {n:>9,} lines into {k:>3} mined: {text}")
    for text, n, k in result.merged[:top]:
        lines.append(f"  merged {n:>9,} lines from {k:>3} written: {text}")
    met = ga is not None and ga >= GOAL_GA
    shown = "-" if ga is None else f"{ga:.4f}"
    lines.append(f"goal: grouping accuracy >= {GOAL_GA}: {'met' if met else 'NOT met'} ({shown})")
    return "\n".join(lines)
