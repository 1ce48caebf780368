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

use super::cache::{Doorkeeper, FxHashMap};

/// The wildcard that stands for a variable part, in masked messages and in templates.
pub const WILDCARD: &str = "<*>";

/// Whether `s` contains `<*>` (a byte search for `*`, cheaper than a substring search).
pub(crate) fn has_wildcard(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() > 64 {
        return memchr::memchr_iter(b'*', b)
            .any(|i| i > 0 && i + 1 < b.len() && b[i - 1] == b'<' && b[i + 1] == b'>');
    }
    // Tokens are short: a plain loop costs less than setting up a vectorized search.
    (1..b.len().saturating_sub(1)).any(|i| b[i] == b'*' && b[i - 1] == b'<' && b[i + 1] == b'>')
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
        let mut out = String::new();
        mask_token_into(token, &self.builtin, &mut out);
        if out == token {
            Cow::Borrowed(token)
        } else {
            Cow::Owned(out)
        }
    }

    /// The masked tokens of a message, pushed onto `out` (cleared first).
    pub fn tokens<'a>(&self, text: &'a str, out: &mut Vec<Cow<'a, str>>) {
        out.clear();
        out.extend(text.split_whitespace().map(|t| self.mask_token(t)));
    }

    /// The masked message, tokens joined by one space.
    pub fn mask(&self, message: &str) -> String {
        let mut out = String::new();
        self.mask_into(message, &mut out);
        out
    }

    /// Writes the masked message into `out` (cleared first): user rules, then the built-in
    /// maskers on each token, tokens joined by one space. Why a buffer? Mining calls this for
    /// every message; one reused buffer means no allocation per message or per token.
    pub fn mask_into(&self, message: &str, out: &mut String) {
        out.clear();
        let text = self.apply_rules(message);
        let builtin = self.builtin.any();
        let mut push = |token: &str| {
            if !out.is_empty() {
                out.push(' ');
            }
            if builtin {
                mask_token_into(token, &self.builtin, out);
            } else {
                out.push_str(token);
            }
        };
        if text.is_ascii() {
            ascii_tokens(&text, &mut push);
        } else {
            text.split_whitespace().for_each(push);
        }
    }
}

/// Tokens at most this long are remembered by a [`TokenMemo`].
const MEMO_MAX_TOKEN: usize = 48;
/// Tokens a [`TokenMemo`] holds before it is emptied.
const MEMO_MAX_ENTRIES: usize = 1 << 14;

/// The masked form of tokens seen before. Why? Masking a token with digits or punctuation
/// (`ssh2`, `pam_unix(cron:session):`, `TOS=0x00`) takes several checks part by part, and
/// such tokens repeat from message to message; masking is a function of the token alone, so
/// the remembered form is exact. Plain words and plain numbers are cheaper to mask than to
/// look up, and are not kept. A token is kept from the second time it is seen, whatever
/// masking makes of it: keeping only tokens that masking leaves alone measured slower (512M
/// against 447M instructions per 100k syslog messages), as repeated masked tokens (`LEN=43`,
/// `TOS=0x00`) then miss, while values seen once (addresses, ids) only crowd the map.
/// Bounded: emptied when full.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenMemo {
    map: FxHashMap<Box<str>, Box<str>>,
    /// Only tokens seen twice are kept (see [`Doorkeeper`]): most values are seen once.
    door: Doorkeeper,
}

impl Masker {
    /// Whether this masker has user rules (which can look at digits' values and span tokens).
    pub(crate) fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// [`Masker::mask_into`], with the masked forms of tokens remembered in `memo`. Also
    /// pushes onto `pins` the byte range, in the text after the user rules, of each token
    /// whose masked form still holds a digit, and returns the number of tokens.
    pub(crate) fn mask_into_memo(
        &self,
        message: &str,
        out: &mut String,
        memo: &mut TokenMemo,
        pins: &mut Vec<(u32, u32)>,
    ) -> usize {
        out.clear();
        let text = self.apply_rules(message);
        let base = text.as_ptr() as usize;
        let mut tokens = 0usize;
        if !self.builtin.any() {
            ascii_or_unicode_tokens(&text, &mut |token| {
                if !out.is_empty() {
                    out.push(' ');
                }
                tokens += 1;
                if token.bytes().any(|b| b.is_ascii_digit()) {
                    pin(pins, token, base);
                }
                out.push_str(token);
            });
            return tokens;
        }
        ascii_or_unicode_tokens(&text, &mut |token| {
            if !out.is_empty() {
                out.push(' ');
            }
            tokens += 1;
            let start = out.len();
            mask_memo_token(token, &self.builtin, out, memo);
            if out.as_bytes()[start..].iter().any(u8::is_ascii_digit) {
                pin(pins, token, base);
            }
        });
        tokens
    }
}

