//! Talks to the host: `collect N` waits for N follow-up messages and
//! returns them; `until-cancel` waits politely until cancelled; `progress N`
//! reports N progress rounds; `log` writes log lines.
use std::time::Duration;
use subagent_sdk::{Outcome, RunError, Subagent, Task, messages, progress};

struct Echo;

impl Subagent for Echo {
    fn run(task: Task) -> Result<Outcome, RunError> {
        let mut words = task.prompt.split_whitespace();
        let verb = words.next().unwrap_or("");
        let n: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        match verb {
            "collect" => {
                let mut got = Vec::new();
                while got.len() < n {
                    if subagent_sdk::cancelled() {
                        return Err(RunError::Cancelled);
                    }
                    if let Some(message) = messages::wait(Duration::from_secs(5)) {
                        got.push(message);
                    }
                }
                Ok(Outcome::summary(got.join("|")).with_data(serde_json::json!(got)))
            }
            "until-cancel" => {
                while !subagent_sdk::cancelled() {
                    messages::wait(Duration::from_secs(60));
                }
                Err(RunError::Cancelled)
            }
            "progress" => {
                for round in 1..=n as u32 {
                    progress::round(round);
                    progress::tool("read_file", serde_json::json!({"path": format!("f{round}")}));
                }
                progress::note("done");
                Ok(Outcome::summary(format!("{n} rounds")))
            }
            "log" => {
                subagent_sdk::log::info("info line");
                subagent_sdk::log::warn("warn line");
                subagent_sdk::log::info(&"y".repeat(40_000));
                Ok(Outcome::summary("logged"))
            }
            "task" => Ok(Outcome::summary("task").with_data(serde_json::json!({
                "id": task.id, "description": task.description, "prompt": task.prompt,
                "system_prompt": task.system_prompt, "workspace": task.workspace,
                "writable_dirs": task.writable_dirs, "model": task.model, "parent_id": task.parent_id,
            }))),
            other => Err(RunError::invalid(format!("unknown verb `{other}`"))),
        }
    }
}

subagent_sdk::export!(Echo);
