//! Human output on stdout that stops quietly when the reader goes away (`loglens … | head`).

use std::io::Write;

/// Stdout, line by line; a closed pipe ends the process with success instead of a panic.
pub struct Output {
    stdout: std::io::Stdout,
}

impl Output {
    /// Standard output.
    pub fn stdout() -> Self {
        Output {
            stdout: std::io::stdout(),
        }
    }

    /// Writes one line.
    pub fn line(&mut self, text: &str) -> anyhow::Result<()> {
        let mut lock = self.stdout.lock();
        match writeln!(lock, "{text}") {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            other => Ok(other?),
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