impl Masker {
    /// Whether masking makes `token` (one token, without user rules) `<*>` as a whole;
    /// `None` if it is not UTF-8. `scratch` is reused.
    pub(crate) fn masks_to_wildcard(&self, token: &[u8], scratch: &mut String) -> Option<bool> {
        let token = std::str::from_utf8(token).ok()?;
        if !self.builtin.any() {
            return Some(token == WILDCARD);
        }
        scratch.clear();
        mask_token_into(token, &self.builtin, scratch);
        Some(scratch == WILDCARD)
    }
}

/// Records the byte range of `token` (a slice of the text starting at address `base`).
fn pin(pins: &mut Vec<(u32, u32)>, token: &str, base: usize) {
    let start = (token.as_ptr() as usize).wrapping_sub(base);
    let start = u32::try_from(start).unwrap_or(u32::MAX);
    let end = start.saturating_add(u32::try_from(token.len()).unwrap_or(u32::MAX));
    pins.push((start, end));
}

/// Appends `token` masked by the built-in maskers to `out`, through the memo when worth it.
fn mask_memo_token(token: &str, builtin: &BuiltinMasks, out: &mut String, memo: &mut TokenMemo) {
    let bytes = token.as_bytes();
    let classes = bytes.iter().fold(0u8, |all, b| all | class(*b));
    let worth = token.len() <= MEMO_MAX_TOKEN
        && classes & (DIGIT | DELIMITER) != 0
        && !(classes == DIGIT && bytes.iter().all(u8::is_ascii_digit));
    if !worth {
        mask_token_into(token, builtin, out);
        return;
    }
    if let Some(masked) = memo.map.get(token) {
        out.push_str(masked);
        return;
    }
    let start = out.len();
    mask_token_into(token, builtin, out);
    if !memo.door.admit(bytes) {
        return;
    }
    if memo.map.len() >= MEMO_MAX_ENTRIES {
        memo.map.clear();
    }
    memo.map.insert(Box::from(token), Box::from(&out[start..]));
}

/// The white-space separated tokens of `text`, as `split_whitespace` cuts them.
fn ascii_or_unicode_tokens(text: &str, f: &mut impl FnMut(&str)) {
    if text.is_ascii() {
        ascii_tokens(text, f);
    } else {
        text.split_whitespace().for_each(f);
    }
}

/// Calls `f` on each white-space separated token of ASCII `text`, as `split_whitespace` cuts
/// it (which counts vertical tab as white space, unlike `split_ascii_whitespace`), without its
/// per-character Unicode checks.
fn ascii_tokens(text: &str, f: &mut impl FnMut(&str)) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && is_ascii_space(b[i]) {
            i += 1;
        }
        let start = i;
        while i < b.len() && !is_ascii_space(b[i]) {
            i += 1;
        }
        if i > start {
            f(&text[start..i]);
        }
    }
}

/// The ASCII characters Unicode counts as white space.
fn is_ascii_space(b: u8) -> bool {
    b <= b' ' && matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Byte classes, one bit each, looked up in [`CLASSES`].
const DIGIT: u8 = 1;
/// Separates the parts of a token that are checked on their own.
const DELIMITER: u8 = 2;
/// Separates the sub-parts of a part for the `digits` masker.
const JOINER: u8 = 4;
/// Stripped at the start before checking a token as a whole.
const OPEN: u8 = 8;
/// Stripped at the end before checking a token as a whole.
const CLOSE: u8 = 16;
/// `:`, which IPv6 addresses and URLs need.
const COLON: u8 = 32;
/// `/` or `\\`, which paths and URLs need.
const SLASH: u8 = 64;
/// `*`, which a `<*>` left by a user rule needs.
const STAR: u8 = 128;

/// Why a table? The classifier looks at every byte of every message; one load and a bit test
/// per byte instead of a chain of comparisons.
static CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = b'0';
    while b <= b'9' {
        t[b as usize] |= DIGIT;
        b += 1;
    }
    let delimiters = b"=:,;()[]{}<>@#/|\"'*\\!?&+$%";
    let mut i = 0;
    while i < delimiters.len() {
        t[delimiters[i] as usize] |= DELIMITER;
        i += 1;
    }
    let joiners = b"-_.";
    i = 0;
    while i < joiners.len() {
        t[joiners[i] as usize] |= JOINER;
        i += 1;
    }
    let open = b"([{<\"'`";
    i = 0;
    while i < open.len() {
        t[open[i] as usize] |= OPEN;
        i += 1;
    }
    let close = b")]}>\"'`,;:.!?";
    i = 0;
    while i < close.len() {
        t[close[i] as usize] |= CLOSE;
        i += 1;
    }
    t[b':' as usize] |= COLON;
    t[b'/' as usize] |= SLASH;
    t[b'\\' as usize] |= SLASH;
    t[b'*' as usize] |= STAR;
    t
};

