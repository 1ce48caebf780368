//! The MySQL (and MariaDB) slow query log: one record per entry, a block of lines that starts
//! with its `# Time:` header. The header comments give the attrs, the statement the message:
//! ```text
//! # Time: 2026-10-11T22:14:15.003417Z
//! # User@Host: shop[shop] @ web-1 [10.0.0.5]  Id:    42
//! # Query_time: 2.000247  Lock_time: 0.000102 Rows_sent: 1  Rows_examined: 50000
//! use shop;
//! SET timestamp=1791756855;
//! SELECT * FROM orders WHERE customer_id = 42;
//! ```

use std::borrow::Cow;

use super::multiline::Continuation;
use super::{LineParser, ParseContext, ParseError};
use crate::record::Record;
use crate::time::{parse_iso_prefix, Civil, Timestamp};

/// Reads slow-log entries. A line is read when it is an entry's `# Time:` header (ISO 8601 as
/// MySQL 5.7+ and MariaDB 10.x+ write it, or MySQL 5.6's `yymmdd H:MM:SS`); every other line
/// of the entry continues it, and [`LineParser::parse_block`] reads the whole entry. MySQL
/// 5.6 writes `# Time:` only when the second changes, so its entries of one second are one
/// record there.
#[derive(Debug, Clone, Copy, Default)]
pub struct MysqlSlowParser;

const LAYOUT: ParseError = ParseError::Layout("MySQL slow log `# Time: <time>` entry header");
const TIME_HEADER: &str = "# Time: ";

impl LineParser for MysqlSlowParser {
    fn name(&self) -> &str {
        "mysql_slow"
    }

    fn description(&self) -> Option<&str> {
        Some("MySQL/MariaDB slow query log (one record per `# Time:` entry; Query_time, Rows_examined… as attrs)")
    }

    fn example(&self) -> Option<&str> {
        Some("# Time: 2026-10-11T22:14:15.003417Z")
    }

    /// Until the next `# Time:`, the entry's lines (`# User@Host:`, `SET timestamp=…;`, SQL).
    fn continuation(&self) -> Continuation {
        Continuation::Any
    }

    fn reads_blocks(&self) -> bool {
        true
    }

    /// The header line alone: its time, and the line as the message (so the joined block is
    /// the entry's text for [`LineParser::parse_block`]).
    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        let time = line.strip_prefix(TIME_HEADER).ok_or(LAYOUT)?.trim();
        Ok(Record::new(entry_time(time, ctx)?, line))
    }

    fn parse_block<'a>(&self, block: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        let mut lines = block.split('\n');
        let header = lines.next().unwrap_or_default();
        let mut record = self.parse(header, ctx)?;
        record.message = Cow::Borrowed("");
        let mut rest = block.get(header.len() + 1..).unwrap_or_default();
        while let Some(line) = rest.split('\n').next().filter(|l| is_entry_header(l)) {
            read_header(line, &mut record.attrs);
            rest = rest.get(line.len() + 1..).unwrap_or_default();
        }
        // The statement: what follows the headers, less the session lines MySQL adds.
        for line in rest.split('\n') {
            if let Some(db) = line.strip_prefix("use ").and_then(|l| l.strip_suffix(';')) {
                record.attrs.push((Cow::Borrowed("db"), Cow::Borrowed(db)));
            } else if !line.starts_with("SET timestamp=") {
                let at = line.as_ptr() as usize - rest.as_ptr() as usize;
                record.message = Cow::Borrowed(rest[at..].trim_end());
                break;
            }
        }
        Ok(record)
    }
}

/// A `# Key: value …` line of an entry's header (not the next entry's `# Time:`).
fn is_entry_header(line: &str) -> bool {
    line.starts_with("# ") && !line.starts_with(TIME_HEADER)
}

/// `# User@Host: user[user] @ host [ip]  Id: 42` and `# Query_time: 2.0  Lock_time: 0.0 …`
/// (MariaDB adds `# Thread_id: … Schema: … QC_hit: …` and more) as attrs with lowercase keys.
fn read_header<'a>(line: &'a str, attrs: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>) {
    let body = &line[2..];
    if let Some(who) = body.strip_prefix("User@Host: ") {
        read_user_host(who, attrs);
        return;
    }
    // `Key: value` pairs separated by white space.
    let mut tokens = body.split_whitespace().peekable();
    while let Some(token) = tokens.next() {
        let Some(key) = token.strip_suffix(':') else {
            continue;
        };
        if let Some(value) = tokens.next_if(|t| !t.ends_with(':')) {
            attrs.push((Cow::Owned(key.to_ascii_lowercase()), Cow::Borrowed(value)));
        }
    }
}

