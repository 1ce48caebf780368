//! A notification (one group of alerts of one rule, firing or resolved) and its renderings:
//! loglens webhook JSON, Slack-compatible and Alertmanager-compatible payloads, and the email's
//! plain-text and HTML bodies.

use std::collections::BTreeMap;

use loglens_core::detect::IncidentRow;
use loglens_core::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One incident as a notification carries it (and the outbox stores it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    /// Incident id.
    pub id: String,
    /// RFC 3339.
    pub start: String,
    /// RFC 3339 (exclusive end of the last anomalous bucket).
    pub end: String,
    /// Detector.
    pub detector: String,
    /// Metric.
    pub metric: String,
    /// Series key.
    pub series: String,
    /// Labels (severity, detector, metric, series, service, host, level, template_id).
    pub labels: BTreeMap<String, String>,
    /// Value at the peak.
    pub observed: f64,
    /// Expected value at the peak.
    pub expected: f64,
    /// Peak score.
    pub score: f64,
    /// Severity.
    pub severity: String,
    /// Explaining template.
    pub template: Option<String>,
    /// Example raw messages.
    pub examples: Vec<String>,
    /// One-line summary.
    pub summary: String,
    /// It had stopped firing before the run that notifies it (a run missed it).
    #[serde(default)]
    pub late: bool,
    /// The series that explains it, when detection correlated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The other incidents merged into it (`detector on series (severity)`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
}

impl AlertView {
    /// The view of an incident.
    pub fn of(row: &IncidentRow) -> AlertView {
        let i = &row.incident;
        AlertView {
            id: i.incident_id.clone(),
            start: i.start.to_rfc3339(),
            end: i.end.to_rfc3339(),
            detector: i.detector.as_str().to_owned(),
            metric: i.metric.clone(),
            series: i.series.clone(),
            labels: row.labels(),
            observed: finite(i.observed),
            expected: finite(i.peak.expected),
            score: finite(i.peak.score),
            severity: i.severity.as_str().to_owned(),
            template: row.template.clone(),
            examples: row.examples.clone(),
            summary: row.summary(),
            late: false,
            root: Some(i.root.clone()).filter(|r| !r.is_empty()),
            related: i.related(),
        }
    }
}

/// Why? JSON has no NaN; a missing expected value is sent as 0 rather than failing the payload.
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Everything a receiver needs to render one notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Idempotency key (same across restarts and retries).
    pub key: String,
    /// Rule name.
    pub rule: String,
    /// `firing`, `resolved` or `test`.
    pub state: String,
    /// Group key (`service=api`).
    pub group_key: String,
    /// The grouping labels and their values.
    pub group_labels: BTreeMap<String, String>,
    /// When it was decided (RFC 3339).
    pub decided_at: String,
    /// One-line summary, the email subject.
    pub subject: String,
    /// The incidents.
    pub alerts: Vec<AlertView>,
    /// Key of the episode's first firing notification, for notifications that follow it (updates,
    /// repeats, resolved): emails answer it (`In-Reply-To`, `References`) so they thread.
    #[serde(default)]
    pub thread: Option<String>,
    /// The dashboard's URL (`[alerting] external_url`), for links.
    #[serde(default)]
    pub external_url: Option<String>,
}

/// Label or annotation name → value.
type Labels = BTreeMap<String, String>;

/// At most this many alerts are listed in one payload or email; the rest are counted. Why? A
/// storm grouped into one notification made 470 KB bodies that chat tools and inboxes reject.
pub const MAX_LISTED_ALERTS: usize = 100;

