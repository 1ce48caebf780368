//! The pure core of loglens: the record model, the log formats (each parses a line into a
//! [`Record`] and renders one back), template mining, metrics, rollups, detection and alert
//! routing. The log generator that exercises it lives in the `loglens-gen` crate.
//!
//! Nothing here touches files, threads, clocks or the network: time enters as data
//! ([`Timestamp`]), lines enter as `&str`, and records leave as values. The engine, store and
//! CLI crates wrap this core with I/O.
//!
//! ```
//! use loglens_core::format::{Format, ParseContext};
//!
//! let line = r#"203.0.113.9 - - [10/Oct/2026:13:55:36 -0700] "GET /a HTTP/1.1" 200 2326 "-" "curl/8.0" 0.012"#;
//! let parser = Format::Combined.parser();
//! let record = parser.parse(line, &ParseContext::default()).unwrap();
//! assert_eq!(record.access.unwrap().status, 200);
//! assert_eq!(record.ts.to_rfc3339(), "2026-10-10T20:55:36Z");
//! ```
#![deny(missing_docs)]

pub mod alert;
pub mod detect;
pub mod format;
pub mod metrics;
pub mod partial;
pub mod record;
pub mod rollup;
pub mod sketch;
pub mod template;
pub mod time;
pub mod zone;

pub use record::{Access, Level, Record};
pub use time::Timestamp;
