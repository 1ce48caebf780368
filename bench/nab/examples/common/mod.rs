//! What the development examples share: the corpus, and `key=value` settings from the
//! command line (a bad value panics: these are development aids).

use loglens_nab::{default_corpus, default_data_dir, Series};

/// The NAB corpus, or a panic naming where it was looked for.
pub fn corpus() -> Vec<Series> {
    default_corpus()
        .unwrap()
        .unwrap_or_else(|| panic!("no NAB data at {} (set NAB_DATA)", default_data_dir().display()))
}

fn setting(name: &str) -> Option<String> {
    std::env::args()
        .skip(1)
        .find_map(|a| a.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// The number given as `name=x`, else `default`.
#[allow(dead_code)] // not every example takes single numbers
pub fn arg(name: &str, default: f64) -> f64 {
    setting(name).map_or(default, |v| v.parse().unwrap())
}

/// The comma-separated values given as `name=a,b,…`, else those of `default`.
#[allow(dead_code)] // not every example takes lists
pub fn list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    let text = setting(name).unwrap_or_else(|| default.to_owned());
    text.split(',').map(|x| x.parse().unwrap()).collect()
}
