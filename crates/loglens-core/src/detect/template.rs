//! New-template detection: a log template never seen before, appearing after the warm-up, is
//! an anomaly graded by its level (a new ERROR template is critical, a new INFO one info).
//! Event driven: it is fed templates as they occur, not bucket values.

use std::collections::HashSet;

use super::{unit_score, NewTemplateConfig, Severity, Verdict};
use crate::record::Level;
use crate::template::TemplateId;
use crate::time::Timestamp;

/// Remembers every template seen; fires once per template first seen after the warm-up.
///
/// Feed it in time order, e.g. each template's `first_seen` and `level` from
/// `templates/templates.parquet` sorted by `first_seen`. The warm-up starts at the first event
/// (or at the time given to [`NewTemplate::starting_at`]). Templates known from an earlier run
/// can be marked with [`NewTemplate::remember`] so they never fire.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    config: NewTemplateConfig,
    warmup_secs: i64,
    start: Option<Timestamp>,
    seen: HashSet<TemplateId>,
}

/// The severity of a new template of `level`: ERROR or worse is critical, WARN warning,
/// anything else (and no level) info.
pub fn severity_of_level(level: Option<Level>) -> Severity {
    match level {
        Some(l) if l >= Level::Error => Severity::Critical,
        Some(Level::Warn) => Severity::Warning,
        _ => Severity::Info,
    }
}

impl NewTemplate {
    /// A detector whose warm-up starts at the first event. An unparsable `warmup` counts as
    /// one hour (validate the config with [`super::DetectConfig::validate`] to report it).
    pub fn new(config: &NewTemplateConfig) -> NewTemplate {
        NewTemplate {
            config: config.clone(),
            warmup_secs: config.warmup_secs().unwrap_or(3600),
            start: None,
            seen: HashSet::new(),
        }
    }

    /// A detector whose warm-up starts at `start` (e.g. the first record of the data).
    pub fn starting_at(config: &NewTemplateConfig, start: Timestamp) -> NewTemplate {
        let mut d = NewTemplate::new(config);
        d.start = Some(start);
        d
    }

    /// Marks `template` as already known: it will never fire.
    pub fn remember(&mut self, template: TemplateId) {
        self.seen.insert(template);
    }

    /// Records that `template` (of `level`) occurred at `ts`. Returns a verdict when it is new
    /// and the warm-up is over and its severity is at least `min_severity`: expected, lower and
    /// upper are 0 (it was not expected at all), score is 1, 2 or 3 for info, warning,
    /// critical, and anomaly is that score mapped into [0, 1] (0.5, 0.67, 0.75).
    pub fn observe(&mut self, ts: Timestamp, template: TemplateId, level: Option<Level>) -> Option<Verdict> {
        let start = *self.start.get_or_insert(ts);
        if !self.seen.insert(template) || ts.secs() - start.secs() < self.warmup_secs {
            return None;
        }
        let severity = severity_of_level(level);
        if severity < self.config.min_severity {
            return None;
        }
        let score = match severity {
            Severity::Info => 1.0,
            Severity::Warning => 2.0,
            Severity::Critical => 3.0,
        };
        Some(Verdict {
            expected: 0.0,
            lower: 0.0,
            upper: 0.0,
            score,
            anomaly: unit_score(score, 1.0),
            severity: Some(severity),
            ready: true,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn new_templates_after_warmup_fire_once_graded_by_level() {
        let mut d = NewTemplate::new(&NewTemplateConfig::default());
        let t = |s: &str| TemplateId::of(s);
        let at = |mins: i64| Timestamp::from_secs(1_000_000 + mins * 60);
        assert_eq!(d.observe(at(0), t("a"), Some(Level::Info)), None);
        assert_eq!(d.observe(at(59), t("b"), Some(Level::Error)), None); // still warming up
        let e = d.observe(at(61), t("c"), Some(Level::Error)).unwrap();
        assert_eq!((e.severity, e.score), (Some(Severity::Critical), 3.0));
        assert_eq!(d.observe(at(62), t("c"), Some(Level::Error)), None); // only the first time
        assert_eq!(d.observe(at(63), t("b"), Some(Level::Error)), None); // seen in warm-up
        let w = d.observe(at(64), t("d"), Some(Level::Warn)).unwrap();
        assert_eq!(w.severity, Some(Severity::Warning));
        let i = d.observe(at(65), t("e"), None).unwrap();
        assert_eq!((i.severity, i.anomaly), (Some(Severity::Info), 0.5));
    }

    #[test]
    fn min_severity_and_remembered_templates() {
        let config = NewTemplateConfig {
            min_severity: Severity::Warning,
            ..NewTemplateConfig::default()
        };
        let mut d = NewTemplate::starting_at(&config, Timestamp::from_secs(0));
        d.remember(TemplateId::of("old"));
        let late = Timestamp::from_secs(7200);
        assert_eq!(
            d.observe(late, TemplateId::of("old"), Some(Level::Critical)),
            None
        );
        assert_eq!(d.observe(late, TemplateId::of("info"), Some(Level::Info)), None);
        assert!(d
            .observe(late, TemplateId::of("crit"), Some(Level::Emergency))
            .is_some());
    }
}
