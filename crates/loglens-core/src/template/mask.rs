//! Masking: the step before mining that replaces the variable parts of a message (numbers,
//! addresses, ids, paths, durations, and whatever user regexes match) with `<*>`, so that
//! messages of one event look alike before the tree ever sees them.
//!
//! Why a token classifier and not a list of regexes? The built-in maskers look at each
//! whitespace token once, byte by byte (is it all digits? an IPv4 address? a UUID?), and a
//! token without a digit, slash or backslash — most words — is passed through after one scan.
//! Running a dozen regexes over every line costs several times more. User regexes, which can
//! span tokens, run first and only when configured.

use std::borrow::Cow;

use regex::Regex;

/// The wildcard that stands for a variable part, in masked messages and in templates.
pub const WILDCARD: &str = "<*>";

/// Whether `s` contains `<*>` (a byte search for `*`, cheaper than a substring search).
pub(crate) fn has_wildcard(s: &str) -> bool {
    let b = s.as_bytes();
    memchr::memchr_iter(b'*', b).any(|i| i > 0 && i + 1 < b.len() && b[i - 1] == b'<' && b[i + 1] == b'>')
}

/// A user masking rule: every match of `regex` in the message is replaced by `replacement`
/// (normally [`WILDCARD`]) before the message is split into tokens.
#[derive(Debug, Clone)]
pub struct MaskRule {
    regex: Regex,
    replacement: String,
}

impl MaskRule {
    /// A rule replacing each match of `pattern` (regex crate syntax) with [`WILDCARD`].
    pub fn new(pattern: &str) -> Result<MaskRule, regex::Error> {
        MaskRule::with_replacement(pattern, WILDCARD)
    }

    /// A rule replacing each match of `pattern` with `replacement`, taken literally (`$` is
    /// not a group reference).
    pub fn with_replacement(pattern: &str, replacement: &str) -> Result<MaskRule, regex::Error> {
        Ok(MaskRule {
            regex: Regex::new(pattern)?,
            replacement: replacement.to_owned(),
        })
    }

    /// The pattern as given.
    pub fn pattern(&self) -> &str {
        self.regex.as_str()
    }

    /// The replacement text.
    pub fn replacement(&self) -> &str {
        &self.replacement
    }

    fn apply<'a>(&self, text: Cow<'a, str>) -> Cow<'a, str> {
        match self.regex.replace_all(&text, regex::NoExpand(&self.replacement)) {
            Cow::Borrowed(_) => text,
            Cow::Owned(replaced) => Cow::Owned(replaced),
        }
    }
}

/// Which built-in maskers run on each token. Each is a check on one token (or on one part of a
/// token between punctuation such as `=`, `:`, `,`, brackets), never a regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinMasks {
    /// Decimal numbers: `42`, `-7`, `+3`, `0.25`, `1,024` is two numbers.
    pub numbers: bool,
    /// IPv4 addresses with an optional `:port` (`10.0.0.1:8080`), IPv6 addresses
    /// (`fe80::1`, `[::1]:443`).
    pub ip: bool,
    /// Hexadecimal: `0x1f` and runs of 8 or more hex digits that contain a digit (`a64f99c2`).
    pub hex: bool,
    /// UUIDs `8-4-4-4-12` (case-insensitive).
    pub uuid: bool,
    /// Absolute paths and URLs: `/var/log/x`, `C:\Windows\x`, `http://h/p`.
    pub paths: bool,
    /// Numbers with a time or size unit: `12ms`, `1.5s`, `3h`, `16K`, `64MB`.
    pub units: bool,
    /// Pieces of a word that start with a digit (`node-<*>`, `attempt_<*>_m_<*>`), and
    /// pieces partly replaced by a user rule (`blk_<*>` becomes `<*>`). Words with a digit
    /// inside (`alt0`, `SOCKS5`, `tty2`) stay: they are usually names.
    pub digits: bool,
    /// Day and month names (`Fri`, `Jun`): dates written inside a message.
    pub dates: bool,
    /// Value literals `true`, `false`, `null`.
    pub literals: bool,
}

