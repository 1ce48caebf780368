//! Lines longer than the cap (`--max-line-bytes`): each is kept to its first `cap` bytes as
//! one unparsed row that gives its full length, whatever its length and wherever the chunking
//! put it. The local reader and the distributed workers cut their chunks around such lines with
//! the same functions, so both engines keep the same rows.

use memchr::memchr;

/// A line longer than the cap, as [`CappedLines`] kept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LongLine {
    /// Its place among the lines gathered (0-based).
    pub(crate) line: u64,
    /// Where its kept bytes start in the gathered data.
    pub(crate) start: usize,
    /// Its full length in bytes, without the newline.
    pub(crate) full: u64,
}

/// Whole lines handed over by [`CappedLines::take_front`].
pub(crate) struct Front {
    /// The lines, each long one kept to the cap.
    pub(crate) data: Vec<u8>,
    pub(crate) long: Vec<LongLine>,
    /// How many lines `data` holds.
    pub(crate) lines: u64,
}

/// Whole lines gathered block by block, each line longer than `cap` kept to its first `cap`
/// bytes (and its newline), so a runaway line costs `cap` bytes of memory, not its length.
pub(crate) struct CappedLines {
    data: Vec<u8>,
    long: Vec<LongLine>,
    cap: u64,
    /// `counted_lines` lines end before `data[counted_to]`: lines are numbered only when a
    /// long one needs its number or lines are handed over, not at every block.
    counted_lines: u64,
    counted_to: usize,
    /// The line being gathered: where it starts in `data`, its length so far.
    line_start: usize,
    line_len: u64,
}

impl CappedLines {
    /// Nothing gathered yet; room for `bytes`.
    pub(crate) fn with_capacity(cap: usize, bytes: usize) -> Self {
        CappedLines {
            data: Vec::with_capacity(bytes),
            long: Vec::new(),
            cap: cap as u64,
            counted_lines: 0,
            counted_to: 0,
            line_start: 0,
            line_len: 0,
        }
    }

    /// Adds the next bytes of the input (lines may continue across blocks); the readers
    /// append in place through [`CappedLines::buffer`] instead.
    #[cfg(test)]
    pub(crate) fn push(&mut self, block: &[u8]) {
        let from = self.data.len();
        self.data.extend_from_slice(block);
        self.accept(from);
    }

    /// Where a reader appends the next bytes of the input, in place; [`CappedLines::accept`]
    /// must follow with where they start.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Takes the bytes appended to the buffer from `from` on. When none of their lines can
    /// reach past the cap (ordinary input) they stay where they are, for a newline count; a
    /// copy line by line took a call per line. Otherwise they are gathered again line by line.
    pub(crate) fn accept(&mut self, from: usize) {
        let cap = self.cap as usize;
        let block = &self.data[from.min(self.data.len())..];
        let (Some(first), Some(last)) = (memchr(b'\n', block), memchr::memrchr(b'\n', block)) else {
            return self.gather_again(from);
        };
        let tail = block.len() - last - 1;
        let fits = self.line_len.saturating_add(first as u64) <= self.cap
            && tail <= cap
            && !may_hold_long_line(&block[first + 1..=last], cap);
        if !fits {
            return self.gather_again(from);
        }
        self.line_start = self.data.len() - tail;
        self.line_len = tail as u64;
    }

    fn gather_again(&mut self, from: usize) {
        let block = self.data.split_off(from.min(self.data.len()));
        self.push_lines(&block);
    }

    fn push_lines(&mut self, mut block: &[u8]) {
        while let Some(nl) = memchr(b'\n', block) {
            self.extend_line(&block[..nl]);
            self.end_line(true);
            block = &block[nl + 1..];
        }
        self.extend_line(block);
    }

    fn extend_line(&mut self, part: &[u8]) {
        let room = self.cap.saturating_sub(self.line_len);
        let keep = part.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        self.data.extend_from_slice(&part[..keep]);
        self.line_len += part.len() as u64;
    }

    fn end_line(&mut self, newline: bool) {
        if self.line_len > self.cap {
            let line = self.lines_before(self.line_start);
            self.long.push(LongLine {
                line,
                start: self.line_start,
                full: self.line_len,
            });
        }
        if newline {
            self.data.push(b'\n');
        }
        self.line_len = 0;
        self.line_start = self.data.len();
    }

    /// The lines gathered so far, the one being gathered last.
    pub(crate) fn gathered(&self) -> &[u8] {
        &self.data
    }

    /// Where the line being gathered starts: the whole lines end there.
    pub(crate) fn whole_lines_end(&self) -> usize {
        self.line_start
    }

    /// Whether a line without its newline yet is being gathered.
    pub(crate) fn has_partial_line(&self) -> bool {
        self.line_len > 0
    }

    /// The number of lines ending before `at` (a line start at or after the last counted).
    fn lines_before(&mut self, at: usize) -> u64 {
        debug_assert!(at >= self.counted_to, "lines are counted forward");
        let from = self.counted_to.min(at);
        self.counted_lines += memchr::memchr_iter(b'\n', &self.data[from..at]).count() as u64;
        self.counted_to = at;
        self.counted_lines
    }

