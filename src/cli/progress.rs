//! The one progress display of the command line: an indicatif bar on standard error, drawn
//! only when that is a terminal (scripts and tests see only the final lines on stdout).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of one long operation.
pub struct Progress(ProgressBar);

impl Progress {
    /// A bar for `what` (e.g. `repair`), counting `unit` (e.g. `objects`); hidden when
    /// `quiet` (JSON output) or when standard error is not a terminal.
    pub fn new(what: &str, unit: &str, quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let b = ProgressBar::with_draw_target(Some(0), target);
        b.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {unit}, {{msg}} ({{eta}} left)"
            ))
            .expect("a valid template")
            .progress_chars("=> "),
        );
        Progress(b)
    }

    /// `done` of `total` so far, and a message.
    pub fn update(&self, done: u64, total: u64, msg: String) {
        self.0.set_length(total.max(done));
        self.0.set_position(done);
        self.0.set_message(msg);
    }

    /// Seconds since the bar was made.
    pub fn elapsed_secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }

    /// Removes the bar.
    pub fn finish(self) {
        self.0.finish_and_clear();
    }
}