impl BuiltinMasks {
    /// Every built-in masker on (the default).
    pub const ALL: BuiltinMasks = BuiltinMasks {
        numbers: true,
        ip: true,
        hex: true,
        uuid: true,
        paths: true,
        units: true,
        digits: true,
        dates: true,
        literals: true,
    };

    /// Every built-in masker off: only user rules mask (classic Drain).
    pub const NONE: BuiltinMasks = BuiltinMasks {
        numbers: false,
        ip: false,
        hex: false,
        uuid: false,
        paths: false,
        units: false,
        digits: false,
        dates: false,
        literals: false,
    };

    fn any(&self) -> bool {
        *self != BuiltinMasks::NONE
    }
}

impl Default for BuiltinMasks {
    fn default() -> Self {
        BuiltinMasks::ALL
    }
}

/// Applies the user rules, then splits on white space and runs the built-in maskers on each
/// token.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    rules: Vec<MaskRule>,
    builtin: BuiltinMasks,
}

impl Masker {
    /// A masker with these user rules (applied in order) and built-in maskers.
    pub fn new(rules: Vec<MaskRule>, builtin: BuiltinMasks) -> Masker {
        Masker { rules, builtin }
    }

    /// The message after the user rules (the text the tokens are cut from).
    pub fn apply_rules<'a>(&self, message: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(message);
        for rule in &self.rules {
            text = rule.apply(text);
        }
        text
    }

    /// Masks one token with the built-in maskers.
    pub fn mask_token<'a>(&self, token: &'a str) -> Cow<'a, str> {
        if !self.builtin.any() {
            return Cow::Borrowed(token);
        }
        mask_token(token, &self.builtin)
    }

    /// The masked tokens of a message, pushed onto `out` (cleared first).
    pub fn tokens<'a>(&self, text: &'a str, out: &mut Vec<Cow<'a, str>>) {
        out.clear();
        out.extend(text.split_whitespace().map(|t| self.mask_token(t)));
    }

    /// The masked message, tokens joined by one space.
    pub fn mask(&self, message: &str) -> String {
        let text = self.apply_rules(message);
        let mut tokens = Vec::new();
        self.tokens(&text, &mut tokens);
        tokens.join(" ")
    }
}

/// Characters that separate the parts of a token that are checked on their own.
fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'=' | b':'
            | b','
            | b';'
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'<'
            | b'>'
            | b'@'
            | b'#'
            | b'/'
            | b'|'
            | b'"'
            | b'\''
            | b'*'
            | b'\\'
            | b'!'
            | b'?'
            | b'&'
            | b'+'
            | b'$'
            | b'%'
    )
}

/// Characters that separate the sub-parts of a part for the `digits` masker.
fn is_joiner(b: u8) -> bool {
    matches!(b, b'-' | b'_' | b'.')
}

/// Leading characters stripped before checking a token as a whole.
fn is_open(b: u8) -> bool {
    matches!(b, b'(' | b'[' | b'{' | b'<' | b'"' | b'\'' | b'`')
}

/// Trailing characters stripped before checking a token as a whole.
fn is_close(b: u8) -> bool {
    matches!(
        b,
        b')' | b']' | b'}' | b'>' | b'"' | b'\'' | b'`' | b',' | b';' | b':' | b'.' | b'!' | b'?'
    )
}

