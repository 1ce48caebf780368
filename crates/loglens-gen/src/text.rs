//! Allocation-free text building for generated lines: number and id writers, and [`LineBuf`],
//! which holds one line's message and attribute values and renders them through a format.
//!
//! Every buffer is reused from line to line, so steady-state generation allocates nothing.

use std::borrow::Cow;

use loglens_core::format::Format;
use loglens_core::record::{Level, Record};
use loglens_core::time::Timestamp;

/// Appends the decimal digits of `n`.
pub fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// Appends `n` zero-padded to at least `width` digits.
pub fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut digits = 1;
    let mut m = n / 10;
    while m > 0 {
        digits += 1;
        m /= 10;
    }
    for _ in digits..width {
        out.push('0');
    }
    push_u64(out, n);
}

/// Appends a non-negative `value` with exactly `decimals` fraction digits (rounded half up).
pub fn push_fixed(out: &mut String, value: f64, decimals: u32) {
    let scale = 10u64.pow(decimals);
    let scaled = (value.max(0.0) * scale as f64 + 0.5) as u64;
    push_u64(out, scaled / scale);
    if decimals > 0 {
        out.push('.');
        push_padded(out, scaled % scale, decimals as usize);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const BASE36: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Appends the low `digits` hex digits of `v` (lowercase).
pub fn push_hex(out: &mut String, v: u64, digits: u32) {
    for i in (0..digits).rev() {
        out.push(char::from(HEX[((v >> (4 * i)) & 0xF) as usize]));
    }
}

/// Appends `digits` characters of `v` in the given alphabet (least significant first).
fn push_radix(out: &mut String, mut v: u64, digits: u32, alphabet: &[u8]) {
    let base = alphabet.len() as u64;
    for _ in 0..digits {
        out.push(char::from(alphabet[(v % base) as usize]));
        v /= base;
    }
}

/// Appends `digits` upper-case base-36 characters of `v`.
pub fn push_base36(out: &mut String, v: u64, digits: u32) {
    push_radix(out, v, digits, BASE36);
}

/// Appends `digits` base-62 characters of `v`.
pub fn push_base62(out: &mut String, v: u64, digits: u32) {
    push_radix(out, v, digits, BASE62);
}

/// Appends a version-4 UUID built from two random words.
pub fn push_uuid(out: &mut String, a: u64, b: u64) {
    push_hex(out, a >> 32, 8);
    out.push('-');
    push_hex(out, a >> 16, 4);
    out.push_str("-4");
    push_hex(out, a, 3);
    out.push('-');
    push_hex(out, 0x8 | ((b >> 62) & 0x3), 1);
    push_hex(out, b >> 48, 3);
    out.push('-');
    push_hex(out, b, 12);
}

/// Appends an IPv4 address.
pub fn push_ipv4(out: &mut String, octets: [u8; 4]) {
    for (i, o) in octets.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_u64(out, u64::from(*o));
    }
}

type Attrs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Re-types an attribute vector's allocation for another lifetime, emptied. In-place
/// collection keeps the allocation, so no line allocates a fresh vector.
fn recycle<'b>(mut v: Attrs<'_>) -> Attrs<'b> {
    v.clear();
    // The vector is empty: the conversion never runs, it only re-types the allocation.
    v.into_iter()
        .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
        .collect()
}

/// One line under construction: the message, the attribute values (in one shared string)
/// and the keys pointing into it.
#[derive(Debug, Default)]
pub struct LineBuf {
    /// The message text.
    pub msg: String,
    vals: String,
    marks: Vec<(&'static str, usize, usize)>,
    spare: Attrs<'static>,
}

impl LineBuf {
    /// Empties the message and attributes.
    pub fn clear(&mut self) {
        self.msg.clear();
        self.vals.clear();
        self.marks.clear();
    }

    /// The value buffer, to write an attribute value or a message part into; pair with
    /// [`LineBuf::mark`] or [`LineBuf::copy_to_msg`].
    pub fn vals(&mut self) -> &mut String {
        &mut self.vals
    }

    /// The current end of the value buffer.
    pub fn vals_len(&self) -> usize {
        self.vals.len()
    }

    /// Records `vals[start..end]` as the value of attribute `key`.
    pub fn mark(&mut self, key: &'static str, start: usize, end: usize) {
        self.marks.push((key, start, end));
    }

    /// Adds an attribute with a literal value.
    pub fn attr_str(&mut self, key: &'static str, value: &str) {
        let start = self.vals.len();
        self.vals.push_str(value);
        self.marks.push((key, start, self.vals.len()));
    }

    /// The value text at `vals[start..end]`.
    pub fn val(&self, start: usize, end: usize) -> &str {
        &self.vals[start..end]
    }

    /// Appends `vals[start..end]` to the message.
    pub fn copy_to_msg(&mut self, start: usize, end: usize) {
        self.msg.push_str(&self.vals[start..end]);
    }

    /// Renders the line (without terminator) into `out`.
    pub fn render(
        &mut self,
        format: Format,
        ts: Timestamp,
        host: &str,
        service: &str,
        level: Level,
        out: &mut String,
    ) {
        let mut attrs = recycle(std::mem::take(&mut self.spare));
        for &(key, start, end) in &self.marks {
            attrs.push((Cow::Borrowed(key), Cow::Borrowed(&self.vals[start..end])));
        }
        let record = Record {
            ts,
            host: Some(Cow::Borrowed(host)),
            service: Some(Cow::Borrowed(service)),
            level: Some(level),
            message: Cow::Borrowed(&self.msg),
            access: None,
            attrs,
        };
        format.render(&record, out);
        self.spare = recycle(record.attrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_writers() {
        let mut s = String::new();
        push_u64(&mut s, 0);
        s.push(' ');
        push_u64(&mut s, u64::MAX);
        s.push(' ');
        push_padded(&mut s, 42, 5);
        s.push(' ');
        push_fixed(&mut s, 3.14259, 3);
        s.push(' ');
        push_fixed(&mut s, 0.0006, 3);
        s.push(' ');
        push_fixed(&mut s, 12.0, 0);
        s.push(' ');
        push_hex(&mut s, 0xDEAD_BEEF, 8);
        assert_eq!(s, "0 18446744073709551615 00042 3.143 0.001 12 deadbeef");
        let mut u = String::new();
        push_uuid(&mut u, 0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
    }

    #[test]
    fn line_buf_renders_attrs_and_reuses_its_vector() {
        let mut b = LineBuf::default();
        for round in 0..3 {
            b.clear();
            b.msg.push_str("hello");
            b.attr_str("k", "v");
            let start = b.vals_len();
            push_u64(b.vals(), round);
            let end = b.vals_len();
            b.mark("n", start, end);
            let mut out = String::new();
            b.render(
                Format::Combined,
                Timestamp::from_secs(0),
                "h",
                "s",
                Level::Info,
                &mut out,
            );
            assert!(out.contains("hello"), "{out}");
        }
        assert!(
            b.spare.capacity() >= 2,
            "the attribute vector is kept for the next line"
        );
    }
}
