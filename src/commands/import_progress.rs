//! What `import` shows while it runs: rows and rows/s as the job reports them, then the rows
//! the segment index has yet to apply. On a terminal, a bar redrawn in place; otherwise (a
//! log, a pipe) a line every few seconds. Each phase ends with a line of its totals.

use std::io::Read;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a running import's rows and the index's backlog are read for the progress.
const POLL: Duration = Duration::from_millis(250);
/// How often a line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// One phase's progress: importing rows, or indexing them.
pub struct RowProgress {
    bar: ProgressBar,
    phase: Phase,
    started: Instant,
    last_line: Instant,
    /// Rows done so far (imported, or indexed).
    rows: u64,
}

#[derive(Clone, Copy)]
enum Phase {
    Importing,
    Indexing { total: u64 },
}

impl RowProgress {
    /// The import phase of a file of `bytes`: the bar follows the bytes read, the text the rows.
    pub fn importing(bytes: u64) -> Self {
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] importing {wide_bar} {percent:>3}% {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        Self::new(ProgressBar::new(bytes).with_style(style), Phase::Importing)
    }

    /// The indexing phase, with `total` rows left to apply at its start.
    pub fn indexing(total: u64) -> Self {
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] indexing  {wide_bar} {pos}/{len} rows {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        Self::new(
            ProgressBar::new(total).with_style(style),
            Phase::Indexing { total },
        )
    }

    fn new(bar: ProgressBar, phase: Phase) -> Self {
        let now = Instant::now();
        Self {
            bar,
            phase,
            started: now,
            last_line: now,
            rows: 0,
        }
    }

    /// `input`, counted as it is read (the import phase's bar).
    pub fn reading<R: Read>(&self, input: R) -> impl Read + use<R> {
        self.bar.wrap_read(input)
    }

    /// Records that `rows` are done now.
    pub fn rows_done(&mut self, rows: u64) {
        self.rows = rows;
        match self.phase {
            Phase::Importing => {
                self.bar
                    .set_message(format!("{} rows, {} rows/s", grouped(rows), self.rate()))
            }
            Phase::Indexing { .. } => {
                self.bar.set_position(rows);
                self.bar.set_message(format!("({} rows/s)", self.rate()));
            }
        }
        if self.bar.is_hidden() && self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            eprintln!("{}", self.line());
        }
    }

    /// Awaits `work`, reading every [`POLL`] how many rows it has done (`None`: not known).
    pub async fn follow<T>(
        &mut self,
        work: impl Future<Output = T>,
        mut rows: impl AsyncFnMut() -> Option<u64>,
    ) -> T {
        tokio::pin!(work);
        let mut ticks = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = ticks.tick() => {
                    if let Some(rows) = rows().await {
                        self.rows_done(rows);
                    }
                }
            }
        }
    }

    /// Ends the phase: clears the bar and prints its totals.
    pub fn finish(self) {
        self.bar.finish_and_clear();
        eprintln!("{}", self.line());
    }

    fn rate(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        grouped((self.rows as f64 / seconds).round() as u64)
    }

    fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        match self.phase {
            Phase::Importing => format!(
                "imported {} rows in {elapsed:.1} s ({} rows/s)",
                grouped(self.rows),
                self.rate()
            ),
            Phase::Indexing { total } => format!(
                "indexed {} of {} rows in {elapsed:.1} s ({} rows/s)",
                grouped(self.rows),
                grouped(total),
                self.rate()
            ),
        }
    }
}

/// The indexing phase: waits until `backlog` (change-log entries not yet indexed, and the
/// contacts they name) is empty, showing how many of the `written` rows the index has. Ends at
/// the first error of `backlog`, without the totals line.
pub async fn wait_for_index<E>(
    written: u64,
    mut backlog: impl AsyncFnMut() -> Result<(u64, u64), E>,
) -> Result<(), E> {
    let mut progress = RowProgress::indexing(written);
    loop {
        let (entries, contacts) = backlog().await?;
        progress.rows_done(written.saturating_sub(contacts));
        if entries == 0 {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    progress.finish();
    Ok(())
}

/// `1234567` as `1,234,567`.
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (n, digit) in digits.chars().enumerate() {
        if n > 0 && (digits.len() - n).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
