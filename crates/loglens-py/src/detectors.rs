//! `loglens._engine.detect_series`: the core's value detectors over one plain numeric series,
//! point by point as `detect` feeds a series its buckets, so a Python caller can score a
//! series it built itself (from `MetricPartial.series()` or anywhere else).

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_pyarrow::ToPyArrow;
use loglens_core::detect::policy::ValueEnsemble;
use loglens_core::detect::{Detector, DetectorKind, PoissonScan, RobustZScore, Seasonal, Verdict, ZScore};
use loglens_core::metrics::{Metric, UnknownMetric};
use loglens_core::Timestamp;
use pyo3::prelude::*;

use crate::{load_config, ConfigError, LoglensError};

/// The detectors `detect_series` runs, by name.
const DETECTORS: &str = "ensemble, zscore, robust_zscore, seasonal, poisson";

/// One point's judgement.
struct Point {
    score: f64,
    severity: Option<&'static str>,
    detector: Option<&'static str>,
    ready: bool,
}

impl Point {
    fn of(verdict: &Verdict, kind: DetectorKind) -> Point {
        Point {
            score: verdict.anomaly,
            severity: verdict.severity.map(|s| s.as_str()),
            detector: verdict.severity.map(|_| kind.as_str()),
            ready: verdict.ready,
        }
    }
}

/// Runs a detector of `detect` over `values`, one bucket each from `start` (seconds since the
/// epoch, UTC) `bucket_secs` apart, in order: each point is judged against the points before
/// it only (no look-ahead), as `detect` judges a bucket. The detector's settings are the
/// `[detect]` section of `config` (a loglens.toml), else the defaults; with `metric` (e.g.
/// `latency_p95`), as `detect` applies them to that metric (its `[detect.metric.<name>]`
/// overrides).
///
/// `detector` is `ensemble` (default: the vote `detect` runs on latency series: Z-score,
/// robust Z-score and seasonal baseline, a point anomalous when two of the enabled ones fire),
/// or one of `zscore`, `robust_zscore`, `seasonal`, `poisson` (the scan `detect` runs on
/// counts, given the values as counts). What `detect` adds on top is not applied: the floors
/// that make a change large enough to report, and the merging of anomalous points into
/// incidents.
///
/// Returns a pyarrow RecordBatch, one row per value: ts, value, score (in [0, 1], 0.5 at the
/// firing threshold; the ensemble's is the second-highest detector score when two must agree),
/// anomalous (bool), severity (`warning`/`critical` or null), detector (which fired: the
/// detector's name, `ensemble` when several agreed, or null) and ready (false while the
/// detector is still warming up: its first points are never anomalous).
#[pyfunction]
#[pyo3(signature = (values, *, bucket_secs=60, start=0, detector="ensemble", config=None, metric=None))]
pub fn detect_series<'py>(
    py: Python<'py>,
    values: Vec<f64>,
    bucket_secs: i64,
    start: i64,
    detector: &str,
    config: Option<PathBuf>,
    metric: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    if bucket_secs < 1 {
        return Err(ConfigError::new_err(format!(
            "bucket_secs must be at least 1, not {bucket_secs}"
        )));
    }
    let config = load_config(config)?.detect;
    // With `metric`, the settings `detect` uses for that metric: `[detect.metric.<name>]`
    // sections override the global ones.
    let config = match metric {
        None => config,
        Some(name) => {
            let metric: Metric = name
                .parse()
                .map_err(|e: UnknownMetric| ConfigError::new_err(e.to_string()))?;
            config.for_metric(metric.as_str())
        }
    };
    let single: Option<Box<dyn Detector + Send>> = match detector {
        "ensemble" => None,
        "zscore" => Some(Box::new(ZScore::new(&config.zscore))),
        "robust_zscore" => Some(Box::new(RobustZScore::new(&config.robust_zscore))),
        "seasonal" => Some(Box::new(Seasonal::new(&config.seasonal))),
        "poisson" => Some(Box::new(PoissonScan::new(&config.poisson))),
        other => {
            return Err(ConfigError::new_err(format!(
                "unknown detector {other:?} ({DETECTORS})"
            )))
        }
    };
    // Every bucket's time in microseconds must fit an i64 (the first and last bound the rest).
    let last = i64::try_from(values.len().saturating_sub(1))
        .ok()
        .and_then(|n| n.checked_mul(bucket_secs))
        .and_then(|d| start.checked_add(d));
    let fits = |secs: i64| secs.checked_mul(1_000_000).is_some();
    if !(fits(start) && last.is_some_and(fits)) {
        return Err(ConfigError::new_err(format!(
            "start={start} with {} buckets of {bucket_secs} s is out of the time range",
            values.len()
        )));
    }
    let ts: Vec<Timestamp> = (0i64..)
        .zip(&values)
        .map(|(i, _)| Timestamp::from_secs(start + i * bucket_secs))
        .collect();
    let points: Vec<Point> = py.detach(|| match single {
        Some(mut d) => (ts.iter().zip(&values))
            .map(|(&t, &v)| Point::of(&d.observe(t, v), d.kind()))
            .collect(),
        None => {
            let mut ensemble = ValueEnsemble::new(&config);
            let quorum = ensemble.quorum();
            (ts.iter().zip(&values))
                .map(|(&t, &v)| {
                    let verdicts = ensemble.observe_all(t, v);
                    let vote = ValueEnsemble::vote(quorum, &verdicts);
                    Point {
                        score: ValueEnsemble::agreement(quorum, &verdicts),
                        severity: vote.and_then(|(_, v)| v.severity).map(|s| s.as_str()),
                        detector: vote.map(|(kind, _)| kind.as_str()),
                        ready: quorum > 0 && verdicts.iter().filter(|(_, v)| v.ready).count() >= quorum,
                    }
                })
                .collect()
        }
    });
    let micros = ts.iter().map(|t| t.0);
    let columns: [(&str, ArrayRef, bool); 7] = [
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from_iter_values(micros).with_timezone("UTC")),
            false,
        ),
        ("value", Arc::new(Float64Array::from(values)), false),
        (
            "score",
            Arc::new(points.iter().map(|p| Some(p.score)).collect::<Float64Array>()),
            false,
        ),
        (
            "anomalous",
            Arc::new(
                points
                    .iter()
                    .map(|p| Some(p.severity.is_some()))
                    .collect::<BooleanArray>(),
            ),
            false,
        ),
        (
            "severity",
            Arc::new(points.iter().map(|p| p.severity).collect::<StringArray>()),
            true,
        ),
        (
            "detector",
            Arc::new(points.iter().map(|p| p.detector).collect::<StringArray>()),
            true,
        ),
        (
            "ready",
            Arc::new(points.iter().map(|p| Some(p.ready)).collect::<BooleanArray>()),
            false,
        ),
    ];
    RecordBatch::try_from_iter_with_nullable(columns)
        .map_err(|e| LoglensError::new_err(format!("detector verdicts: {e}")))?
        .to_pyarrow(py)
}
