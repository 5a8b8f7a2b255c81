//! Does nothing and succeeds: the unit of runtime overhead.
use subagent_sdk::{Outcome, RunError, Subagent, Task};

struct Noop;

impl Subagent for Noop {
    fn run(_task: Task) -> Result<Outcome, RunError> {
        Ok(Outcome::summary("ok"))
    }
}

subagent_sdk::export!(Noop);
