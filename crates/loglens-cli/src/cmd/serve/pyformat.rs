//! Python's `%`-formatting of a logging record's `msg` with its `args`: `HTTPHandler` posts
//! them apart (`args` as the `repr` of a tuple or dict), so serve applies them as
//! `LogRecord.getMessage()` would, and a record reads `order 42 failed`, not `order %d failed`.
//! Anything this cannot reproduce exactly (an object's repr, a bad conversion) leaves `None`,
//! and the caller keeps the message as sent.

/// A value of the args repr.
#[derive(Debug, Clone, PartialEq)]
enum PyValue {
    Str(String),
    Int(i64),
    Float(f64),
    /// `None`, `True`, `False`: formatted as written by `%s`.
    Word(String),
}

/// The args: a tuple's values, or a dict's entries (`%(name)s`).
#[derive(Debug, PartialEq)]
enum Args {
    Tuple(Vec<PyValue>),
    Dict(Vec<(String, PyValue)>),
}

/// `msg % args`, as `LogRecord.getMessage()` computes it; `None` when `args` is empty (Python
/// leaves `msg` as it is then) or cannot be applied.
pub(crate) fn format(msg: &str, args: &str) -> Option<String> {
    let args = parse_args(args.trim())?;
    match &args {
        Args::Tuple(values) if values.is_empty() => return None,
        Args::Dict(entries) if entries.is_empty() => return None,
        _ => {}
    }
    apply(msg, &args)
}

fn apply(msg: &str, args: &Args) -> Option<String> {
    let mut out = String::with_capacity(msg.len() + 16);
    let mut next = 0;
    let mut chars = msg.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let key = if chars.peek() == Some(&'(') {
            chars.next();
            let key: String = chars.by_ref().take_while(|&c| c != ')').collect();
            Some(key)
        } else {
            None
        };
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek().filter(|c| "-+ #0".contains(**c)) {
            spec.flags.push(flag);
            chars.next();
        }
        spec.width = digits(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(digits(&mut chars).unwrap_or(0));
        }
        while chars.peek().is_some_and(|c| "hlL".contains(*c)) {
            chars.next();
        }
        let conversion = chars.next()?;
        let value = match (key, args) {
            (Some(key), Args::Dict(entries)) => &entries.iter().find(|(k, _)| *k == key)?.1,
            (None, Args::Tuple(values)) => {
                next += 1;
                values.get(next - 1)?
            }
            _ => return None,
        };
        out.push_str(&spec.pad(convert(value, conversion, spec.precision)?, conversion));
    }
    // Python raises "not all arguments converted" when a tuple has values left over.
    match args {
        Args::Tuple(values) if next != values.len() => None,
        _ => Some(out),
    }
}

#[derive(Default)]
struct Spec {
    flags: String,
    width: Option<usize>,
    precision: Option<usize>,
}

impl Spec {
    fn pad(&self, text: String, conversion: char) -> String {
        let width = self.width.unwrap_or(0);
        let len = text.chars().count();
        if len >= width {
            return text;
        }
        let fill = width - len;
        if self.flags.contains('-') {
            format!("{text}{}", " ".repeat(fill))
        } else if self.flags.contains('0') && "diufFeEgGxXo".contains(conversion) {
            match text.strip_prefix('-') {
                Some(digits) => format!("-{}{digits}", "0".repeat(fill)),
                None => format!("{}{text}", "0".repeat(fill)),
            }
        } else {
            format!("{}{text}", " ".repeat(fill))
        }
    }
}

fn digits(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
        chars.next();
    }
    n
}

/// One conversion of one value, as Python's `%` does it.
fn convert(value: &PyValue, conversion: char, precision: Option<usize>) -> Option<String> {
    let number = match value {
        PyValue::Int(i) => Some(*i as f64),
        PyValue::Float(f) => Some(*f),
        PyValue::Word(w) if w == "True" => Some(1.0),
        PyValue::Word(w) if w == "False" => Some(0.0),
        _ => None,
    };
    let text = match conversion {
        's' => {
            let text = str_of(value);
            match precision {
                Some(p) => text.chars().take(p).collect(),
                None => text,
            }
        }
        'r' | 'a' => match value {
            PyValue::Str(s) => python_repr(s),
            other => str_of(other),
        },
        'd' | 'i' | 'u' => format!("{}", number?.trunc() as i64),
        'f' | 'F' => format!("{:.*}", precision.unwrap_or(6), number?),
        'e' | 'E' => {
            let text = python_exponent(number?, precision.unwrap_or(6));
            if conversion == 'E' {
                text.to_uppercase()
            } else {
                text
            }
        }
        'x' => format!("{:x}", int_of(value)?),
        'X' => format!("{:X}", int_of(value)?),
        'o' => format!("{:o}", int_of(value)?),
        'c' => match value {
            PyValue::Int(i) => char::from_u32(u32::try_from(*i).ok()?)?.to_string(),
            PyValue::Str(s) if s.chars().count() == 1 => s.clone(),
            _ => return None,
        },
        // %g and anything rarer: not reproduced exactly, so not guessed.
        _ => return None,
    };
    Some(text)
}

