//! Detector configuration: the `[detect]` table of `loglens.toml`, with documented defaults,
//! unknown keys rejected, and per-metric overrides.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::{parse_duration_secs, DurationError};

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectError {
    /// A duration such as `bucket` or `warmup` does not parse.
    #[error("detect.{key}: {source}")]
    Duration {
        /// The key, e.g. `bucket` or `seasonal.warmup`.
        key: String,
        /// What is wrong with the text.
        source: DurationError,
    },
    /// A numeric parameter is out of range.
    #[error("detect.{key}: {why}")]
    Range {
        /// The key, e.g. `zscore.window`.
        key: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// The `[detect]` table: bucket width, each detector's settings, and per-metric overrides.
///
/// ```toml
/// [detect]
/// bucket = "1m"
/// [detect.zscore]
/// threshold = 5.0
/// [detect.metric.error_rate.robust_zscore]
/// enabled = false
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Width of a metric bucket (default `1m`).
    pub bucket: String,
    /// How long after the latest record time a bucket waits before it is judged (default
    /// `2m`): records arriving later for a judged bucket are counted as late, not judged.
    pub grace: String,
    /// Rolling Z-score settings.
    pub zscore: ZScoreConfig,
    /// Robust (median/MAD) Z-score settings.
    pub robust_zscore: RobustConfig,
    /// Seasonal baseline settings.
    pub seasonal: SeasonalConfig,
    /// Poisson scan settings (counts: volume, errors).
    pub poisson: PoissonConfig,
    /// New-template settings.
    pub new_template: NewTemplateConfig,
    /// Silence settings.
    pub silence: SilenceConfig,
    /// What makes an unusual value worth reporting (materiality floors, incident length).
    pub floors: Floors,
    /// Overrides per metric name (`volume`, `error_rate`, ...). A detector section given here
    /// replaces the global section for that metric *whole*: its missing keys take the built-in
    /// defaults, not the global section's values.
    pub metric: BTreeMap<String, MetricOverride>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            bucket: "1m".to_owned(),
            grace: "2m".to_owned(),
            zscore: ZScoreConfig::default(),
            robust_zscore: RobustConfig::default(),
            seasonal: SeasonalConfig::default(),
            poisson: PoissonConfig::default(),
            new_template: NewTemplateConfig::default(),
            silence: SilenceConfig::default(),
            floors: Floors::default(),
            metric: BTreeMap::new(),
        }
    }
}

/// `[detect.floors]`: what makes a statistically unusual value worth a person's attention.
/// The defaults are what the detection benchmarks were measured with (README, Detection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Floors {
    /// Buckets between anomalies of one series that still make one incident.
    pub merge_gap_buckets: u32,
    /// Anomalous buckets an incident of a value or count detector needs.
    pub min_incident_buckets: u32,
    /// Fewest records a latency incident's span must hold.
    pub min_latency_records: f64,
    /// Fewest records in a bucket for its error rate or latency to be judged.
    pub min_bucket_volume: f64,
    /// Fewest records per bucket on average for a series' volume to be judged.
    pub min_mean_volume: f64,
    /// Fewest records per bucket on average for a fall of a series' volume (Poisson scan) to
    /// be judged: a host logging a line a minute that stops for an hour is an outage, while a
    /// rise on so sparse a series is any record at all.
    pub min_mean_volume_for_falls: f64,
    /// Smallest rise of an error rate (absolute, 0.05 = 5 points) that matters.
    pub min_error_rate_rise: f64,
    /// Fewest errors in a bucket (or a Poisson window) that matter.
    pub min_errors: f64,
    /// Latency must rise by this factor over the expected value to matter.
    pub min_latency_factor: f64,
    /// Volume must fall below this share of the expected value to matter.
    pub max_volume_drop_share: f64,
    /// Volume must rise above this multiple of the expected value to matter.
    pub min_volume_spike_factor: f64,
}

impl Default for Floors {
    fn default() -> Self {
        Floors {
            merge_gap_buckets: 5,
            min_incident_buckets: 2,
            min_latency_records: 100.0,
            min_bucket_volume: 10.0,
            min_mean_volume: 1.0,
            min_mean_volume_for_falls: 0.25,
            min_error_rate_rise: 0.05,
            min_errors: 3.0,
            min_latency_factor: 3.0,
            max_volume_drop_share: 0.5,
            min_volume_spike_factor: 2.0,
        }
    }
}

