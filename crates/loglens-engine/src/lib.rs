//! The loglens batch pipeline (stub).

pub mod generate;