fn class(b: u8) -> u8 {
    CLASSES[b as usize]
}

/// Characters that separate the parts of a token that are checked on their own.
fn is_delimiter(b: u8) -> bool {
    class(b) & DELIMITER != 0
}

/// Characters that separate the sub-parts of a part for the `digits` masker.
fn is_joiner(b: u8) -> bool {
    class(b) & JOINER != 0
}

/// Appends `token` masked by the built-in maskers to `out`.
fn mask_token_into(token: &str, masks: &BuiltinMasks, out: &mut String) {
    let bytes = token.as_bytes();
    // Every class the token has, in one pass: most checks below need a class it lacks.
    let classes = bytes.iter().fold(0u8, |all, b| all | class(*b));
    // (Letters have no class bit: check the bytes themselves.)
    if classes == DIGIT && masks.numbers && bytes.iter().all(u8::is_ascii_digit) {
        // Only digits (pids, ports, counts): a number, whatever else could match.
        out.push_str(WILDCARD);
        return;
    }
    let interesting = classes & (DIGIT | DELIMITER) != 0;
    // The token as a whole, without wrapping brackets, quotes and trailing punctuation.
    let start = if classes & OPEN == 0 {
        0
    } else {
        bytes
            .iter()
            .position(|b| class(*b) & OPEN == 0)
            .unwrap_or(bytes.len())
    };
    let end = if classes & CLOSE == 0 {
        bytes.len()
    } else {
        bytes
            .iter()
            .rposition(|b| class(*b) & CLOSE == 0)
            .map_or(start, |i| i + 1)
            .max(start)
    };
    let core = &token[start..end];
    if core.is_empty() || core == WILDCARD {
        out.push_str(token);
        return;
    }
    if interesting && masks.ip && bytes[0] == b'[' && classes & COLON != 0 && is_ipv6(&token[..end]) {
        out.push_str(WILDCARD);
        out.push_str(&token[end..]);
        return;
    }
    let whole = if interesting {
        is_variable_whole(core, classes, masks)
    } else {
        is_variable_word(core, masks)
    };
    if whole {
        out.push_str(&token[..start]);
        out.push_str(WILDCARD);
        out.push_str(&token[end..]);
        return;
    }
    if !interesting {
        out.push_str(token);
        return;
    }
    if classes & DELIMITER == 0 && start == 0 && end == bytes.len() {
        // One part, the core itself, which the checks above did not match: only its
        // digit-led sub-parts can still be masked (what `mask_part_into` would conclude).
        mask_subparts_into(token, masks, out);
        return;
    }
    // Part by part, between delimiters (all ASCII, so every cut is on a char boundary).
    let star = classes & STAR != 0;
    let mut part_start = 0;
    let mut i = 0;
    while i <= bytes.len() {
        if star && i < bytes.len() && bytes[i..].starts_with(WILDCARD.as_bytes()) {
            // `<*>` belongs to the part it is in.
            i += WILDCARD.len();
            continue;
        }
        if i < bytes.len() && !is_delimiter(bytes[i]) {
            i += 1;
            continue;
        }
        mask_part_into(&token[part_start..i], star, masks, out);
        if i < bytes.len() {
            out.push(char::from(bytes[i]));
        }
        part_start = i + 1;
        i += 1;
    }
}

/// Appends one part between delimiters, masked, to `out`. `star`: whether the token has a
/// `*` (else no part can hold a `<*>`).
fn mask_part_into(part: &str, star: bool, m: &BuiltinMasks, out: &mut String) {
    if part.is_empty() || part == WILDCARD {
        out.push_str(part);
        return;
    }
    let b = part.as_bytes();
    // A word partly replaced by a user rule (`blk_<*>`, `ae<*>f-<*>`) is a variable.
    let variable = (star && has_wildcard(part))
        || if b.iter().any(u8::is_ascii_digit) {
            is_variable_part(part, m)
        } else {
            is_variable_word(part, m)
        };
    if variable {
        out.push_str(WILDCARD);
        return;
    }
    mask_subparts_into(part, m, out);
}