impl Floors {
    fn check(&self) -> Result<(), DetectError> {
        let f = self;
        for (key, value) in [
            ("min_latency_records", f.min_latency_records),
            ("min_bucket_volume", f.min_bucket_volume),
            ("min_mean_volume", f.min_mean_volume),
            ("min_mean_volume_for_falls", f.min_mean_volume_for_falls),
            ("min_error_rate_rise", f.min_error_rate_rise),
            ("min_errors", f.min_errors),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(range(&format!("floors.{key}"), "must be a number >= 0"));
            }
        }
        if !(f.min_latency_factor.is_finite() && f.min_latency_factor >= 1.0) {
            return Err(range("floors.min_latency_factor", "must be >= 1"));
        }
        if !(f.max_volume_drop_share > 0.0 && f.max_volume_drop_share < 1.0) {
            return Err(range("floors.max_volume_drop_share", "must be between 0 and 1"));
        }
        if !(f.min_volume_spike_factor.is_finite() && f.min_volume_spike_factor > 1.0) {
            return Err(range("floors.min_volume_spike_factor", "must be > 1"));
        }
        if f.min_incident_buckets == 0 {
            return Err(range("floors.min_incident_buckets", "must be at least 1"));
        }
        Ok(())
    }
}

/// Detector sections that replace the global ones for one metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricOverride {
    /// Replaces `[detect.zscore]` for this metric.
    pub zscore: Option<ZScoreConfig>,
    /// Replaces `[detect.robust_zscore]` for this metric.
    pub robust_zscore: Option<RobustConfig>,
    /// Replaces `[detect.seasonal]` for this metric.
    pub seasonal: Option<SeasonalConfig>,
    /// Replaces `[detect.poisson]` for this metric.
    pub poisson: Option<PoissonConfig>,
    /// Replaces `[detect.silence]` for this metric.
    pub silence: Option<SilenceConfig>,
}

impl DetectConfig {
    /// The bucket width in seconds.
    pub fn bucket_secs(&self) -> Result<i64, DetectError> {
        duration("bucket", &self.bucket)
    }

    /// The grace period in seconds (zero allowed: judge a bucket as soon as a later one shows).
    pub fn grace_secs(&self) -> Result<i64, DetectError> {
        parse_duration_secs(&self.grace).map_err(|source| DetectError::Duration {
            key: "grace".to_owned(),
            source,
        })
    }

    /// The configuration that applies to `metric`: the global sections with that metric's
    /// overrides in place (and no overrides left).
    pub fn for_metric(&self, metric: &str) -> DetectConfig {
        let mut out = self.clone();
        out.metric = BTreeMap::new();
        if let Some(o) = self.metric.get(metric) {
            if let Some(c) = &o.zscore {
                out.zscore = c.clone();
            }
            if let Some(c) = &o.robust_zscore {
                out.robust_zscore = c.clone();
            }
            if let Some(c) = &o.seasonal {
                out.seasonal = c.clone();
            }
            if let Some(c) = &o.poisson {
                out.poisson = c.clone();
            }
            if let Some(c) = &o.silence {
                out.silence = c.clone();
            }
        }
        out
    }

    /// Checks every value (durations parse, windows are non-empty, thresholds ordered), for
    /// the global sections and every override.
    pub fn validate(&self) -> Result<(), DetectError> {
        self.bucket_secs()?;
        self.grace_secs()?;
        self.new_template.warmup_secs()?;
        self.new_template.within_secs()?;
        if self.new_template.min_count == 0 {
            return Err(range("new_template.min_count", "must be at least 1"));
        }
        self.check_sections("")?;
        self.floors.check()?;
        for name in self.metric.keys() {
            self.for_metric(name).check_sections(&format!("metric.{name}."))?;
        }
        Ok(())
    }

