//! The keys that JSON and logfmt lines use for the record's own fields (time, level, message,
//! service, host), shared so both formats read the same keys in the same order of preference.

/// The record fields well-known keys fill, in slot order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Time = 0,
    Level = 1,
    Message = 2,
    Service = 3,
    Host = 4,
}

/// The role of a key and its rank among the role's keys (lower wins).
pub(crate) fn role(key: &str) -> Option<(Role, u8)> {
    Some(match key {
        "ts" => (Role::Time, 0),
        "timestamp" => (Role::Time, 1),
        "time" => (Role::Time, 2),
        "@timestamp" => (Role::Time, 3),
        "datetime" => (Role::Time, 4),
        // Fluent Bit's JSON output names the time `date` (epoch seconds) unless told otherwise.
        "date" => (Role::Time, 5),
        "level" => (Role::Level, 0),
        "severity" => (Role::Level, 1),
        "lvl" => (Role::Level, 2),
        "log.level" => (Role::Level, 3),
        "msg" => (Role::Message, 0),
        "message" => (Role::Message, 1),
        "log" => (Role::Message, 2),
        "service" => (Role::Service, 0),
        "app" => (Role::Service, 1),
        "logger" => (Role::Service, 2),
        "service.name" => (Role::Service, 3),
        "host" => (Role::Host, 0),
        "hostname" => (Role::Host, 1),
        // ECS and OpenTelemetry's name.
        "host.name" => (Role::Host, 2),
        _ => return None,
    })
}

/// Whether the JSON and logfmt formats read `key` as a record's time.
pub fn is_time_key(key: &str) -> bool {
    matches!(role(key), Some((Role::Time, _)))
}

/// The keys a format file names for the record's fields, each role's in order of preference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldKeys {
    /// Keys of the time.
    pub time: Vec<String>,
    /// Keys of the level.
    pub level: Vec<String>,
    /// Keys of the message.
    pub message: Vec<String>,
    /// Keys of the service.
    pub service: Vec<String>,
    /// Keys of the host.
    pub host: Vec<String>,
}

impl FieldKeys {
    /// The role of `key` among the named ones and its rank (its place in the role's list).
    pub(crate) fn role(&self, key: &str) -> Option<(Role, u8)> {
        [
            (Role::Time, &self.time),
            (Role::Level, &self.level),
            (Role::Message, &self.message),
            (Role::Service, &self.service),
            (Role::Host, &self.host),
        ]
        .into_iter()
        .find_map(|(role, keys)| {
            let rank = keys.iter().position(|k| k == key)?;
            Some((role, u8::try_from(rank).unwrap_or(u8::MAX)))
        })
    }
}

/// A format file's names for the fields of key/value lines (JSON or logfmt): the keys of each
/// field, the format's own level words, and the keys every line must have.
#[derive(Debug, Clone, Default)]
pub struct KeyMapping {
    /// The keys of the record's fields.
    pub keys: FieldKeys,
    /// Level words (`30`, `Information`) and the level each means, tried before the usual names.
    pub levels: Vec<(String, crate::record::Level)>,
    /// Keys every line must have: what tells this format's lines from any other's.
    pub required: Vec<String>,
}

impl KeyMapping {
    /// The role of `key`: a named key outranks every well-known one of its role.
    pub(crate) fn role_of(&self, key: &str) -> Option<(Role, u8)> {
        self.keys
            .role(key)
            .or_else(|| role(key).map(|(r, rank)| (r, rank.saturating_add(100))))
    }

    /// The level a value names: a word of the format's, else a usual name.
    pub(crate) fn level_of(&self, text: &str) -> Option<crate::record::Level> {
        match self.levels.iter().find(|(word, _)| word == text) {
            Some((_, level)) => Some(*level),
            None => text.parse().ok(),
        }
    }
}
