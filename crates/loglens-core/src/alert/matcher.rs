//! Label matchers (`service=api`, `host!=web-02`, `severity=~warning|critical`) shared by rules and
//! silences, in Alertmanager's syntax so users can copy them across.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

use crate::Timestamp;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`: equal.
    Eq,
    /// `!=`: not equal (a missing label counts as the empty string).
    Ne,
    /// `=~`: the whole value matches the regex.
    Re,
    /// `!~`: the whole value does not match the regex.
    NotRe,
}

/// One label condition.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label name (`service`, `host`, `severity`, `detector`, `metric`, `series`, ...).
    pub label: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or regex text as written.
    pub value: String,
    regex: Option<Regex>,
}

/// A matcher that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// No `=`, `!=`, `=~` or `!~` in the text.
    #[error("{0:?} is not `label=value`, `label!=value`, `label=~regex` or `label!~regex`")]
    Syntax(String),
    /// The label name is empty or not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("{0:?} is not a label name")]
    Label(String),
    /// The regex does not compile.
    #[error("bad regex {0:?}: {1}")]
    Regex(String, String),
}

impl Matcher {
    /// Parses `label op value`; spaces around the operator and quotes around the value are allowed.
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let (pos, op, len) = find_op(text).ok_or_else(|| MatcherError::Syntax(text.to_owned()))?;
        let label = text[..pos].trim();
        let valid = label
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(MatcherError::Label(label.to_owned()));
        }
        let value = text[pos + len..].trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| MatcherError::Regex(value.to_owned(), e.to_string()))?,
            ),
            MatchOp::Eq | MatchOp::Ne => None,
        };
        Ok(Matcher {
            label: label.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    /// Whether the labels satisfy this matcher.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.label).map_or("", String::as_str);
        let re = || self.regex.as_ref().is_some_and(|r| r.is_match(value));
        match self.op {
            MatchOp::Eq => value == self.value,
            MatchOp::Ne => value != self.value,
            MatchOp::Re => re(),
            MatchOp::NotRe => !re(),
        }
    }
}

/// Why scan for `!=` and `=~` before `=`? `a!=b` contains `=`; the two-character operators
/// must win at the position where the operator starts.
fn find_op(text: &str) -> Option<(usize, MatchOp, usize)> {
    let bytes = text.as_bytes();
    for i in 0..bytes.len() {
        let next = bytes.get(i + 1).copied();
        match (bytes[i], next) {
            (b'!', Some(b'=')) => return Some((i, MatchOp::Ne, 2)),
            (b'!', Some(b'~')) => return Some((i, MatchOp::NotRe, 2)),
            (b'=', Some(b'~')) => return Some((i, MatchOp::Re, 2)),
            (b'=', _) => return Some((i, MatchOp::Eq, 1)),
            _ => {}
        }
    }
    None
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        };
        write!(f, "{}{}{}", self.label, op, self.value)
    }
}

/// A silence: alerts whose labels match every matcher are not notified between `starts` and `ends`.
#[derive(Debug, Clone)]
pub struct Silence {
    /// An id to list and expire it by.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// First instant it applies.
    pub starts: Timestamp,
    /// First instant it no longer applies.
    pub ends: Timestamp,
    /// Why (free text).
    pub comment: String,
}

impl Silence {
    /// Whether the silence is in force at `now`.
    pub fn active(&self, now: Timestamp) -> bool {
        self.starts <= now && now < self.ends
    }

    /// Whether it silences alerts with these labels at `now`.
    pub fn silences(&self, labels: &BTreeMap<String, String>, now: Timestamp) -> bool {
        self.active(now) && self.matchers.iter().all(|m| m.matches(labels))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn operators_parse_and_match() {
        let l = labels(&[("service", "api"), ("host", "web-01")]);
        assert!(Matcher::parse("service=api").unwrap().matches(&l));
        assert!(!Matcher::parse("service != api").unwrap().matches(&l));
        assert!(Matcher::parse("host=~\"web-.*\"").unwrap().matches(&l));
        assert!(
            !Matcher::parse("host=~web").unwrap().matches(&l),
            "regex is anchored"
        );
        assert!(
            Matcher::parse("level!~ERROR|CRITICAL").unwrap().matches(&l),
            "missing label is empty"
        );
        assert_eq!(Matcher::parse("host!~a").unwrap().op, MatchOp::NotRe);
    }

    #[test]
    fn bad_matchers_are_named() {
        assert_eq!(
            Matcher::parse("service").unwrap_err(),
            MatcherError::Syntax("service".into())
        );
        assert_eq!(
            Matcher::parse("=x").unwrap_err(),
            MatcherError::Label(String::new())
        );
        assert!(matches!(
            Matcher::parse("a=~(").unwrap_err(),
            MatcherError::Regex(..)
        ));
    }

    #[test]
    fn silence_applies_only_in_its_window() {
        let s = Silence {
            id: "s1".into(),
            matchers: vec![Matcher::parse("service=api").unwrap()],
            starts: Timestamp::from_secs(100),
            ends: Timestamp::from_secs(200),
            comment: String::new(),
        };
        let l = labels(&[("service", "api")]);
        assert!(!s.silences(&l, Timestamp::from_secs(99)));
        assert!(s.silences(&l, Timestamp::from_secs(100)));
        assert!(!s.silences(&l, Timestamp::from_secs(200)));
        assert!(!s.silences(&labels(&[("service", "db")]), Timestamp::from_secs(150)));
    }
}
