//! Parameter extraction: given a template and a message of that template, the text each `<*>`
//! stands for. The template is compiled once into a list of pieces (literal text, white space
//! matching any run of white space, each `<*>` a lazy wildcard) that a small backtracking
//! matcher aligns with the message.
//!
//! Why not a regex? This used to compile each template into the anchored regex
//! `^\s*lit\s+(.*?)…\s*$`; running it for every record was the hot spot of `process`. The
//! matcher gives exactly that regex's captures (it explores the same alternatives in the same
//! order: white space greedy, wildcards lazy, first success wins; a test checks it against the
//! regex), and on the usual message, where each `<*>` is one token, it never backtracks past a
//! token. A memo of failed (piece, position) states bounds the worst case, like the regex
//! crate's bounded backtracker.

use super::mask::WILDCARD;

/// One piece of a compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// This exact text.
    Literal(Box<str>),
    /// A run of white space, at least `min` characters (0 or 1), longest first.
    Space { min: u8 },
    /// A `<*>`: any text, shortest first; its index among the template's wildcards.
    Wild(u32),
    /// The end of the message.
    End,
}

/// A template compiled for extracting parameters from many messages.
#[derive(Debug, Clone)]
pub struct TemplatePattern {
    pieces: Vec<Piece>,
    wildcards: usize,
}

/// Steps the matcher takes before it starts remembering failed states (most messages take a
/// few per byte; the memo costs an allocation, so it is set up only when needed).
const STEPS_BEFORE_MEMO: usize = 4096;

/// The matcher's working memory, kept between messages by [`TemplatePattern::parameters_into`].
#[derive(Debug, Default)]
pub struct ParamScratch {
    spans: Vec<(usize, usize)>,
    stack: Vec<Choice>,
}

/// A choice the matcher can revisit: the piece, where it started, and where the alternative
/// it took ends.
#[derive(Debug, Clone, Copy)]
struct Choice {
    piece: usize,
    start: usize,
    end: usize,
}

