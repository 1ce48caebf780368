//! Multi-line records: which lines continue the record before them (Java, Python and Go stack
//! traces, indented lines) instead of starting one, and how far a record may grow.
//!
//! Why by shape and not "any line the parser refuses"? A damaged line (a write cut short, NUL
//! runs after a crash) is refused too, and it must stay an unparsed row, not vanish into the
//! message of the line before it. The shapes below are the ones Filebeat's and Vector's
//! documented multi-line recipes match; a line of that shape joins only when the file's format
//! refuses it, so a format that reads indented lines keeps them as records.

/// Which lines a format lets continue the record before it (only ever lines it refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Continuation {
    /// Lines of a stack trace's shape ([`continues_record`]): the default, safe for any format.
    #[default]
    StackTrace,
    /// Any line the format does not read, as Filebeat's `multiline.negate: true` recipe does
    /// with a pattern for the start of a record: for formats whose every record starts with a
    /// timestamp and whose messages span lines unindented (a SQL statement, a JSON payload, a
    /// Java exception's message); except a damaged line ([`looks_damaged`]), which stays an
    /// unparsed row rather than silently change the record before it.
    Any,
}

impl Continuation {
    /// Whether `line`, which the format refused, joins the record before it.
    pub fn joins(self, line: &str) -> bool {
        match self {
            Continuation::StackTrace => continues_record(line),
            Continuation::Any => !looks_damaged(line),
        }
    }
}

/// Whether a line the format refused looks like a damaged record rather than the next line of
/// a message: it starts with a digit (a timestamp cut short or garbled: a write torn by a
/// crash) or holds a control character other than tab, or U+FFFD (NUL runs, escape bytes,
/// invalid UTF-8).
pub fn looks_damaged(line: &str) -> bool {
    line.starts_with(|c: char| c.is_ascii_digit())
        || line
            .chars()
            .any(|c| (c.is_control() && c != '\t') || c == '\u{fffd}')
}

/// Most physical lines in one record; later continuation lines are kept as unparsed rows.
pub const MAX_RECORD_LINES: u32 = 1000;

/// Most bytes in one record's message; later continuation lines are kept as unparsed rows.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Starts of lines that continue a traceback without being indented.
const CONTINUING_STARTS: [&str; 8] = [
    "Caused by: ",
    "Suppressed: ",
    "Exception in thread \"",
    "Traceback (most recent call last):",
    "During handling of the above exception",
    "The above exception was the direct cause",
    "panic: ",
    "created by ",
];

/// Last words of exception class names (`java.io.IOException`, `ValueError`).
const EXCEPTION_SUFFIXES: [&str; 7] = [
    "Exception",
    "Error",
    "Throwable",
    "Warning",
    "Interrupt",
    "Exit",
    "Fault",
];

/// Whether `line` has the shape of a line that continues the record before it: indented
/// text, a traceback header or footer, an exception line (`pkg.SomeException: message`), or a
/// Go goroutine header or frame.
pub fn continues_record(line: &str) -> bool {
    match line.as_bytes().first() {
        None => false,
        Some(b' ' | b'\t') => line.trim_start().chars().next().is_some_and(|c| !c.is_control()),
        Some(_) => {
            CONTINUING_STARTS.iter().any(|s| line.starts_with(s))
                || is_exception_line(line)
                || is_goroutine_header(line)
                || is_go_frame(line)
        }
    }
}

/// The first line of a message: what template mining reads, so that a record's stack trace
/// does not make every occurrence of one log statement a template of its own.
pub fn head(message: &str) -> &str {
    // memchr rather than `split_once('\n')`: this runs twice per record.
    memchr::memchr(b'\n', message.as_bytes()).map_or(message, |end| &message[..end])
}

/// `java.lang.IllegalStateException: text`, `ValueError`, `Outer$InnerError: text`.
fn is_exception_line(line: &str) -> bool {
    // memchr rather than `split_once(':')`: every line that could start a record is tested.
    let (name, rest) =
        memchr::memchr(b':', line.as_bytes()).map_or((line, ""), |i| (&line[..i], &line[i + 1..]));
    let dotted_name = !name.is_empty()
        && name.split('.').all(|part| {
            starts_like_a_name(part)
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        });
    let last = name.rsplit('.').next().unwrap_or(name);
    dotted_name
        && EXCEPTION_SUFFIXES.iter().any(|s| last.ends_with(s))
        && (rest.is_empty() || rest.starts_with(' '))
}