/// A figure for people: at most 4 decimals, trailing zeros dropped (`0.4685`, `12`, `0.31`).
pub fn figure(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let text = format!("{v:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" || text.is_empty() {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

impl Notification {
    /// Builds a notification and its subject: `[FIRING] rule service=api: 3 alerts — <first summary>`.
    pub fn new(
        key: String,
        rule: &str,
        state: &str,
        group_labels: BTreeMap<String, String>,
        group_key: &str,
        decided_at: Timestamp,
        alerts: Vec<AlertView>,
    ) -> Notification {
        let count = alerts.len();
        let first = alerts.first().map(|a| a.summary.clone()).unwrap_or_default();
        let group = if group_key.is_empty() {
            String::new()
        } else {
            format!(" {group_key}")
        };
        let plural = if count == 1 { "alert" } else { "alerts" };
        let late = alerts.iter().filter(|a| a.late).count();
        let late = if late == 0 {
            String::new()
        } else {
            format!(" ({late} late)")
        };
        let subject = format!(
            "[{}] {rule}{group}: {count} {plural}{late}: {first}",
            state.to_uppercase()
        );
        Notification {
            key,
            rule: rule.to_owned(),
            state: state.to_owned(),
            group_key: group_key.to_owned(),
            group_labels,
            decided_at: decided_at.to_rfc3339(),
            subject,
            alerts,
            thread: None,
            external_url: None,
        }
    }

    /// Incident ids, in order.
    pub fn incident_ids(&self) -> Vec<String> {
        self.alerts.iter().map(|a| a.id.clone()).collect()
    }

    /// loglens's webhook JSON.
    pub fn webhook_json(&self, receiver: &str) -> Value {
        json!({
            "version": "1",
            "idempotency_key": self.key,
            "receiver": receiver,
            "rule": self.rule,
            "status": self.state,
            "group_key": self.group_key,
            "group_labels": self.group_labels,
            "decided_at": self.decided_at,
            "subject": self.subject,
            "alerts": self.alerts,
        })
    }

    /// A Slack incoming-webhook payload: `text` for notifications and fallbacks, plus a section per
    /// alert (at most 20, as Slack caps blocks at 50).
    pub fn slack_json(&self) -> Value {
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&self.subject, 150)}}),
        ];
        for a in self.alerts.iter().take(20) {
            let mut text = format!("*{}*\n{} → {}", slack_escape(&a.summary), a.start, a.end);
            if a.late {
                text.push_str(" (late)");
            }
            if let Some(t) = &a.template {
                text.push_str(&format!("\ntemplate: `{}`", slack_escape(t)));
            }
            if let Some(e) = a.examples.first() {
                text.push_str(&format!("\n```{}```", slack_escape(&truncate(e, 500))));
            }
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
        }
        if self.alerts.len() > 20 {
            let more = format!("… and {} more", self.alerts.len() - 20);
            blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]}));
        }
        json!({"text": slack_escape(&self.subject), "blocks": blocks})
    }

    /// Alertmanager's webhook payload (version 4), so tools that take Alertmanager webhooks work:
    /// `alertname` is the rule, `groupKey` has Alertmanager's `{route}:{labels}` form, at most
    /// [`MAX_LISTED_ALERTS`] alerts with the rest in `truncatedAlerts`.
    pub fn alertmanager_json(&self, receiver: &str) -> Value {
        let status = if self.state == "resolved" {
            "resolved"
        } else {
            "firing"
        };
        let link = self.external_url.clone().unwrap_or_default();
        let labelled: Vec<(Labels, Labels, &AlertView)> = self
            .alerts
            .iter()
            .map(|a| {
                let mut labels = a.labels.clone();
                labels.insert("alertname".into(), self.rule.clone());
                let mut annotations = BTreeMap::from([
                    ("summary".to_owned(), a.summary.clone()),
                    ("observed".to_owned(), figure(a.observed)),
                    ("expected".to_owned(), figure(a.expected)),
                ]);
                if let Some(t) = &a.template {
                    annotations.insert("template".into(), t.clone());
                }
                (labels, annotations, a)
            })
            .collect();
        let alerts: Vec<Value> = labelled
            .iter()
            .take(MAX_LISTED_ALERTS)
            .map(|(labels, annotations, a)| {
                let ends = if status == "resolved" {
                    a.end.clone()
                } else {
                    "0001-01-01T00:00:00Z".into()
                };
                json!({
                    "status": status, "labels": labels, "annotations": annotations,
                    "startsAt": a.start, "endsAt": ends, "generatorURL": link, "fingerprint": a.id,
                })
            })
            .collect();
        let common_labels = common(labelled.iter().map(|(l, _, _)| l));
        let common_annotations = common(labelled.iter().map(|(_, an, _)| an));
        let group_labels: BTreeMap<&String, &String> =
            self.group_labels.iter().filter(|(_, v)| !v.is_empty()).collect();
        let quoted = |m: &BTreeMap<&String, &String>| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", serde_json::Value::from(v.as_str())))
                .collect::<Vec<_>>()
                .join(",")
        };
        let route = serde_json::Value::from(self.rule.as_str());
        json!({
            "version": "4",
            "groupKey": format!("{{}}/{{alertname={route}}}:{{{}}}", quoted(&group_labels)),
            "truncatedAlerts": self.alerts.len().saturating_sub(MAX_LISTED_ALERTS),
            "status": status,
            "receiver": receiver,
            "groupLabels": group_labels,
            "commonLabels": common_labels,
            "commonAnnotations": common_annotations,
            "externalURL": link,
            "alerts": alerts,
        })
    }

    /// Lines shared by both email bodies after the alerts: how many were left out, and where to
    /// look further.
    fn footer(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let hidden = self.alerts.len().saturating_sub(MAX_LISTED_ALERTS);
        if hidden > 0 {
            lines.push(format!(
                "… and {hidden} more alerts (see the alerts/history dataset)"
            ));
        }
        match &self.external_url {
            Some(url) => lines.push(format!("dashboard: {url}")),
            None => lines.push("dashboard: loglens dashboard".to_owned()),
        }
        if let Some(first) = self.alerts.first() {
            lines.push(format!(
                "new templates since: loglens templates --new-since {}",
                first.start
            ));
        }
        lines
    }

    /// The email's plain-text body.
    pub fn text_body(&self) -> String {
        let mut out = format!(
            "{}\n\nrule: {}\nstate: {}\ngroup: {}\n",
            self.subject, self.rule, self.state, self.group_key
        );
        for a in self.alerts.iter().take(MAX_LISTED_ALERTS) {
            let late = if a.late { " (late)" } else { "" };
            out.push_str(&format!(
                "\n== {}{late} ==\nincident: {}\nseries: {} ({})\nwhen: {} to {}\nobserved: {} expected: {} score: {}\n",
                a.summary, a.id, a.series, a.metric, a.start, a.end, figure(a.observed), figure(a.expected), figure(a.score)
            ));
            if let Some(root) = a.root.as_ref().filter(|_| !a.related.is_empty()) {
                out.push_str(&format!("root: {root}, with {} related:\n", a.related.len()));
                for r in &a.related {
                    out.push_str(&format!("  - {r}\n"));
                }
            }
            if let Some(t) = &a.template {
                out.push_str(&format!("template: {t}\n"));
            }
            for e in &a.examples {
                out.push_str(&format!("  > {e}\n"));
            }
        }
        out.push('\n');
        for line in self.footer() {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// The email's HTML body (every value escaped).
    pub fn html_body(&self) -> String {
        let mut out = format!(
            "<html><body><h2>{}</h2><p>rule <b>{}</b>, state <b>{}</b>, group <code>{}</code></p>",
            esc(&self.subject),
            esc(&self.rule),
            esc(&self.state),
            esc(&self.group_key)
        );
        out.push_str("<table border=\"1\" cellpadding=\"4\"><tr><th>incident</th><th>series</th><th>metric</th><th>start</th><th>end</th><th>observed</th><th>expected</th><th>severity</th></tr>");
        let listed = &self.alerts[..self.alerts.len().min(MAX_LISTED_ALERTS)];
        for a in listed {
            out.push_str(&format!(
                "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.id), if a.late { " (late)" } else { "" }, esc(&a.series), esc(&a.metric), esc(&a.start), esc(&a.end),
                figure(a.observed), figure(a.expected), esc(&a.severity)
            ));
        }
        out.push_str("</table>");
        for a in listed {
            if a.template.is_none() && a.examples.is_empty() && a.related.is_empty() {
                continue;
            }
            out.push_str(&format!("<h3>{}</h3>", esc(&a.summary)));
            if let Some(root) = a.root.as_ref().filter(|_| !a.related.is_empty()) {
                out.push_str(&format!(
                    "<p>root <code>{}</code>, with related:</p><ul>",
                    esc(root)
                ));
                for r in &a.related {
                    out.push_str(&format!("<li>{}</li>", esc(r)));
                }
                out.push_str("</ul>");
            }
            if let Some(t) = &a.template {
                out.push_str(&format!("<p>template: <code>{}</code></p>", esc(t)));
            }
            out.push_str("<pre>");
            for e in &a.examples {
                out.push_str(&esc(e));
                out.push('\n');
            }
            out.push_str("</pre>");
        }
        for line in self.footer() {
            out.push_str(&format!("<p>{}</p>", esc(&line)));
        }
        out.push_str("</body></html>");
        out
    }
}

/// The pairs every map has.
fn common<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let maps: Vec<&BTreeMap<String, String>> = maps.collect();
    let Some(first) = maps.first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| maps.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Slack's escaping for `text` and mrkdwn: `&`, `<`, `>` only. Why? `<!channel>`, `<@U123>` and
/// `<url|label>` in a log line would otherwise ping people or forge links.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn view(example: &str) -> AlertView {
        AlertView {
            id: "i1".into(),
            start: "2026-11-20T12:00:00Z".into(),
            end: "2026-11-20T12:03:00Z".into(),
            detector: "robust_zscore".into(),
            metric: "error_rate".into(),
            series: "service=api".into(),
            labels: BTreeMap::new(),
            observed: 1.0,
            expected: 0.0,
            score: 1.0,
            severity: "critical".into(),
            template: Some("<*> & <*>".into()),
            examples: vec![example.into()],
            summary: "a <b> & c".into(),
            late: true,
            root: None,
            related: Vec::new(),
        }
    }

    #[test]
    fn a_correlated_incident_lists_its_root_and_related_incidents_in_both_bodies() {
        let mut merged = view("x");
        merged.root = Some("service=api,host=api-01".into());
        merged.related = vec![
            "poisson on service=api (critical)".into(),
            "new_template on service=api,template=00000000000000aa (warning)".into(),
        ];
        let n = Notification::new(
            "k".into(),
            "r",
            "firing",
            BTreeMap::new(),
            "",
            Timestamp(0),
            vec![merged],
        );
        let text = n.text_body();
        assert!(
            text.contains("root: service=api,host=api-01, with 2 related:\n  - poisson on service=api (critical)\n  - new_template on"),
            "{text}"
        );
        let html = n.html_body();
        assert!(
            html.contains("<li>poisson on service=api (critical)</li>"),
            "{html}"
        );
        // A lone incident says nothing about correlation.
        assert!(!Notification::new(
            "k".into(),
            "r",
            "firing",
            BTreeMap::new(),
            "",
            Timestamp(0),
            vec![view("x")]
        )
        .text_body()
        .contains("root:"));
    }

    #[test]
    fn figures_are_rounded_for_people() {
        assert_eq!(figure(0.468_531_468_531_468_54), "0.4685");
        assert_eq!(figure(12.0), "12");
        assert_eq!(figure(0.31), "0.31");
        assert_eq!(figure(-0.000_01), "0");
    }

    #[test]
    fn alertmanager_payload_is_capped_and_keyed_like_alertmanager() {
        let mut alerts: Vec<AlertView> = (0..150).map(|_| view("x")).collect();
        for a in &mut alerts {
            a.labels.insert("service".into(), "api".into());
        }
        let labels = BTreeMap::from([("service".to_owned(), "api".to_owned())]);
        let mut n = Notification::new(
            "k".into(),
            "api-errors",
            "firing",
            labels,
            "service=api",
            Timestamp(0),
            alerts,
        );
        n.external_url = Some("http://dash:8501".into());
        let am = n.alertmanager_json("am");
        assert_eq!(am["alerts"].as_array().unwrap().len(), MAX_LISTED_ALERTS);
        assert_eq!(am["truncatedAlerts"], 50);
        assert_eq!(am["groupKey"], "{}/{alertname=\"api-errors\"}:{service=\"api\"}");
        assert_eq!(am["commonLabels"]["alertname"], "api-errors");
        assert_eq!(am["commonAnnotations"]["observed"], "1");
        assert_eq!(am["externalURL"], "http://dash:8501");
        assert_eq!(am["alerts"][0]["generatorURL"], "http://dash:8501");
        assert!(n.text_body().contains("… and 50 more alerts"));
    }

    #[test]
    fn slack_text_is_escaped_so_a_log_line_cannot_ping() {
        let n = Notification::new(
            "k".into(),
            "r",
            "firing",
            BTreeMap::new(),
            "",
            Timestamp(0),
            vec![view("hey <!channel> & <@U123>")],
        );
        let body = n.slack_json().to_string();
        assert!(
            !body.contains("<!channel>") && !body.contains("<@U123>"),
            "{body}"
        );
        assert!(body.contains("&lt;!channel&gt; &amp; &lt;@U123&gt;"), "{body}");
        assert!(n.subject.contains("(1 late)"), "{}", n.subject);
    }
}