fn mask_token<'a>(token: &'a str, masks: &BuiltinMasks) -> Cow<'a, str> {
    let bytes = token.as_bytes();
    let interesting = bytes.iter().any(|b| b.is_ascii_digit() || is_delimiter(*b));
    // The token as a whole, without wrapping brackets, quotes and trailing punctuation.
    let start = bytes.iter().position(|b| !is_open(*b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_close(*b))
        .map_or(start, |i| i + 1)
        .max(start);
    let core = &token[start..end];
    if core.is_empty() || core == WILDCARD {
        return Cow::Borrowed(token);
    }
    if interesting && masks.ip && bytes[0] == b'[' && is_ipv6(&token[..end]) {
        return Cow::Owned(format!("{WILDCARD}{}", &token[end..]));
    }
    let whole = if interesting {
        is_variable_whole(core, masks)
    } else {
        is_variable_word(core, masks)
    };
    if whole {
        let mut out = String::with_capacity(start + WILDCARD.len() + (token.len() - end));
        out.push_str(&token[..start]);
        out.push_str(WILDCARD);
        out.push_str(&token[end..]);
        return Cow::Owned(out);
    }
    if !interesting {
        return Cow::Borrowed(token);
    }
    // Part by part, between delimiters.
    let mut out: Option<String> = None;
    let mut part_start = 0;
    let mut i = 0;
    while i <= bytes.len() {
        if i < bytes.len() && bytes[i..].starts_with(WILDCARD.as_bytes()) {
            // `<*>` belongs to the part it is in.
            i += WILDCARD.len();
            continue;
        }
        if i < bytes.len() && !is_delimiter(bytes[i]) {
            i += 1;
            continue;
        }
        let part = &token[part_start..i];
        match mask_part(part, masks) {
            Some(masked) => {
                let buf = out.get_or_insert_with(|| token[..part_start].to_owned());
                buf.push_str(&masked);
            }
            None => {
                if let Some(buf) = out.as_mut() {
                    buf.push_str(part);
                }
            }
        }
        if i < bytes.len() {
            if let Some(buf) = out.as_mut() {
                buf.push(char::from(bytes[i]));
            }
        }
        part_start = i + 1;
        i += 1;
    }
    match out {
        Some(s) => Cow::Owned(s),
        None => Cow::Borrowed(token),
    }
}

/// The masked form of one part between delimiters, `None` if it stays as it is.
fn mask_part(part: &str, m: &BuiltinMasks) -> Option<String> {
    if part.is_empty() || part == WILDCARD {
        return None;
    }
    let b = part.as_bytes();
    // A word partly replaced by a user rule (`blk_<*>`, `ae<*>f-<*>`) is a variable.
    if has_wildcard(part) {
        return Some(WILDCARD.to_owned());
    }
    if !b.iter().any(u8::is_ascii_digit) {
        return is_variable_word(part, m).then(|| WILDCARD.to_owned());
    }
    if is_variable_part(part, m) {
        return Some(WILDCARD.to_owned());
    }
    if !m.digits {
        return None;
    }
    // Sub-parts between `-`, `_`, `.` that start with a digit: `node-<*>`; with two or more
    // such sub-parts the part is an id (`attempt_1445_0020_m_000001_0`) and goes whole.
    // `alt0`, `SOCKS5`, `tty2` stay (a word with a digit in it is usually a name).
    let digit_led = b
        .split(|c| is_joiner(*c))
        .filter(|sub| sub.first().is_some_and(u8::is_ascii_digit) || (m.hex && is_hex(sub)))
        .count();
    if digit_led >= 2 {
        return Some(WILDCARD.to_owned());
    }
    let mut out = String::with_capacity(part.len());
    let mut changed = false;
    let mut sub_start = 0;
    for i in 0..=b.len() {
        if i < b.len() && !is_joiner(b[i]) {
            continue;
        }
        let sub = &part[sub_start..i];
        if sub.as_bytes().first().is_some_and(u8::is_ascii_digit) || (m.hex && is_hex(sub.as_bytes())) {
            out.push_str(WILDCARD);
            changed = true;
        } else {
            out.push_str(sub);
        }
        if i < b.len() {
            out.push(char::from(b[i]));
        }
        sub_start = i + 1;
    }
    changed.then_some(out)
}

/// Checks that span delimiters: addresses with ports, IPv6, paths, URLs, UUIDs.
fn is_variable_whole(core: &str, m: &BuiltinMasks) -> bool {
    (m.ip && (is_ipv4_port(core) || is_ipv6(core)))
        || (m.uuid && is_uuid(core))
        || (m.paths && is_path(core))
        || (core.bytes().any(|b| b.is_ascii_digit()) && is_variable_part(core, m))
        || is_variable_word(core, m)
}

/// Checks on one part between delimiters that contains a digit.
fn is_variable_part(part: &str, m: &BuiltinMasks) -> bool {
    let b = part.as_bytes();
    (m.numbers && is_number(b))
        || (m.hex && is_hex(b))
        || (m.units && is_number_with_unit(b))
        || (m.ip && is_ipv4_port(part))
        || (m.uuid && is_uuid(part))
}