/// Appends a part that is not a variable as a whole, with its digit-led sub-parts masked.
fn mask_subparts_into(part: &str, m: &BuiltinMasks, out: &mut String) {
    let b = part.as_bytes();
    if !m.digits || !b.iter().any(u8::is_ascii_digit) {
        out.push_str(part);
        return;
    }
    // Sub-parts between `-`, `_`, `.` that start with a digit: `node-<*>`; with two or more
    // such sub-parts the part is an id (`attempt_1445_0020_m_000001_0`) and goes whole.
    // `alt0`, `SOCKS5`, `tty2` stay (a word with a digit in it is usually a name).
    let digit_led = b
        .split(|c| is_joiner(*c))
        .filter(|sub| sub.first().is_some_and(u8::is_ascii_digit) || (m.hex && is_hex(sub)))
        .count();
    if digit_led >= 2 {
        out.push_str(WILDCARD);
        return;
    }
    if digit_led == 0 {
        // The loop below would copy every sub-part as it is.
        out.push_str(part);
        return;
    }
    let mut sub_start = 0;
    for i in 0..=b.len() {
        if i < b.len() && !is_joiner(b[i]) {
            continue;
        }
        let sub = &part[sub_start..i];
        if sub.as_bytes().first().is_some_and(u8::is_ascii_digit) || (m.hex && is_hex(sub.as_bytes())) {
            out.push_str(WILDCARD);
        } else {
            out.push_str(sub);
        }
        if i < b.len() {
            out.push(char::from(b[i]));
        }
        sub_start = i + 1;
    }
}