    fn check_sections(&self, prefix: &str) -> Result<(), DetectError> {
        let z = &self.zscore;
        check_window(&format!("{prefix}zscore"), z.window, z.min_history)?;
        check_thresholds(&format!("{prefix}zscore"), z.threshold, z.critical)?;
        let r = &self.robust_zscore;
        check_window(&format!("{prefix}robust_zscore"), r.window, r.min_history)?;
        check_thresholds(&format!("{prefix}robust_zscore"), r.threshold, r.critical)?;
        let s = &self.seasonal;
        s.warmup_secs().map_err(|e| prefixed(e, prefix))?;
        check_thresholds(&format!("{prefix}seasonal"), s.threshold, s.critical)?;
        for (name, v) in [
            ("alpha", s.alpha),
            ("profile_alpha", s.profile_alpha),
            ("scale_alpha", s.scale_alpha),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(range(&format!("{prefix}seasonal.{name}"), "must be in (0, 1]"));
            }
        }
        let p = &self.poisson;
        check_thresholds(&format!("{prefix}poisson"), p.threshold, p.critical)?;
        if p.windows.is_empty() || p.windows.iter().any(|&w| w == 0 || w > MAX_POISSON_WINDOW) {
            return Err(range(
                &format!("{prefix}poisson.windows"),
                "must list 1 to 1440 buckets, at least one",
            ));
        }
        if p.fall_windows.iter().any(|&w| w == 0 || w > MAX_POISSON_WINDOW) {
            return Err(range(
                &format!("{prefix}poisson.fall_windows"),
                "must list 1 to 1440 buckets",
            ));
        }
        if p.halflife == 0 {
            return Err(range(&format!("{prefix}poisson.halflife"), "must be at least 1"));
        }
        if p.min_ratio.is_nan() || p.min_ratio < 1.0 || p.min_ratio.is_infinite() {
            return Err(range(&format!("{prefix}poisson.min_ratio"), "must be at least 1"));
        }
        if p.fall_min_ratio.is_nan() || p.fall_min_ratio < 1.0 || p.fall_min_ratio.is_infinite() {
            return Err(range(
                &format!("{prefix}poisson.fall_min_ratio"),
                "must be at least 1",
            ));
        }
        if self.silence.min_missing == 0 {
            return Err(range(
                &format!("{prefix}silence.min_missing"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

fn prefixed(e: DetectError, prefix: &str) -> DetectError {
    match e {
        DetectError::Duration { key, source } => DetectError::Duration {
            key: format!("{prefix}{key}"),
            source,
        },
        DetectError::Range { key, why } => DetectError::Range {
            key: format!("{prefix}{key}"),
            why,
        },
    }
}

fn range(key: &str, why: &'static str) -> DetectError {
    DetectError::Range {
        key: key.to_owned(),
        why,
    }
}

fn check_window(section: &str, window: usize, min_history: usize) -> Result<(), DetectError> {
    if window < 2 {
        return Err(range(&format!("{section}.window"), "must be at least 2"));
    }
    if min_history < 2 || min_history > window {
        return Err(range(
            &format!("{section}.min_history"),
            "must be between 2 and window",
        ));
    }
    Ok(())
}

fn check_thresholds(section: &str, threshold: f64, critical: f64) -> Result<(), DetectError> {
    if threshold.is_nan() || threshold <= 0.0 || threshold.is_infinite() {
        return Err(range(
            &format!("{section}.threshold"),
            "must be a positive number",
        ));
    }
    if critical.is_nan() || critical < threshold {
        return Err(range(
            &format!("{section}.critical"),
            "must be at least threshold",
        ));
    }
    Ok(())
}

/// A positive whole number of seconds, in the one duration grammar of the configuration.
fn duration(key: &str, text: &str) -> Result<i64, DetectError> {
    let secs = parse_duration_secs(text).map_err(|source| DetectError::Duration {
        key: key.to_owned(),
        source,
    })?;
    if secs == 0 {
        return Err(range(key, "must be a positive duration"));
    }
    Ok(secs)
}

/// Rolling Z-score: `|x − mean| / std` over the last `window` buckets (the seed's model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZScoreConfig {
    /// Run this detector (default true).
    pub enabled: bool,
    /// Trailing window in buckets (default 60: one hour of 1-minute buckets).
    pub window: usize,
    /// Buckets of history needed before it may fire (default 30).
    pub min_history: usize,
    /// |z| at which it fires with severity warning (default 4).
    pub threshold: f64,
    /// |z| at which the severity is critical (default 8).
    pub critical: f64,
    /// Smallest standard deviation used, so a flat history does not make every change
    /// infinite (default 1e-6).
    pub min_std: f64,
}

impl Default for ZScoreConfig {
    fn default() -> Self {
        ZScoreConfig {
            enabled: true,
            window: 60,
            min_history: 30,
            threshold: 4.0,
            critical: 8.0,
            min_std: 1e-6,
        }
    }
}

/// Robust Z-score: `|x − median| / (1.4826 · MAD)` over the last `window` buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RobustConfig {
    /// Run this detector (default true).
    pub enabled: bool,
    /// Trailing window in buckets (default 60).
    pub window: usize,
    /// Buckets of history needed before it may fire (default 30).
    pub min_history: usize,
    /// Robust |z| at which it fires with severity warning (default 5).
    pub threshold: f64,
    /// Robust |z| at which the severity is critical (default 10).
    pub critical: f64,
    /// Smallest scale used when the MAD and the mean absolute deviation are both 0 (default 1e-6).
    pub min_scale: f64,
}

impl Default for RobustConfig {
    fn default() -> Self {
        RobustConfig {
            enabled: true,
            window: 60,
            min_history: 30,
            threshold: 5.0,
            critical: 10.0,
            min_scale: 1e-6,
        }
    }
}

/// How the seasonal detector transforms values before modelling them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transform {
    /// Model the values as they are (additive seasonality).
    #[default]
    None,
    /// Model `ln(1 + max(x, 0))`: multiplicative seasonality, for counts and sizes.
    Log,
}

/// Seasonal baseline: a level (EWMA) plus an hour-of-day profile (interpolated between hours)
/// and a day-of-week offset, with a residual scale per hour of day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeasonalConfig {
    /// Run this detector (default true).
    pub enabled: bool,
    /// Time from the first point during which the daily profile is learned and nothing fires
    /// (default `1d`: one full day is needed to know the daily shape).
    pub warmup: String,
    /// Smoothing of the level per point (default 0.05).
    pub alpha: f64,
    /// Smoothing of the hour-of-day profile per point (default 0.05).
    pub profile_alpha: f64,
    /// Smoothing of the residual variance per point (default 0.02).
    pub scale_alpha: f64,
    /// Learn a day-of-week offset (default true; it helps from the second week on).
    pub day_of_week: bool,
    /// Value transform (default `none`; `log` suits counts).
    pub transform: Transform,
    /// Residual |z| at which it fires with severity warning (default 4).
    pub threshold: f64,
    /// Residual |z| at which the severity is critical (default 8).
    pub critical: f64,
    /// Smallest residual scale used, in transformed units (default 1e-6).
    pub min_scale: f64,
    /// Smallest residual scale as a fraction of the warm-up's overall standard deviation
    /// (default 0.01): a noise-free series would otherwise make any wobble infinite.
    pub relative_floor: f64,
    /// Smallest change, as a fraction of the expected value, that may fire (default 0: any
    /// statistically significant change). 0.5 keeps a first weekend's 30% dip, which no
    /// model with less than a week of history can expect, from firing on busy series, while
    /// a drop to 20% or a 5x spike still fires.
    pub min_relative_change: f64,
}

impl Default for SeasonalConfig {
    fn default() -> Self {
        SeasonalConfig {
            enabled: true,
            warmup: "1d".to_owned(),
            alpha: 0.05,
            profile_alpha: 0.05,
            scale_alpha: 0.02,
            day_of_week: true,
            transform: Transform::None,
            threshold: 4.0,
            critical: 8.0,
            min_scale: 1e-6,
            relative_floor: 0.01,
            min_relative_change: 0.0,
        }
    }
}

impl SeasonalConfig {
    /// The warm-up in seconds.
    pub fn warmup_secs(&self) -> Result<i64, DetectError> {
        duration("seasonal.warmup", &self.warmup)
    }
}

/// Longest Poisson scan window accepted, in buckets (a day of 1-minute buckets).
const MAX_POISSON_WINDOW: usize = 1440;

/// Poisson scan: counts over the last few buckets against an exponentially weighted baseline
/// rate, scored by the Poisson tail (see [`super::PoissonScan`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoissonConfig {
    /// Run this detector (default true).
    pub enabled: bool,
    /// Window lengths in buckets tested at each bucket (default `[1, 2, 4, 8, 16]`): short
    /// ones catch sharp changes on busy series, long ones weak changes on quiet series.
    pub windows: Vec<usize>,
    /// Windows tested for falls only (default: every length up to 64 buckets not in
    /// `windows`): a quiet host that stops logging at night (a line or two a minute) proves
    /// nothing in 16 minutes, a silence rarely lasts a power of two (the window of 32 around
    /// one of 26 minutes holds the lines before it), and rises over an hour are slow drifts,
    /// not incidents.
    pub fall_windows: Vec<usize>,
    /// Smallest fall, as expected over observed, that `fall_windows` may fire on (default 4),
    /// over the window and over its last quarter.
    pub fall_min_ratio: f64,
    /// Buckets after which a past bucket weighs half in the baseline (default 60).
    pub halflife: u32,
    /// Buckets of history needed before it may fire (default 30).
    pub min_history: u32,
    /// −log10 of the tail probability at which it fires with severity warning (default 7:
    /// one chance in ten million per test, so a week of minutes over dozens of series and
    /// five windows stays under one false alarm from chance alone).
    pub threshold: f64,
    /// −log10 tail probability at which the severity is critical (default 15).
    pub critical: f64,
    /// Smallest change as a ratio of observed to expected (or expected to observed for a
    /// fall) that may fire (default 2): significance alone flags 10% wobbles on busy series.
    pub min_ratio: f64,
    /// Anomalous buckets during which the baseline stays frozen before it learns the new
    /// level (default 120).
    pub max_freeze: u32,
}