/// Words that are values: day and month names, `true`/`false`/`null`.
fn is_variable_word(word: &str, m: &BuiltinMasks) -> bool {
    const DATES: &[&str] = &[
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "January",
        "February",
        "March",
        "April",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const LITERALS: &[&str] = &[
        "true", "false", "null", "True", "False", "TRUE", "FALSE", "NULL", "None",
    ];
    (m.dates && word.len() >= 3 && word.len() <= 9 && DATES.contains(&word))
        || (m.literals && word.len() >= 4 && word.len() <= 5 && LITERALS.contains(&word))
}

/// `[+-]digits[.digits]`.
fn is_number(b: &[u8]) -> bool {
    number_len(b) == b.len() && !b.is_empty()
}

/// Length of the leading `[+-]digits[.digits]` of `b`, 0 if none.
fn number_len(b: &[u8]) -> usize {
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == digits_start {
        return 0;
    }
    if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

/// A number followed by a time or size unit.
fn is_number_with_unit(b: &[u8]) -> bool {
    let n = number_len(b);
    if n == 0 {
        return false;
    }
    const UNITS: &[&[u8]] = &[
        b"ns",
        b"us",
        b"\xc2\xb5s",
        b"ms",
        b"s",
        b"sec",
        b"secs",
        b"m",
        b"min",
        b"mins",
        b"h",
        b"d",
        b"b",
        b"B",
        b"k",
        b"K",
        b"kb",
        b"KB",
        b"kB",
        b"KiB",
        b"M",
        b"MB",
        b"MiB",
        b"G",
        b"GB",
        b"GiB",
        b"T",
        b"TB",
        b"TiB",
    ];
    UNITS.contains(&&b[n..])
}

/// `0x` hex, or 8+ hex digits with at least one decimal digit.
fn is_hex(b: &[u8]) -> bool {
    if b.len() > 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') {
        return b[2..].iter().all(u8::is_ascii_hexdigit);
    }
    b.len() >= 8 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit)
}

/// `a.b.c.d` with an optional `:port`, each octet 1-3 digits.
fn is_ipv4_port(s: &str) -> bool {
    let (addr, port) = match s.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    let mut octets = 0;
    for part in addr.split('.') {
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        octets += 1;
    }
    octets == 4
}

