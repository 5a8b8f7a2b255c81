//! Live progress on stderr: a spinner on a terminal, plain lines elsewhere.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::task::LogLevel;
use crate::tasks::EventKind;

pub struct Progress {
    name: String,
    spinner: Option<ProgressBar>,
    last: Mutex<Option<String>>,
}

impl Progress {
    /// Progress for subagent `name`; `terminal` selects the spinner.
    pub fn new(name: &str, terminal: bool) -> Progress {
        let spinner = terminal.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {elapsed} {wide_msg}")
                    .expect("valid template"),
            );
            bar.set_prefix(name.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            name: name.to_owned(),
            spinner,
            last: Mutex::new(None),
        }
    }

    pub fn show(&self, event: &EventKind) {
        let line = match event {
            EventKind::Progress { progress } => progress.to_string(),
            EventKind::Log { level, message } if *level >= LogLevel::Info => {
                format!("{}: {message}", level.as_str())
            }
            _ => return,
        };
        match &self.spinner {
            Some(bar) => bar.set_message(super::visible(&line).into_owned()),
            None => {
                let mut last = self.last.lock().unwrap();
                if last.as_deref() != Some(line.as_str()) {
                    errln!("[{}] {line}", self.name);
                    *last = Some(line);
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}