    /// Hands over the lines before `at` (the start of a whole line, at most
    /// [`CappedLines::whole_lines_end`]) with the long ones among them; the rest stays, its
    /// lines numbered from 0 again.
    pub(crate) fn take_front(&mut self, at: usize) -> Front {
        let at = at.min(self.line_start);
        let lines = if at >= self.counted_to {
            self.lines_before(at)
        } else {
            let after = memchr::memchr_iter(b'\n', &self.data[at..self.counted_to]).count();
            self.counted_lines - after as u64
        };
        self.counted_lines -= lines;
        self.counted_to -= at;
        let rest = self.data.split_off(at);
        let data = std::mem::replace(&mut self.data, rest);
        let rest = self.long.split_off(self.long.partition_point(|l| l.start < at));
        let long = std::mem::replace(&mut self.long, rest);
        for l in &mut self.long {
            l.line -= lines;
            l.start -= at;
        }
        self.line_start -= at;
        Front { data, long, lines }
    }

    /// Drops the line being gathered (when its newline will never come); returns its bytes
    /// as read.
    pub(crate) fn drop_partial_line(&mut self) -> u64 {
        self.data.truncate(self.line_start);
        std::mem::take(&mut self.line_len)
    }

    /// The lines gathered (a last line without a newline counts as ended) and the long ones.
    pub(crate) fn finish(mut self) -> (Vec<u8>, Vec<LongLine>) {
        if self.line_len > 0 {
            self.end_line(false);
        }
        (self.data, self.long)
    }
}

/// How many bytes of input `data` and its `long` lines (as [`CappedLines`] kept them) stand
/// for: each long line counted whole.
pub(crate) fn read_len(data: &[u8], long: &[LongLine], cap: usize) -> u64 {
    let dropped: u64 = long.iter().map(|l| l.full.saturating_sub(cap as u64)).sum();
    data.len() as u64 + dropped
}

/// Whether `data` may hold a line longer than `cap`. Such a line covers a whole block of
/// `(cap + 1) / 2` bytes aligned to that size, so a block without a newline is the only way
/// to hold one: two `memchr` calls per MiB of ordinary lines, where a pass over every line
/// would cost a call per line.
pub(crate) fn may_hold_long_line(data: &[u8], cap: usize) -> bool {
    let block = (cap.saturating_add(1) / 2).max(1);
    data.len() > cap && data.chunks_exact(block).any(|b| memchr(b'\n', b).is_none())
}

/// A run of whole lines, or one line longer than the cap.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Lines to parse; `first` is the place of the first among all the lines cut.
    Lines { data: Vec<u8>, first: u64 },
    /// A line longer than the cap: its kept bytes, its place, its full length.
    Long { kept: Vec<u8>, line: u64, full: u64 },
}

