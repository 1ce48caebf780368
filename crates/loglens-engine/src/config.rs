//! The TOML configuration (`loglens.toml`): inputs with their format and labels, user formats
//! (format specs, see [`crate::formats`]), and processing options. Unknown keys are errors, so a typo
//! never silently changes behaviour.

use std::path::{Path, PathBuf};

use loglens_core::zone::{LocalZone, NamedZone};
use serde::Deserialize;

pub use crate::formats::FormatSpec;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Processing options.
    #[serde(default)]
    pub process: ProcessSection,
    /// User-defined formats (`[[format]]` here, then those of `formats_dir`), tried before
    /// the built-in ones when detecting.
    #[serde(default, rename = "format")]
    pub formats: Vec<FormatSpec>,
    /// A directory of format files (`*.toml` with `[[format]]` tables), relative to this file.
    pub formats_dir: Option<PathBuf>,
    /// Inputs: files or directories with their format and labels.
    #[serde(default, rename = "input")]
    pub inputs: Vec<InputSection>,
    /// `[[rule]]`, `[[receiver]]`, `[[silence]]` and `[alerting]` belong to `loglens-alert`, which
    /// parses them (with their own field checks) from the same file; kept raw here so this crate
    /// does not depend on it while unknown top-level keys stay errors.
    #[serde(default, rename = "rule")]
    pub alert_rules: Vec<toml::Value>,
    /// See `alert_rules`.
    #[serde(default, rename = "receiver")]
    pub alert_receivers: Vec<toml::Value>,
    /// See `alert_rules`.
    #[serde(default, rename = "silence")]
    pub alert_silences: Vec<toml::Value>,
    /// See `alert_rules`.
    #[serde(default)]
    pub alerting: Option<toml::Value>,
    /// `[[source]]`: the sources of `loglens serve` (files, syslog, HTTP); the CLI's serve
    /// module parses them, with unknown fields denied, so they stay raw here.
    #[serde(default, rename = "source")]
    pub sources: Vec<toml::Value>,
    /// `[detect]`: metric bucketing and detector settings.
    #[serde(default)]
    pub detect: loglens_core::detect::DetectConfig,
    /// Where relative paths in the file are resolved: the config file's directory.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[process]`: options of `loglens process`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSection {
    /// The data directory (default `./loglens-data`).
    pub data_dir: Option<PathBuf>,
    /// Worker threads (default: the number of cores).
    pub threads: Option<usize>,
    /// Zone of timestamps that carry none: an IANA name such as `Europe/Paris` (daylight
    /// saving followed), or a fixed `+HH:MM` / `-HH:MM` / `Z` (default: UTC).
    pub timezone: Option<String>,
}

/// `[[input]]`: one file or directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSection {
    /// A file or directory, relative to the config file.
    pub path: PathBuf,
    /// A built-in or user format name (default: detected per file).
    pub format: Option<String>,
    /// Host label for records whose line names no host.
    pub host: Option<String>,
    /// Service label for records whose line names no service.
    pub service: Option<String>,
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown or mistyped field (toml names line and field).
    #[error("{path}: {message}")]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// toml's message, with line, column and field.
        message: String,
    },
    /// A field has a value that is not valid.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// The field, e.g. `format[1].regex`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// The data directory every command uses: the one given, else the config's (relative to
    /// the config file), else `./loglens-data`.
    pub fn data_dir(&self, given: Option<&Path>) -> PathBuf {
        given
            .map(Path::to_path_buf)
            .or_else(|| self.process.data_dir.as_ref().map(|d| self.base_dir.join(d)))
            .unwrap_or_else(|| PathBuf::from("loglens-data"))
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.check(path)?;
        if let Some(dir) = &config.formats_dir {
            let from_dir =
                crate::formats::read_dir(&config.base_dir.join(dir)).map_err(|e| ConfigError::Invalid {
                    path: path.to_owned(),
                    field: "formats_dir".into(),
                    message: e.to_string(),
                })?;
            config.formats.extend(from_dir);
        }
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            field,
            message,
        };
        if let Some(tz) = &self.process.timezone {
            parse_zone(tz).map_err(|m| invalid("process.timezone".into(), m))?;
        }
        // Compiling here, not at first use, makes `config validate` catch a regex that does not
        // compile or lacks the `ts` group before any run depends on it.
        for (i, user) in self.formats.iter().enumerate() {
            user.build()
                .map_err(|e| invalid(format!("format[{i}].{} ({})", e.field, user.name), e.message))?;
        }
        for (i, input) in self.inputs.iter().enumerate() {
            if let Some(name) = &input.format {
                let builtin = name.parse::<loglens_core::format::Format>().is_ok()
                    || crate::formats::builtin_names().contains(name);
                if self.user_format(name).is_none() && !builtin {
                    return Err(invalid(
                        format!("input[{i}].format"),
                        format!("unknown format {name:?}: not built in and no [[format]] has that name"),
                    ));
                }
            }
        }
        self.detect
            .validate()
            .map_err(|e| invalid("detect".into(), e.to_string()))?;
        Ok(())
    }

    /// The user format of that name.
    pub fn user_format(&self, name: &str) -> Option<&FormatSpec> {
        self.formats.iter().find(|f| f.name == name)
    }

    /// The zone of timestamps without one (checked when the config was loaded).
    pub fn zone(&self) -> LocalZone {
        self.process
            .timezone
            .as_deref()
            .and_then(|tz| parse_zone(tz).ok())
            .unwrap_or_default()
    }

    /// The input section that covers `file` (the same file, or a directory holding it).
    pub fn input_for(&self, file: &Path) -> Option<&InputSection> {
        let file = std::fs::canonicalize(file).ok()?;
        self.inputs.iter().find(|input| {
            std::fs::canonicalize(self.base_dir.join(&input.path)).is_ok_and(|p| file.starts_with(p))
        })
    }
}

