//! The progress bar of long runs on a terminal: stage, bytes read of the total, lines, lines/s
//! and ETA. Shown only once a stage has run for about two seconds (short runs stay quiet) and
//! only when stderr is a terminal; `--json` runs get none.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use loglens_engine::progress::{Progress, Stage};

/// How long a stage runs before its bar appears.
const QUIET_FOR: Duration = Duration::from_secs(2);

/// An indicatif bar behind the engine's [`Progress`].
pub struct Bar {
    bar: ProgressBar,
    started: Mutex<Option<Instant>>,
}

impl Bar {
    /// A bar for a terminal's stderr; `None` when stderr is no terminal or the output is JSON
    /// (a machine reads it).
    pub fn unless_json(json: bool) -> Option<Arc<Bar>> {
        use std::io::IsTerminal;
        (!json && std::io::stderr().is_terminal()).then(|| {
            Arc::new(Bar {
                bar: ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()),
                started: Mutex::new(None),
            })
        })
    }
}

impl Progress for Bar {
    fn begin(&self, stage: Stage, total_bytes: Option<u64>) {
        let template = "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}";
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar.set_prefix(stage.name());
        self.bar.set_length(total_bytes.unwrap_or(0));
        self.bar.set_position(0);
        if let Ok(mut started) = self.started.lock() {
            *started = Some(Instant::now());
        }
    }

    fn update(&self, lines: u64, bytes: u64) {
        let elapsed = self
            .started
            .lock()
            .ok()
            .and_then(|s| *s)
            .map_or(Duration::ZERO, |s| s.elapsed());
        if self.bar.is_hidden() && elapsed >= QUIET_FOR {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        let rate = lines as f64 / elapsed.as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{} lines, {} lines/s",
            HumanCount(lines),
            HumanCount(rate as u64)
        ));
        self.bar.set_position(bytes);
    }

    fn end(&self) {
        self.bar.finish_and_clear();
        self.bar.set_draw_target(ProgressDrawTarget::hidden());
    }
}