impl Default for PoissonConfig {
    fn default() -> Self {
        let windows = vec![1, 2, 4, 8, 16];
        PoissonConfig {
            enabled: true,
            fall_windows: (1..=64).filter(|w| !windows.contains(w)).collect(),
            windows,
            fall_min_ratio: 4.0,
            halflife: 60,
            min_history: 30,
            threshold: 7.0,
            critical: 15.0,
            min_ratio: 2.0,
            max_freeze: 120,
        }
    }
}

/// New templates: a template first seen after the warm-up, graded by its level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewTemplateConfig {
    /// Run this detector (default true).
    pub enabled: bool,
    /// Time from the first event during which templates are learned silently (default `1h`).
    pub warmup: String,
    /// Lowest severity reported (default `info`: every new template). A template's severity
    /// comes from its level: ERROR or worse is critical, WARN warning, anything else info.
    pub min_severity: super::Severity,
    /// Occurrences within `within` of its first that make a new template an anomaly
    /// (default 3; 1 reports every new template, one-offs included).
    pub min_count: u64,
    /// How soon after its first occurrence a new template must repeat (default `10m`).
    pub within: String,
}

impl Default for NewTemplateConfig {
    fn default() -> Self {
        NewTemplateConfig {
            enabled: true,
            warmup: "1h".to_owned(),
            min_severity: super::Severity::Info,
            min_count: 3,
            within: "10m".to_owned(),
        }
    }
}