/// Identifiers start with a letter, `_` or `$`; so no timestamp or address does.
fn starts_like_a_name(text: &str) -> bool {
    text.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'$')
}

/// `goroutine 1 [running]:`.
fn is_goroutine_header(line: &str) -> bool {
    line.strip_prefix("goroutine ")
        .and_then(|rest| rest.split_once(" ["))
        .is_some_and(|(id, _)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        && line.ends_with("]:")
}

/// `main.main()`, `net/http.(*conn).serve(0xc000118000, {0x6f7a58, 0xc000112000})`: a dotted
/// function name without spaces, then its arguments to the end of the line.
fn is_go_frame(line: &str) -> bool {
    let Some(open) = memchr::memchr(b'(', line.as_bytes()) else {
        return false;
    };
    // A method receiver `(*T)` comes after a dot, the argument list after the name.
    let args_open = line
        .match_indices('(')
        .map(|(i, _)| i)
        .find(|&i| i > 0 && line.as_bytes().get(i - 1) != Some(&b'.'))
        .unwrap_or(open);
    let name = &line[..args_open];
    name.contains('.')
        && starts_like_a_name(name)
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'_' | b'/' | b'-' | b'*' | b'(' | b')' | b'[' | b']')
        })
        && line.ends_with(')')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Shapes from the tracebacks each runtime documents.
    #[test]
    fn traceback_lines_continue_and_log_lines_do_not() {
        let continuing = [
            // Java (Throwable.printStackTrace's documented output).
            "java.lang.NullPointerException",
            "java.lang.IllegalStateException: connection pool exhausted",
            "\tat com.example.MyClass.mash(MyClass.java:9)",
            "        at org.apache.hadoop.ipc.Client.call(Client.java:1475)",
            "\t... 1 more",
            "Caused by: java.io.IOException: Broken pipe",
            "Exception in thread \"main\" java.lang.RuntimeException: boom",
            "com.example.Outer$InnerError: nested",
            // Python (traceback module).
            "Traceback (most recent call last):",
            "  File \"app.py\", line 3, in <module>",
            "    raise ValueError(\"bad\")",
            "ValueError: bad",
            "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
            "KeyboardInterrupt",
            "During handling of the above exception, another exception occurred:",
            // Go (runtime panic output).
            "panic: runtime error: index out of range [5] with length 3",
            "goroutine 1 [running]:",
            "main.main()",
            "net/http.(*conn).serve(0xc000118000, {0x6f7a58, 0xc000112000})",
            "\t/usr/local/go/src/net/http/server.go:1995 +0x612",
            "created by net/http.(*Server).Serve in goroutine 1",
        ];
        for line in continuing {
            assert!(continues_record(line), "{line:?} should continue a record");
        }
        let starting = [
            "",
            "   ",
            "2026-03-04 05:06:07,123 ERROR [main] c.e.App: failed",
            "Mar  4 05:06:07 box sshd[1]: hi",
            "203.0.113.9 - - [10/Oct/2026:13:55:36 +0000] \"GET / HTTP/1.1\" 200 1",
            "{\"level\":\"error\",\"msg\":\"failed\"}",
            "ERROR: something failed",
            "Error in handler, retrying",
            "\u{0}\u{0}\u{0}garbage",
            " \u{0}\u{0}",
            "#@~\u{1b}\u{7f}",
            "E0304 05:06:07.123456    42 main.go:12] failed",
            "goroutine leak detected",
            "time=2026-03-04T05:06:07Z level=info msg=ok",
        ];
        for line in starting {
            assert!(!continues_record(line), "{line:?} should start a record");
        }
    }

    #[test]
    fn head_is_the_first_line() {
        assert_eq!(head("failed\n\tat a.B.c(B.java:1)"), "failed");
        assert_eq!(head("one line"), "one line");
    }

    proptest! {
        /// A line that starts with a digit (every timestamp-first format) never continues.
        #[test]
        fn timestamp_first_lines_never_continue(line in "[0-9][ -~]{0,80}") {
            prop_assert!(!continues_record(&line));
        }
    }
}