impl TemplatePattern {
    /// Compiles `template` (text with `<*>` for each variable part).
    pub fn new(template: &str) -> TemplatePattern {
        let mut pieces = vec![Piece::Space { min: 0 }];
        let mut wildcards = 0u32;
        for (i, token) in template.split_whitespace().enumerate() {
            if i > 0 {
                pieces.push(Piece::Space { min: 1 });
            }
            for (j, literal) in token.split(WILDCARD).enumerate() {
                if j > 0 {
                    pieces.push(Piece::Wild(wildcards));
                    wildcards += 1;
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(Box::from(literal)));
                }
            }
        }
        pieces.push(Piece::Space { min: 0 });
        pieces.push(Piece::End);
        TemplatePattern {
            pieces,
            wildcards: wildcards as usize,
        }
    }

    /// The parameters of `message` in order, or `None` when the message does not fit the
    /// template. A `<*>` that replaced several words yields them as one parameter.
    pub fn parameters<'m>(&self, message: &'m str) -> Option<Vec<&'m str>> {
        let mut params = Vec::new();
        self.parameters_into(message, &mut ParamScratch::default(), &mut params)
            .then_some(params)
    }

    /// [`TemplatePattern::parameters`] into `params` (cleared first), with the matcher's
    /// working memory in `scratch`: whether the message fits. For callers extracting from
    /// message after message, which would otherwise allocate three vectors each time.
    pub fn parameters_into<'m>(
        &self,
        message: &'m str,
        scratch: &mut ParamScratch,
        params: &mut Vec<&'m str>,
    ) -> bool {
        params.clear();
        let ParamScratch { spans, stack } = scratch;
        spans.clear();
        spans.resize(self.wildcards, (0, 0));
        let found = match self.run(message, spans, stack, None) {
            Some(found) => found,
            None => {
                // Too many steps: again with a memo of failed states (same order, so the same
                // answer; each state is explored at most once).
                let Some(mut memo) = Memo::new(self.pieces.len(), message.len()) else {
                    return false;
                };
                self.run(message, spans, stack, Some(&mut memo)).unwrap_or(false)
            }
        };
        if found {
            params.extend(
                spans
                    .iter()
                    .map(|&(start, end)| message.get(start..end).unwrap_or_default()),
            );
        }
        found
    }

    /// Searches for the first match in the regex's order of preference, writing each
    /// wildcard's span. `Some(found)`, or `None` when there is no memo and the step budget ran
    /// out.
    fn run(
        &self,
        text: &str,
        spans: &mut [(usize, usize)],
        stack: &mut Vec<Choice>,
        mut memo: Option<&mut Memo>,
    ) -> Option<bool> {
        let bytes = text.as_bytes();
        // Where the trailing white space starts: a wildcard ending before it cannot be followed
        // by the final white space and the end, so the last wildcard jumps straight there.
        let trail = text.trim_end().len();
        // Each piece pushes at most one choice before the match ends or backtracks.
        stack.clear();
        stack.reserve(self.pieces.len());
        let mut steps = 0usize;
        let (mut piece, mut pos) = (0usize, 0usize);
        loop {
            steps += 1;
            let fresh = match memo.as_deref_mut() {
                Some(m) => m.first_visit(piece, pos),
                None if steps > STEPS_BEFORE_MEMO => return None,
                None => true,
            };
            let advanced = if fresh {
                self.enter(text, bytes, trail, piece, pos, spans, stack)
            } else {
                None
            };
            match advanced {
                Some(Step::Matched) => return Some(true),
                Some(Step::Next(next)) => {
                    piece += 1;
                    pos = next;
                    continue;
                }
                None => {}
            }
            // Backtrack to the latest choice with an alternative left.
            loop {
                let Some(choice) = stack.pop() else {
                    return Some(false);
                };
                if let Some(end) = self.alternative(text, bytes, trail, choice) {
                    if let Piece::Wild(k) = self.pieces[choice.piece] {
                        if let Some(span) = spans.get_mut(k as usize) {
                            *span = (choice.start, end);
                        }
                    }
                    stack.push(Choice { end, ..choice });
                    piece = choice.piece + 1;
                    pos = end;
                    break;
                }
            }
        }
    }

    /// Enters `piece` at `pos`: where it ends by its first alternative (pushing a choice when
    /// it has others), `Matched` at the end, `None` when it fails.
    #[allow(clippy::too_many_arguments)]
    fn enter(
        &self,
        text: &str,
        bytes: &[u8],
        trail: usize,
        piece: usize,
        pos: usize,
        spans: &mut [(usize, usize)],
        stack: &mut Vec<Choice>,
    ) -> Option<Step> {
        match self.pieces.get(piece)? {
            Piece::Literal(literal) => bytes[pos..]
                .starts_with(literal.as_bytes())
                .then(|| Step::Next(pos + literal.len())),
            Piece::Space { min } => {
                let end = pos + space_run(&text[pos..]);
                if end == pos && *min > 0 {
                    return None;
                }
                if end > pos {
                    stack.push(Choice {
                        piece,
                        start: pos,
                        end,
                    });
                }
                Some(Step::Next(end))
            }
            Piece::Wild(k) => {
                let end = self.first_wild_end(text, bytes, trail, piece, pos);
                if let Some(span) = spans.get_mut(*k as usize) {
                    *span = (pos, end);
                }
                stack.push(Choice {
                    piece,
                    start: pos,
                    end,
                });
                Some(Step::Next(end))
            }
            Piece::End => (pos == bytes.len()).then_some(Step::Matched),
        }
    }

    /// The next alternative of a choice: a white-space run one character shorter, or a
    /// wildcard one character longer (skipping ends that fail at once).
    fn alternative(&self, text: &str, bytes: &[u8], trail: usize, choice: Choice) -> Option<usize> {
        match self.pieces.get(choice.piece)? {
            Piece::Space { min } => {
                let shorter = text[..choice.end]
                    .chars()
                    .next_back()
                    .map(|c| choice.end - c.len_utf8())?;
                let shortest = choice.start + usize::from(*min > 0);
                (shorter >= shortest && shorter >= choice.start).then_some(shorter)
            }
            Piece::Wild(_) => {
                let c = text[choice.end..].chars().next()?;
                let end = choice.end + c.len_utf8();
                Some(self.first_wild_end(text, bytes, trail, choice.piece, end))
            }
            _ => None,
        }
    }

    /// The first end at or after `from` for the wildcard `piece` that the next piece does not
    /// reject at once: before white space when white space must follow, where the next
    /// literal's first byte is, at the trailing white space when nothing but it follows.
    fn first_wild_end(&self, text: &str, bytes: &[u8], trail: usize, piece: usize, from: usize) -> usize {
        match (self.pieces.get(piece + 1), self.pieces.get(piece + 2)) {
            (Some(Piece::Space { min: 0 }), Some(Piece::End)) => from.max(trail),
            (Some(Piece::Space { min: 1 }), _) => from + first_space(&text[from..]),
            (Some(Piece::Literal(literal)), _) => {
                let first = literal.as_bytes()[0];
                memchr::memchr(first, &bytes[from..]).map_or(bytes.len(), |i| from + i)
            }
            _ => from,
        }
    }
}

