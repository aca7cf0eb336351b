//! Progress bars for training runs.

use apprentice::distill::train::TrainObserver;
use indicatif::{ProgressBar, ProgressStyle};

/// One bar per training run, left on screen with its final numbers when the run ends.
pub struct Bars {
    quiet: bool,
    bar: Option<ProgressBar>,
    name: String,
    last: String,
}

impl Bars {
    /// Bars, or nothing at all when `quiet`.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bar: None,
            name: String::new(),
            last: String::new(),
        }
    }
}

impl TrainObserver for Bars {
    fn start(&mut self, name: &str, epochs: usize, done: usize) {
        self.name = name.to_string();
        if self.quiet {
            return;
        }
        let bar = ProgressBar::new(epochs as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:<28} [{bar:30}] {pos:>3}/{len} epochs  {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        bar.set_position(done as u64);
        if done > 0 {
            bar.set_message(format!("resumed after epoch {done}"));
        }
        self.bar = Some(bar);
    }

    fn epoch(&mut self, _epoch: usize, train_loss: f64, validation_accuracy: f64) {
        self.last = format!(
            "loss {train_loss:.4}  val acc {:.2}%",
            validation_accuracy * 100.0
        );
        if let Some(bar) = &self.bar {
            bar.set_message(self.last.clone());
            bar.inc(1);
        }
    }

    fn warn(&mut self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}
