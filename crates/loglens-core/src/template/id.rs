//! Template ids: a 64-bit FNV-1a hash of the template text, so the same template gets the same
//! id in every run, on every thread and in every process, whatever order it was found in.

use std::fmt;

/// The stable id of a template: the 64-bit FNV-1a hash of its text (tokens joined by one
/// space). Shown as 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TemplateId(pub u64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl TemplateId {
    /// The id of a template text.
    pub fn of(text: &str) -> TemplateId {
        TemplateId(fnv1a(FNV_OFFSET, text.as_bytes()))
    }

    /// The id of the template whose tokens are `tokens` (the same as [`TemplateId::of`] on
    /// the tokens joined by one space, without building that string).
    pub fn of_tokens<S: AsRef<str>>(tokens: &[S]) -> TemplateId {
        let mut h = FNV_OFFSET;
        for (i, t) in tokens.iter().enumerate() {
            if i > 0 {
                h = fnv1a(h, b" ");
            }
            h = fnv1a(h, t.as_ref().as_bytes());
        }
        TemplateId(h)
    }
}

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

impl fmt::Display for TemplateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(TemplateId::of("").0, 0xcbf2_9ce4_8422_2325);
        assert_eq!(TemplateId::of("a").0, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(TemplateId::of("foobar").0, 0x8594_4171_f739_67e8);
        assert_eq!(TemplateId::of("a").to_string(), "af63dc4c8601ec8c");
    }

    #[test]
    fn tokens_hash_like_their_joined_text() {
        assert_eq!(
            TemplateId::of_tokens(&["open", "<*>", "x"]),
            TemplateId::of("open <*> x")
        );
        assert_eq!(TemplateId::of_tokens::<&str>(&[]), TemplateId::of(""));
    }
}