/// What entering a piece gave.
enum Step {
    /// The piece matched up to here.
    Next(usize),
    /// The whole template matched.
    Matched,
}

/// Length in bytes of the white space (Unicode, as the regex's `\s`) at the start of `text`.
fn space_run(text: &str) -> usize {
    find_char(text, |c| !c.is_whitespace())
}

/// Where the first white space (Unicode) of `text` is, or its length.
fn first_space(text: &str) -> usize {
    find_char(text, char::is_whitespace)
}

/// The byte offset of the first char of `text` for which `pred` holds, or its length. ASCII
/// bytes are tested without decoding (messages are mostly ASCII, and decoding each char cost
/// a tenth of the matcher's time); from the first other byte on, chars are decoded.
fn find_char(text: &str, pred: impl Fn(char) -> bool) -> usize {
    let bytes = text.as_bytes();
    let ascii = bytes.iter().position(|&b| !b.is_ascii() || pred(char::from(b)));
    match ascii {
        Some(i) if !bytes[i].is_ascii() => text[i..]
            .char_indices()
            .find(|&(_, c)| pred(c))
            .map_or(text.len(), |(j, _)| i + j),
        Some(i) => i,
        None => text.len(),
    }
}

/// States the memo may hold (8 MB of bits).
const MAX_MEMO_BITS: usize = 64 << 20;

/// Failed (piece, position) states, one bit each.
struct Memo {
    bits: Vec<u64>,
    width: usize,
}

impl Memo {
    /// `None` past [`MAX_MEMO_BITS`] states (a huge template against a huge message that
    /// defeats the step budget: then there are no parameters rather than unbounded memory).
    fn new(pieces: usize, len: usize) -> Option<Memo> {
        let width = len + 1;
        let states = pieces.checked_mul(width).filter(|n| *n <= MAX_MEMO_BITS)?;
        Some(Memo {
            bits: vec![0; states.div_ceil(64)],
            width,
        })
    }

    /// Marks the state; whether it was not marked before.
    fn first_visit(&mut self, piece: usize, pos: usize) -> bool {
        let i = piece * self.width + pos;
        let Some(word) = self.bits.get_mut(i / 64) else {
            return true;
        };
        let bit = 1u64 << (i % 64);
        let first = *word & bit == 0;
        *word |= bit;
        first
    }
}

/// The parameters of `message` under `template` (see [`TemplatePattern::parameters`]); compile
/// a [`TemplatePattern`] instead when extracting from many messages.
pub fn parameters<'m>(template: &str, message: &'m str) -> Option<Vec<&'m str>> {
    TemplatePattern::new(template).parameters(message)
}

/// The regex this matcher replaced, kept to check that both give the same parameters.
#[cfg(any(test, feature = "reference"))]
pub mod reference {
    use regex::Regex;

    use super::WILDCARD;