/// `shop[shop] @ web-1 [10.0.0.5]  Id:    42` → user, client host, client ip, thread id.
fn read_user_host<'a>(who: &'a str, attrs: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>) {
    let (user, rest) = who.split_once(" @ ").unwrap_or((who, ""));
    let user = user.split_once('[').map_or(user, |(name, _)| name).trim();
    let (rest, id) = rest.split_once("Id:").unwrap_or((rest, ""));
    let (host, ip) = match rest.split_once('[') {
        Some((host, ip)) => (host.trim(), ip.split_once(']').map_or(ip, |(ip, _)| ip).trim()),
        None => (rest.trim(), ""),
    };
    for (key, value) in [
        ("user", user),
        ("client_host", host),
        ("client_ip", ip),
        ("thread_id", id.trim()),
    ] {
        if !value.is_empty() {
            attrs.push((Cow::Borrowed(key), Cow::Borrowed(value)));
        }
    }
}

/// `2026-10-11T22:14:15.003417Z` (5.7+, MariaDB 10.x) or `261011 22:14:15` / `261011  9:14:15`
/// (5.6, the server's local time).
fn entry_time(text: &str, ctx: &ParseContext) -> Result<Timestamp, ParseError> {
    if let Ok((ts, rest)) = parse_iso_prefix(text.as_bytes(), ctx.zone) {
        return if rest.is_empty() {
            Ok(ts)
        } else {
            Err(ParseError::Invalid {
                field: "time",
                reason: "text after the timestamp",
            })
        };
    }
    let (date, time) = text.split_once(' ').ok_or(LAYOUT)?;
    let num = |s: &str| s.parse::<u8>().map_err(|_| LAYOUT);
    let (hour, minute_second) = time.trim_start().split_once(':').ok_or(LAYOUT)?;
    let (minute, second) = minute_second.split_once(':').ok_or(LAYOUT)?;
    if date.len() != 6 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LAYOUT);
    }
    let civil = Civil {
        year: 2000 + i32::from(num(&date[..2])?),
        month: num(&date[2..4])?,
        day: num(&date[4..])?,
        hour: num(hour)?,
        minute: num(minute)?,
        second: num(second)?,
        micros: 0,
    };
    ctx.zone.to_timestamp(civil).map_err(ParseError::Time)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ENTRY: &str = "# Time: 2026-10-11T22:14:15.003417Z\n\
                         # User@Host: shop[shop] @ web-1 [10.0.0.5]  Id:    42\n\
                         # Query_time: 2.000247  Lock_time: 0.000102 Rows_sent: 1  Rows_examined: 50000\n\
                         use shop;\n\
                         SET timestamp=1791756855;\n\
                         SELECT *\n\
                         FROM orders WHERE customer_id = 42;";

    fn attr<'r>(record: &'r Record<'_>, key: &str) -> Option<&'r str> {
        record
            .attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    #[test]
    fn an_entry_is_one_record_with_its_header_as_attrs() {
        let ctx = ParseContext::default();
        let record = MysqlSlowParser.parse_block(ENTRY, &ctx).unwrap();
        assert_eq!(record.ts.to_rfc3339(), "2026-10-11T22:14:15.003417Z");
        assert_eq!(record.message, "SELECT *\nFROM orders WHERE customer_id = 42;");
        let expected = [
            ("user", "shop"),
            ("client_host", "web-1"),
            ("client_ip", "10.0.0.5"),
            ("thread_id", "42"),
            ("query_time", "2.000247"),
            ("lock_time", "0.000102"),
            ("rows_sent", "1"),
            ("rows_examined", "50000"),
            ("db", "shop"),
        ];
        for (key, value) in expected {
            assert_eq!(attr(&record, key), Some(value), "{key}");
        }
    }

    #[test]
    fn reads_mariadb_headers_and_mysql_5_6_times() {
        let ctx = ParseContext::default();
        let block = "# Time: 261011  9:14:15\n\
                     # User@Host: root[root] @ localhost []\n\
                     # Thread_id: 8  Schema: shop  QC_hit: No\n\
                     # Query_time: 0.5  Lock_time: 0.0  Rows_sent: 0  Rows_examined: 0\n\
                     SET timestamp=1791745055;\n\
                     UPDATE stock SET n = n - 1;";
        let record = MysqlSlowParser.parse_block(block, &ctx).unwrap();
        assert_eq!(record.ts.to_rfc3339(), "2026-10-11T09:14:15Z");
        assert_eq!(record.message, "UPDATE stock SET n = n - 1;");
        assert_eq!(attr(&record, "client_host"), Some("localhost"));
        assert_eq!(attr(&record, "client_ip"), None);
        assert_eq!(attr(&record, "schema"), Some("shop"));
        assert_eq!(attr(&record, "qc_hit"), Some("No"));
        assert_eq!(attr(&record, "query_time"), Some("0.5"));
    }

    #[test]
    fn only_time_headers_start_records() {
        let ctx = ParseContext::default();
        assert!(MysqlSlowParser
            .parse("# Time: 2026-10-11T22:14:15Z", &ctx)
            .is_ok());
        for line in [
            "# User@Host: shop[shop] @ web-1 [10.0.0.5]  Id: 42",
            "SET timestamp=1791756855;",
            "# Time: yesterday",
            "/usr/sbin/mysqld, Version: 8.0.36 (MySQL Community Server - GPL). started with:",
        ] {
            assert!(MysqlSlowParser.parse(line, &ctx).is_err(), "{line}");
        }
    }
}