impl NewTemplateConfig {
    /// The warm-up in seconds.
    pub fn warmup_secs(&self) -> Result<i64, DetectError> {
        duration("new_template.warmup", &self.warmup)
    }

    /// The repetition window in seconds.
    pub fn within_secs(&self) -> Result<i64, DetectError> {
        duration("new_template.within", &self.within)
    }
}

/// Silence: a series that reported regularly and then has buckets with no data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SilenceConfig {
    /// Run this detector (default true).
    pub enabled: bool,
    /// Buckets of history before it may fire (default 60).
    pub min_history: u32,
    /// Fraction of recent buckets (an EWMA over about `min_history` buckets) that must have
    /// reported for the series to count as regular (default 0.9).
    pub min_presence: f64,
    /// Consecutive silent buckets before it fires (default 3); from then on every silent
    /// bucket is anomalous, so one gap merges into one incident.
    pub min_missing: u32,
    /// Consecutive silent buckets at which the severity becomes critical (default 10).
    pub critical_missing: u32,
}

impl Default for SilenceConfig {
    fn default() -> Self {
        SilenceConfig {
            enabled: true,
            min_history: 60,
            min_presence: 0.9,
            min_missing: 3,
            critical_missing: 10,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_from_empty_and_validate() {
        let c: DetectConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, DetectConfig::default());
        assert_eq!(c.bucket_secs().unwrap(), 60);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn overrides_replace_sections_per_metric() {
        let c: DetectConfig = serde_json::from_str(
            r#"{"bucket":"5m","zscore":{"threshold":5.0},
                "metric":{"error_rate":{"zscore":{"window":120,"min_history":10}}}}"#,
        )
        .unwrap();
        assert_eq!(c.bucket_secs().unwrap(), 300);
        assert_eq!(c.for_metric("volume").zscore.threshold, 5.0);
        let e = c.for_metric("error_rate").zscore;
        assert_eq!((e.window, e.min_history, e.threshold), (120, 10, 4.0));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(serde_json::from_str::<DetectConfig>(r#"{"zscor":{}}"#).is_err());
        assert!(serde_json::from_str::<DetectConfig>(r#"{"zscore":{"treshold":1}}"#).is_err());
        let c: DetectConfig = serde_json::from_str(r#"{"bucket":"1x"}"#).unwrap();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "detect.bucket: \"1x\" is not a duration: unknown unit \"x\" (use ms, s, m, h or d)"
        );
        let c: DetectConfig =
            serde_json::from_str(r#"{"metric":{"volume":{"robust_zscore":{"window":1}}}}"#).unwrap();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "detect.metric.volume.robust_zscore.window: must be at least 2"
        );
    }
}