/// An IPv6 address, optionally in brackets with a port: hex groups and colons with at least
/// two colons, a `::` or seven colons, and at least one digit.
fn is_ipv6(s: &str) -> bool {
    let s = match s.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((addr, port)) => {
                let port_ok = port.is_empty()
                    || (port.len() > 1
                        && port.starts_with(':')
                        && port[1..].bytes().all(|b| b.is_ascii_digit()));
                if !port_ok {
                    return false;
                }
                addr
            }
            None => return false,
        },
        None => s,
    };
    let colons = s.bytes().filter(|b| *b == b':').count();
    if !(2..=7).contains(&colons) || !(s.contains("::") || colons == 7) {
        return false;
    }
    // An embedded IPv4 tail (`::ffff:10.0.0.1`) is allowed.
    let (groups, tail) = match s.rsplit_once(':') {
        Some((head, last)) if last.contains('.') => (head, Some(last)),
        _ => (s, None),
    };
    if let Some(t) = tail {
        if !is_ipv4_port(t) || t.contains(':') {
            return false;
        }
    }
    groups
        .split(':')
        .all(|g| g.len() <= 4 && g.bytes().all(|b| b.is_ascii_hexdigit()))
        && s.bytes().any(|b| b.is_ascii_digit())
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// An absolute Unix path (`/a/b`, at least one character after the slash), a Windows path
/// (`C:\x`, `\\host\x`), or a URL (`scheme://…`).
fn is_path(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b'/' && b[1] != b'/' && !has_wildcard(s) {
        return true;
    }
    if b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\' {
        return true;
    }
    if s.starts_with("\\\\") && b.len() > 2 {
        return true;
    }
    match s.find("://") {
        Some(i) => i > 0 && s[..i].bytes().all(|c| c.is_ascii_alphanumeric() || c == b'+'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(token: &str) -> String {
        mask_token(token, &BuiltinMasks::ALL).into_owned()
    }

    fn mask_without_digits(token: &str) -> String {
        mask_token(
            token,
            &BuiltinMasks {
                digits: false,
                ..BuiltinMasks::ALL
            },
        )
        .into_owned()
    }

    #[test]
    fn numbers_addresses_and_ids() {
        assert_eq!(mask("42"), "<*>");
        assert_eq!(mask("-7"), "<*>");
        assert_eq!(mask("0.2477829"), "<*>");
        assert_eq!(mask("(42),"), "(<*>),");
        assert_eq!(mask("10.251.73.220:50010"), "<*>");
        assert_eq!(mask("/10.251.73.220:50010"), "<*>");
        assert_eq!(mask("[fe80::1]:443"), "<*>");
        assert_eq!(mask("2001:db8::ff00:42:8329"), "<*>");
        assert_eq!(mask("0x7fed806eb5d"), "<*>");
        assert_eq!(mask("@0xff83e97c"), "@<*>");
        assert_eq!(mask("[req-38101a0b-2096-447d-96ea-a692162415ae"), "[<*>");
        assert_eq!(mask("38101a0b-2096-447d-96ea-a692162415ae"), "<*>");
        assert_eq!(mask("/etc/httpd/conf/workers2.properties"), "<*>");
        assert_eq!(mask("C:\\Windows\\winsxs\\x.dll"), "<*>");
        assert_eq!(mask("http://example.com/a?b=1"), "<*>");
        assert_eq!(mask("12ms"), "<*>");
        assert_eq!(mask("1.5s"), "<*>");
        assert_eq!(mask("64MB"), "<*>");
    }

    #[test]
    fn parts_between_punctuation() {
        assert_eq!(mask("uid=0"), "uid=<*>");
        assert_eq!(mask("(uid=0)"), "(uid=<*>)");
        assert_eq!(mask("batch:1"), "batch:<*>");
        assert_eq!(mask("PS/2"), "PS/<*>");
        assert_eq!(mask("CPU#0"), "CPU#<*>");
        assert_eq!(mask("size=12,free=3"), "size=<*>,free=<*>");
    }

    #[test]
    fn words_stay() {
        assert_eq!(mask("connection"), "connection");
        assert_eq!(mask("deadbeef"), "deadbeef");
        assert_eq!(mask("<*>"), "<*>");
        assert_eq!(mask("/"), "/");
        assert_eq!(mask("a,b"), "a,b");
    }

    #[test]
    fn digit_words_only_with_the_digits_masker() {
        assert_eq!(mask("node-109"), "node-<*>");
        assert_eq!(mask("attempt_1445144423722_0020_m_000001_0"), "<*>");
        assert_eq!(mask("root17_domain"), "root17_domain");
        assert_eq!(mask("alt0"), "alt0");
        assert_eq!(mask("ae<*>a<*>b-eec<*>]"), "<*>]");
        assert_eq!(mask_without_digits("node-109"), "node-109");
        assert_eq!(mask_without_digits("blk_123"), "blk_123");
        assert_eq!(mask_without_digits("a64f99c2"), "<*>");
        assert_eq!(mask("Fri"), "<*>");
        assert_eq!(mask("ret:false,"), "ret:<*>,");
    }

    #[test]
    fn user_rules_run_first_in_order() {
        let rules = vec![
            MaskRule::new(r"blk_-?\d+").expect("valid"),
            MaskRule::with_replacement(r"user \w+", "user $1").expect("valid"),
        ];
        let masker = Masker::new(rules, BuiltinMasks::NONE);
        assert_eq!(masker.mask("got blk_-42 for user bob"), "got <*> for user $1");
        let masker = Masker::new(
            vec![MaskRule::new(r"blk_-?\d+").expect("valid")],
            BuiltinMasks::ALL,
        );
        assert_eq!(masker.mask("  got blk_-42   size 67108864 "), "got <*> size <*>");
    }
}
