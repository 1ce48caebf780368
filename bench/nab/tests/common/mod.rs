//! What the NAB integration tests share: the corpus, or a skip message when it is absent.

use loglens_nab::{default_corpus, default_data_dir, Series};

/// The NAB corpus, or `None` after saying why the test skips.
pub fn corpus() -> Option<Vec<Series>> {
    let corpus = default_corpus().unwrap();
    if corpus.is_none() {
        eprintln!(
            "skipped: NAB data not found at {} (set NAB_DATA)",
            default_data_dir().display()
        );
    }
    corpus
}