/// `data` (as [`CappedLines`] gathered it, with its `long` lines) cut into runs of ordinary
/// lines and the long lines between them, in order. Without long lines it is one run, not
/// copied.
pub(crate) fn pieces(data: Vec<u8>, long: &[LongLine]) -> Vec<Piece> {
    if long.is_empty() {
        return if data.is_empty() {
            Vec::new()
        } else {
            vec![Piece::Lines { data, first: 0 }]
        };
    }
    let mut out = Vec::with_capacity(2 * long.len() + 1);
    let (mut from, mut next_line) = (0, 0);
    for l in long {
        let start = l.start.min(data.len());
        if start > from {
            out.push(Piece::Lines {
                data: data[from..start].to_vec(),
                first: next_line,
            });
        }
        let end = memchr(b'\n', &data[start..]).map_or(data.len(), |nl| start + nl);
        out.push(Piece::Long {
            kept: data[start..end].to_vec(),
            line: l.line,
            full: l.full,
        });
        (from, next_line) = ((end + 1).min(data.len()), l.line + 1);
    }
    if from < data.len() {
        out.push(Piece::Lines {
            data: data[from..].to_vec(),
            first: next_line,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What cutting must give, line by line: every line longer than `cap` alone and kept to
    /// `cap` bytes, the others in runs between them.
    fn naive(data: &[u8], cap: usize) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut run: Vec<u8> = Vec::new();
        let mut run_first = 0;
        let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            if text.len() > cap {
                if !run.is_empty() {
                    out.push(Piece::Lines {
                        data: std::mem::take(&mut run),
                        first: run_first,
                    });
                }
                out.push(Piece::Long {
                    kept: text[..cap].to_vec(),
                    line: i as u64,
                    full: text.len() as u64,
                });
                run_first = i as u64 + 1;
            } else {
                run.extend_from_slice(line);
            }
        }
        if !run.is_empty() {
            out.push(Piece::Lines {
                data: run,
                first: run_first,
            });
        }
        out
    }

    /// `data` gathered in one block and cut into pieces.
    fn cut(data: &[u8], cap: usize) -> Vec<Piece> {
        let mut lines = CappedLines::with_capacity(cap, data.len());
        lines.push(data);
        let (capped, long) = lines.finish();
        pieces(capped, &long)
    }

    /// Pieces as one entry per line: its number, its bytes, its full length if it is long.
    fn per_line(pieces: &[Piece], offset: u64) -> Vec<(u64, Vec<u8>, Option<u64>)> {
        let mut out = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Lines { data, first } => {
                    for (i, line) in data.split_inclusive(|&b| b == b'\n').enumerate() {
                        out.push((offset + first + i as u64, line.to_vec(), None));
                    }
                }
                Piece::Long { kept, line, full } => {
                    out.push((offset + line, kept.clone(), Some(*full)));
                }
            }
        }
        out
    }

    fn lines_of(lengths: &[usize], last_newline: bool) -> Vec<u8> {
        let mut data = Vec::new();
        for (i, &len) in lengths.iter().enumerate() {
            data.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
            data.push(b'\n');
        }
        if !last_newline {
            data.pop();
        }
        data
    }

    #[test]
    fn a_long_line_between_others_stands_alone_kept_to_the_cap() {
        let data = lines_of(&[3, 12, 4], true);
        assert_eq!(
            cut(&data, 5),
            [
                Piece::Lines {
                    data: b"aaa\n".to_vec(),
                    first: 0
                },
                Piece::Long {
                    kept: b"bbbbb".to_vec(),
                    line: 1,
                    full: 12
                },
                Piece::Lines {
                    data: b"cccc\n".to_vec(),
                    first: 2
                },
            ]
        );
    }

    #[test]
    fn a_last_line_without_newline_counts_and_nothing_is_copied_without_long_lines() {
        assert_eq!(
            cut(&lines_of(&[2, 9], false), 4),
            [
                Piece::Lines {
                    data: b"aa\n".to_vec(),
                    first: 0
                },
                Piece::Long {
                    kept: b"bbbb".to_vec(),
                    line: 1,
                    full: 9
                },
            ]
        );
        // Lines well under the cap: every block of half the cap has a newline.
        let short = lines_of(&[2, 2, 2, 2], false);
        assert!(!may_hold_long_line(&short, 8));
        assert_eq!(cut(&short, 8), naive(&short, 8));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Any lines, any cap, gathered in blocks of any size: the pieces a line-by-line cut
        /// gives, and the quick test never misses a long line.
        #[test]
        fn cutting_equals_the_line_by_line_cut(
            lengths in prop::collection::vec(0usize..40, 0..30),
            last_newline in any::<bool>(),
            cap in 1usize..20,
            block in 1usize..50,
        ) {
            let data = lines_of(&lengths, last_newline);
            let expected = naive(&data, cap);
            let has_long = expected.iter().any(|p| matches!(p, Piece::Long { .. }));
            prop_assert!(!has_long || may_hold_long_line(&data, cap));
            prop_assert_eq!(&cut(&data, cap), &expected);
            let mut gathered = CappedLines::with_capacity(cap, 0);
            for b in data.chunks(block) {
                gathered.push(b);
            }
            let (capped, long) = gathered.finish();
            prop_assert_eq!(pieces(capped, &long), expected);
        }

        /// Lines handed over at any line start along the way (as the local reader hands over
        /// chunks up to a record boundary) are the lines of the line-by-line cut, numbered the same, and their read
        /// lengths add up to the input's.
        #[test]
        fn handing_over_along_the_way_keeps_every_line_and_its_number(
            lengths in prop::collection::vec(0usize..40, 0..30),
            last_newline in any::<bool>(),
            cap in 1usize..20,
            block in 1usize..50,
            hand_over in prop::collection::vec(any::<Option<prop::sample::Index>>(), 0..40),
        ) {
            let data = lines_of(&lengths, last_newline);
            let expected = per_line(&naive(&data, cap), 0);
            let mut gathered = CappedLines::with_capacity(cap, 0);
            let (mut got, mut taken, mut read) = (Vec::new(), 0u64, 0u64);
            for (i, b) in data.chunks(block).enumerate() {
                gathered.push(b);
                if let Some(Some(pick)) = hand_over.get(i) {
                    // Any line start among the whole lines, as a record boundary may be.
                    let whole = &gathered.gathered()[..gathered.whole_lines_end()];
                    let starts: Vec<usize> = std::iter::once(0)
                        .chain(memchr::memchr_iter(b'\n', whole).map(|nl| nl + 1))
                        .collect();
                    let front = gathered.take_front(starts[pick.index(starts.len())]);
                    let lines = per_line(&pieces(front.data.clone(), &front.long), taken);
                    prop_assert_eq!(lines.len() as u64, front.lines);
                    read += read_len(&front.data, &front.long, cap);
                    taken += front.lines;
                    got.extend(lines);
                }
            }
            let (rest, long) = gathered.finish();
            read += read_len(&rest, &long, cap);
            got.extend(per_line(&pieces(rest, &long), taken));
            prop_assert_eq!(got, expected);
            prop_assert_eq!(read, data.len() as u64);
        }
    }
}