    /// The parameters the old regex gave (`None` also when the regex would not compile).
    pub fn parameters<'m>(template: &str, message: &'m str) -> Option<Vec<&'m str>> {
        let mut pattern = String::from(r"(?s)^\s*");
        for (i, token) in template.split_whitespace().enumerate() {
            if i > 0 {
                pattern.push_str(r"\s+");
            }
            for (j, literal) in token.split(WILDCARD).enumerate() {
                if j > 0 {
                    pattern.push_str("(.*?)");
                }
                pattern.push_str(&regex::escape(literal));
            }
        }
        pattern.push_str(r"\s*$");
        let caps = Regex::new(&pattern).ok()?.captures(message)?;
        Some(
            caps.iter()
                .skip(1)
                .map(|m| m.map_or("", |m| m.as_str()))
                .collect(),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    thread_local! {
        /// One matcher's memory for every check of a test thread, as `process` keeps one for
        /// message after message of different templates.
        static SCRATCH: std::cell::RefCell<ParamScratch> = std::cell::RefCell::default();
    }

    fn both(template: &str, message: &str) -> Option<Vec<String>> {
        let ours = parameters(template, message);
        assert_eq!(
            ours,
            reference::parameters(template, message),
            "template {template:?}, message {message:?}"
        );
        let mut reused = vec!["left from the last message"];
        let fits = SCRATCH.with_borrow_mut(|scratch| {
            TemplatePattern::new(template).parameters_into(message, scratch, &mut reused)
        });
        assert_eq!(
            fits.then_some(reused),
            ours,
            "reused scratch: {template:?}, {message:?}"
        );
        ours.map(|p| p.into_iter().map(str::to_owned).collect())
    }

    #[test]
    fn the_regex_answer_where_backtracking_decides() {
        // Leading white space given back to a leading wildcard.
        assert_eq!(both("<*> x", "  x"), Some(vec![String::new()]));
        assert_eq!(both("<*> <*>", "a b c"), Some(vec!["a".into(), "b c".into()]));
        assert_eq!(both("<*>", "   "), Some(vec![String::new()]));
        assert_eq!(both("", "  "), Some(vec![]));
        assert_eq!(both("a <*> b", "a b"), None);
        assert_eq!(both("a <*> b", "a  b"), Some(vec![String::new()]));
        assert_eq!(both("a <*> b", "a   b"), Some(vec![String::new()]));
        assert_eq!(
            both("a<*>b<*>c d", "axbyb c d"),
            Some(vec!["x".into(), "yb ".into()])
        );
        assert_eq!(both("<*><*> z", "ab z"), Some(vec![String::new(), "ab".into()]));
        assert_eq!(
            both("x <*>", "x y\u{3000}z\u{3000} "),
            Some(vec!["y\u{3000}z".into()])
        );
        assert_eq!(both("k=<*>, v", "k=1, 2, v"), Some(vec!["1, 2".into()]));
    }

    #[test]
    fn pathological_input_is_bounded() {
        // Many wildcards against a long message that does not fit: the memo keeps it finite.
        let template = vec!["<*>"; 40].join(" ") + " never";
        let message = vec!["a"; 400].join(" ");
        assert_eq!(both(&template, &message), None);
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("<*>".to_owned()),
            "[ab=,:(]{1,3}",
            "[ab]{0,2}<\\*>[=:ab]{0,2}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn same_parameters_as_the_regex(
            template in proptest::collection::vec(piece(), 0..6),
            message in "[ ab=,:(\t\u{a0}]{0,24}",
        ) {
            let template = template.join(" ");
            both(&template, &message);
        }

        #[test]
        fn same_parameters_on_messages_of_the_template(
            template in proptest::collection::vec(piece(), 1..6),
            values in proptest::collection::vec("[ ab=:]{0,5}", 6),
        ) {
            // Fill each wildcard with a value, so most messages fit.
            let template = template.join(" ");
            let mut message = String::new();
            let mut values = values.iter();
            for (i, part) in template.split(WILDCARD).enumerate() {
                if i > 0 {
                    message.push_str(values.next().map_or("", |v| v.as_str()));
                }
                message.push_str(part);
            }
            both(&template, &message);
        }
    }

    #[test]
    fn extracts_each_wildcard_in_order() {
        assert_eq!(
            parameters(
                "Took <*> seconds to build instance <*>",
                "Took 12.5 seconds to build instance a1"
            ),
            Some(vec!["12.5", "a1"])
        );
        assert_eq!(
            parameters("uid=<*> euid=<*>", "uid=0  euid=500"),
            Some(vec!["0", "500"])
        );
        assert_eq!(
            parameters("[instance: <*>] done", "[instance: x-1] done"),
            Some(vec!["x-1"])
        );
    }

    #[test]
    fn a_wildcard_can_span_words_and_be_empty() {
        assert_eq!(
            parameters("<*> close, <*> sent", "h:80 close, 1190 bytes (1.16 KB) sent"),
            Some(vec!["h:80", "1190 bytes (1.16 KB)"])
        );
        assert_eq!(parameters("rhost=<*> user", "rhost= user"), Some(vec![""]));
    }

    #[test]
    fn a_message_of_another_template_gives_none() {
        assert_eq!(parameters("open <*> done", "close x done"), None);
        assert_eq!(parameters("a.b <*>", "aXb 1"), None);
    }
}
