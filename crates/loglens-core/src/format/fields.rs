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
        _ => return None,
    })
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
