//! The smallest useful subagent: greets, and counts the workspace's top-level entries.
use subagent_sdk::{Outcome, RunError, Subagent, Task, WORKSPACE};

struct Hello;

impl Subagent for Hello {
    fn run(task: Task) -> Result<Outcome, RunError> {
        subagent_sdk::log::info(&format!("task {} started", task.id));
        let entries = std::fs::read_dir(WORKSPACE)?.count();
        Ok(Outcome::summary(format!(
            "Hello, {}! The workspace has {entries} top-level entries.",
            task.prompt
        )))
    }
}

subagent_sdk::export!(Hello);