fn int_of(value: &PyValue) -> Option<i64> {
    match value {
        PyValue::Int(i) => Some(*i),
        _ => None,
    }
}

/// Python's `repr()` of a string: single quotes unless it holds one and no double quote.
fn python_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str()` of a value.
fn str_of(value: &PyValue) -> String {
    match value {
        PyValue::Str(s) => s.clone(),
        PyValue::Int(i) => i.to_string(),
        PyValue::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
        PyValue::Float(f) => f.to_string(),
        PyValue::Word(w) => w.clone(),
    }
}

/// `1.500000e+03`, as Python writes `%e` (a sign and at least two exponent digits).
fn python_exponent(value: f64, precision: usize) -> String {
    let text = format!("{value:.precision$e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}

/// The `repr` of a tuple or a dict with string keys, of literals only.
fn parse_args(text: &str) -> Option<Args> {
    let mut p = Parser { rest: text };
    let args = if p.eat('(') {
        let mut values = Vec::new();
        while !p.eat(')') {
            values.push(p.value()?);
            if !p.eat(',') {
                p.expect(')')?;
                break;
            }
        }
        Args::Tuple(values)
    } else if p.eat('{') {
        let mut entries = Vec::new();
        while !p.eat('}') {
            let PyValue::Str(key) = p.value()? else {
                return None;
            };
            p.expect(':')?;
            entries.push((key, p.value()?));
            if !p.eat(',') {
                p.expect('}')?;
                break;
            }
        }
        Args::Dict(entries)
    } else {
        return None;
    };
    p.rest.trim().is_empty().then_some(args)
}

struct Parser<'t> {
    rest: &'t str,
}

impl Parser<'_> {
    fn eat(&mut self, c: char) -> bool {
        self.rest = self.rest.trim_start();
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, c: char) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn value(&mut self) -> Option<PyValue> {
        self.rest = self.rest.trim_start();
        let first = self.rest.chars().next()?;
        if first == '\'' || first == '"' {
            return self.string(first).map(PyValue::Str);
        }
        let end = self
            .rest
            .find(|c: char| c == ',' || c == ')' || c == '}' || c == ':' || c.is_whitespace())
            .unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        if let Ok(i) = token.parse::<i64>() {
            return Some(PyValue::Int(i));
        }
        if matches!(token, "None" | "True" | "False") {
            return Some(PyValue::Word(token.to_owned()));
        }
        // Python floats always have a `.`, an `e`, or are inf/nan.
        token.parse::<f64>().ok().map(PyValue::Float)
    }

    /// A string literal's value, with Python's escapes.
    fn string(&mut self, quote: char) -> Option<String> {
        let mut out = String::new();
        let mut chars = self.rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.rest = &self.rest[i + c.len_utf8()..];
                    return Some(out);
                }
                '\\' => {
                    let (_, escaped) = chars.next()?;
                    match escaped {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        'x' | 'u' | 'U' => {
                            let len = match escaped {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let hex: String = chars.by_ref().take(len).map(|(_, c)| c).collect();
                            out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expectation is what CPython 3.11 prints for `msg % args`.
    #[test]
    fn formats_as_python_does() {
        let cases = [
            ("order %d failed", "(42,)", "order 42 failed"),
            (
                "user %s from %s",
                "('alice', '192.0.2.1')",
                "user alice from 192.0.2.1",
            ),
            ("took %.2f s (%5.1f%%)", "(1.23456, 99.5)", "took 1.23 s ( 99.5%)"),
            ("%s %s %s", "(None, True, 2.0)", "None True 2.0"),
            ("%r", "(\"it's\",)", "\"it's\""),
            (
                "%r|%r",
                "('a\\nb', 'say \"hi\" it\\'s')",
                "'a\\nb'|'say \"hi\" it\\'s'",
            ),
            ("id %05d|%-4s|%x", "(42, 'ab', 255)", "id 00042|ab  |ff"),
            (
                "%(user)s paid %(amount).1f",
                "{'user': 'bob', 'amount': 9.95}",
                "bob paid 9.9",
            ),
            ("%e", "(1500.0,)", "1.500000e+03"),
            ("tab\\t%s", "('a\\tb',)", "tab\\ta\tb"),
            ("%s", "('caf\\xe9 \\u2603',)", "café ☃"),
        ];
        for (msg, args, want) in cases {
            assert_eq!(format(msg, args).as_deref(), Some(want), "{msg} % {args}");
        }
    }

    #[test]
    fn leaves_what_it_cannot_reproduce() {
        assert_eq!(format("100%% sure", "()"), None, "no args: msg as it is");
        assert_eq!(format("%s", "(<object at 0x7f>,)"), None);
        assert_eq!(format("%d", "('x',)"), None);
        assert_eq!(format("%s %s", "(1,)"), None);
        assert_eq!(format("%s", "(1, 2)"), None);
        assert_eq!(format("%g", "(1.5,)"), None);
        assert_eq!(format("%s", "('unterminated,)"), None);
    }
}