/// Parses the zone of timestamps that carry none: an IANA name (`Europe/Paris`, from the
/// system's time zone database or the copy built in) or a fixed offset (`Z`, `UTC`, `+HH:MM`,
/// `-HHMM`).
pub fn parse_zone(text: &str) -> Result<LocalZone, String> {
    if let Ok(offset) = parse_offset(text) {
        return Ok(LocalZone::Fixed(offset));
    }
    if !text.contains('/') && !matches!(text, "GMT" | "Etc/UTC") {
        // `CET` or `EST` are legacy names in the database but ambiguous to people.
        return Err(format!(
            "{text:?} is not a zone: use an IANA name like Europe/Paris or an offset like +02:00"
        ));
    }
    named_zone(text).map(LocalZone::Named)
}

/// Each named zone is loaded once per process and lives as long as it: a handful of zones at
/// most, shared by every parser without reference counting.
fn named_zone(name: &str) -> Result<&'static NamedZone, String> {
    static LOADED: std::sync::Mutex<Vec<&'static NamedZone>> = std::sync::Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(zone) = loaded.iter().find(|z| z.name() == name) {
        return Ok(zone);
    }
    let rules = jiff::tz::TimeZone::get(name)
        .map_err(|e| format!("{name:?} is not a zone in the time zone database ({e})"))?;
    let zone: &'static NamedZone = Box::leak(Box::new(NamedZone::new(name, rules)));
    loaded.push(zone);
    Ok(zone)
}

/// Parses `Z`, `UTC`, `+HH:MM`, `-HHMM` into seconds east of UTC.
pub fn parse_offset(text: &str) -> Result<i32, String> {
    let bad = || format!("{text:?} is not a zone offset like +02:00, -0530 or UTC");
    if matches!(text, "Z" | "z" | "UTC" | "utc") {
        return Ok(0);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let hours: i32 = digits[..2].parse().map_err(|_| bad())?;
    let minutes: i32 = digits[2..].parse().map_err(|_| bad())?;
    if hours > 23 || minutes > 59 {
        return Err(bad());
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("loglens.toml");
        std::fs::write(&path, text).expect("write");
        Config::load(&path)
    }

    #[test]
    fn data_dir_is_the_given_one_else_the_configs_beside_it_else_the_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("loglens.toml");
        std::fs::write(&path, "[process]\ndata_dir = \"out\"\n").expect("write");
        let config = Config::load(&path).expect("config");
        assert_eq!(config.data_dir(Some(Path::new("/x"))), PathBuf::from("/x"));
        assert_eq!(config.data_dir(None), dir.path().join("out"));
        assert_eq!(Config::default().data_dir(None), PathBuf::from("loglens-data"));
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let err = load("[[input]]\npath = \"a.log\"\nformt = \"json\"\n").expect_err("typo");
        let text = err.to_string();
        assert!(text.contains("formt"), "{text}");
        assert!(text.contains("line 3"), "{text}");
    }

    #[test]
    fn unknown_format_names_the_input() {
        let err = load("[[input]]\npath = \"a.log\"\nformat = \"xml\"\n").expect_err("bad format");
        assert!(err.to_string().contains("input[0].format"), "{err}");
    }

    #[test]
    fn a_user_regex_that_does_not_compile_or_lacks_ts_is_named() {
        let err = load("[[format]]\nname = \"app\"\nregex = '(?P<ts>\\S+ (?P<message>.*'\n")
            .expect_err("bad regex");
        assert!(err.to_string().contains("format[0].regex (app)"), "{err}");
        let err = load("[[format]]\nname = \"app\"\nregex = '(?P<message>.*)'\n").expect_err("no ts");
        let text = err.to_string();
        assert!(
            text.contains("format[0].regex (app)") && text.contains("ts"),
            "{text}"
        );
        assert!(load("[[format]]\nname = \"app\"\nregex = '(?P<ts>\\S+) (?P<message>.*)'\n").is_ok());
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+02:00"), Ok(7200));
        assert_eq!(parse_offset("-0530"), Ok(-(5 * 3600 + 1800)));
        assert_eq!(parse_offset("UTC"), Ok(0));
        assert!(parse_offset("CET").is_err());
        assert!(load("[process]\ntimezone = \"CET\"\n").is_err());
        assert!(load("[process]\ntimezone = \"Europe/Paris\"\n").is_ok());
        let err = load("[process]\ntimezone = \"Europe/Pariss\"\n").expect_err("typo");
        assert!(err.to_string().contains("process.timezone"), "{err}");
        assert!(
            matches!(parse_zone("America/New_York"), Ok(LocalZone::Named(z)) if z.name() == "America/New_York")
        );
    }
}
