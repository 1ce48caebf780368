"""Detection quality regression: generate three days with injected incidents, run `process
--detect` through the CLI, score the incidents against the ground truth with
bench/detect_score.py, and fail if the figures fall below what the detectors reach today.

The generator and detect are deterministic, so these figures are exact for a given code
version; the floors sit just under them. Measured when set (3 days, 300k lines, seed 42):
15 of 15 injected incidents found, F1 1.000, no false incident (before error bursts had a
floor of error lines and latency incidents needed 100 requests: F1 0.905, 3.0 false a day).
Template grouping accuracy against the generator's labels: 0.985 (0.83 before values at one
place in otherwise identical templates were merged, `MinerConfig::min_word_values`).
"""

import sys
from pathlib import Path

from conftest import run
from test_detect_score import ds

MIN_FOUND = 15
MIN_F1 = 0.95
MAX_FALSE_PER_DAY = 1.0
MIN_GROUPING_ACCURACY = 0.98


def test_detect_finds_the_injected_incidents(tmp_path: Path):
    run(
        "generate",
        *("--out", str(tmp_path), "--lines", "300000", "--duration", "3d", "--seed", "42"),
        "--template-truth",
    )
    data = tmp_path / "loglens-data"
    run("process", "--config", str(tmp_path / "loglens.toml"), "--data-dir", str(data), "--detect")
    truth = ds.load_truth(tmp_path / "ground_truth.json")
    detected = ds.load_incidents(data)
    days = ds.simulated_days(tmp_path, data, truth)
    report = ds.score(truth, detected, days=days)
    print(ds.render(report), file=sys.stderr)
    overall = report["overall"]
    assert days == 3.0
    assert overall["truth"] == 15
    assert overall["found"] >= MIN_FOUND, report["missed"]
    assert overall["f1"] >= MIN_F1
    assert report["false_per_day"] <= MAX_FALSE_PER_DAY
    # Every kind is found at least once: no detector has gone quiet.
    for kind in ds.KINDS:
        assert report["kinds"][kind]["found"] >= 1, kind
    # One template per log statement: the generator labels every line with its template.
    templates = ds.template_score.score_dirs(tmp_path, data)
    print(ds.template_score.render(templates), file=sys.stderr)
    assert templates.lines > 290_000
    assert templates.accuracy >= MIN_GROUPING_ACCURACY, templates.split[:5]
    assert templates.mined_templates < 1.6 * templates.true_templates