/// Checks that span delimiters: addresses with ports, IPv6, paths, URLs, UUIDs. `classes`:
/// the byte classes of the whole token (a superset of the core's), to skip checks early.
fn is_variable_whole(core: &str, classes: u8, m: &BuiltinMasks) -> bool {
    (m.ip && (is_ipv4_port(core) || (classes & COLON != 0 && is_ipv6(core))))
        || (m.uuid && is_uuid(core))
        || (m.paths && classes & SLASH != 0 && is_path(core))
        || (classes & DIGIT != 0 && core.bytes().any(|b| b.is_ascii_digit()) && is_variable_part(core, m))
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

/// Words that are values: day and month names (`Fri`, `June`), `true`/`false`/`null`.
fn is_variable_word(word: &str, m: &BuiltinMasks) -> bool {
    let w = word.as_bytes();
    // Every such word starts with an upper-case letter or `t`, `f`, `n`: most words are
    // ruled out by their first byte.
    if !w
        .first()
        .is_some_and(|b| b.is_ascii_uppercase() || matches!(b, b't' | b'f' | b'n'))
    {
        return false;
    }
    (m.dates && is_date_word(w))
        || (m.literals
            && matches!(
                w,
                b"true" | b"false" | b"null" | b"True" | b"False" | b"TRUE" | b"FALSE" | b"NULL" | b"None"
            ))
}

/// A day or month name, whole or as its three-letter abbreviation.
fn is_date_word(w: &[u8]) -> bool {
    if w.len() < 3 || w.len() > 9 {
        return false;
    }
    // A match on the first three bytes compiles to a few byte comparisons, not a list scan.
    let name: &[u8] = match [w[0], w[1], w[2]] {
        [b'M', b'o', b'n'] => b"Monday",
        [b'T', b'u', b'e'] => b"Tuesday",
        [b'W', b'e', b'd'] => b"Wednesday",
        [b'T', b'h', b'u'] => b"Thursday",
        [b'F', b'r', b'i'] => b"Friday",
        [b'S', b'a', b't'] => b"Saturday",
        [b'S', b'u', b'n'] => b"Sunday",
        [b'J', b'a', b'n'] => b"January",
        [b'F', b'e', b'b'] => b"February",
        [b'M', b'a', b'r'] => b"March",
        [b'A', b'p', b'r'] => b"April",
        [b'M', b'a', b'y'] => b"May",
        [b'J', b'u', b'n'] => b"June",
        [b'J', b'u', b'l'] => b"July",
        [b'A', b'u', b'g'] => b"August",
        [b'S', b'e', b'p'] => b"September",
        [b'O', b'c', b't'] => b"October",
        [b'N', b'o', b'v'] => b"November",
        [b'D', b'e', b'c'] => b"December",
        _ => return false,
    };
    w.len() == 3 || w == name
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
    let unit = &b[n..];
    (1..=4).contains(&unit.len()) && UNITS.contains(&unit)
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
    let b = s.as_bytes();
    let mut i = 0;
    for octet in 0..4 {
        if octet > 0 {
            if b.get(i) != Some(&b'.') {
                return false;
            }
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 4 {
            i += 1;
        }
        if !(1..=3).contains(&(i - start)) {
            return false;
        }
    }
    match b.get(i) {
        None => true,
        Some(b':') => {
            let port = &b[i + 1..];
            !port.is_empty() && port.len() <= 5 && port.iter().all(u8::is_ascii_digit)
        }
        Some(_) => false,
    }
}

/// An IPv6 address, optionally in brackets with a port: hex groups and colons with at least
/// two colons, a `::` or seven colons, and at least one digit.
fn is_ipv6(s: &str) -> bool {
    // Only hex digits, `:`, `.` and brackets can be in one; most tokens fail here at once.
    if !s
        .bytes()
        .all(|c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.' | b'[' | b']'))
    {
        return false;
    }
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
    // A scheme has no `:`, so only the first `:` can start `://`.
    match memchr::memchr(b':', b) {
        Some(i) => {
            i > 0
                && b[i..].starts_with(b"://")
                && b[..i].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(token: &str) -> String {
        Masker::new(Vec::new(), BuiltinMasks::ALL)
            .mask_token(token)
            .into_owned()
    }

    fn mask_without_digits(token: &str) -> String {
        let masks = BuiltinMasks {
            digits: false,
            ..BuiltinMasks::ALL
        };
        Masker::new(Vec::new(), masks).mask_token(token).into_owned()
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
        assert_eq!(mask("ssh2"), "ssh2");
        assert_eq!(mask("u0"), "u0");
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
    fn tokens_are_cut_as_split_whitespace_cuts_them() {
        let masker = Masker::new(Vec::new(), BuiltinMasks::NONE);
        for text in [
            "  a\tb\x0bc\x0cd\re\nf  ",
            "",
            "   ",
            "one",
            "caf\u{e9} \u{a0}x\u{2003}y\u{85}z",
        ] {
            assert_eq!(
                masker.mask(text),
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
    }

    #[test]
    fn remembered_tokens_mask_as_fresh_ones() {
        let masker = Masker::new(
            vec![MaskRule::new(r"blk_-?\d+").expect("valid")],
            BuiltinMasks::ALL,
        );
        let mut memo = TokenMemo::default();
        let mut out = String::new();
        let lines = [
            "Failed password for root from 10.0.0.1 port 22 ssh2",
            "Failed password for root from 10.0.0.2 port 23 ssh2",
            "IN=eth0 OUT= MAC=8f:01:a1 TOS=0x00 LEN=43 [UFW BLOCK] blk_-42 node-7 Fri",
            "IN=eth0 OUT= MAC=8f:01:a1 TOS=0x00 LEN=43 [UFW BLOCK] blk_-42 node-7 Fri",
            "  caf\u{e9} uid=0  (root) CMD ",
        ];
        for line in lines.iter().chain(&lines) {
            let mut pins = Vec::new();
            let tokens = masker.mask_into_memo(line, &mut out, &mut memo, &mut pins);
            assert_eq!(tokens, line.split_whitespace().count());
            assert_eq!(out, masker.mask(line), "{line}");
        }
        assert!(memo.map.contains_key("ssh2") && !memo.map.contains_key("22"));
        assert_eq!(memo.map.get("TOS=0x00").map(|m| &**m), Some("TOS=<*>"));
    }

    #[test]
    fn dates_and_literals() {
        for word in [
            "Mon",
            "Sunday",
            "Sep",
            "September",
            "May",
            "June",
            "true",
            "NULL",
            "None",
        ] {
            assert_eq!(mask(word), "<*>", "{word}");
        }
        for word in [
            "Sept",
            "Mayday",
            "Monda",
            "Ju",
            "TRUEx",
            "none",
            "Decembers",
            "Sun,",
        ] {
            let expected = if word == "Sun," { "<*>," } else { word };
            assert_eq!(mask(word), expected, "{word}");
        }
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
