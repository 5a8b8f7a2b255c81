//! Drives the `subagents` interface as the prompt says (JSON):
//! - `{"spawn": [{"subagent", "prompt", "write_dirs"?, "readonly"?, "timeout_ms"?}],
//!    "await": bool, "await_timeout_ms"?}`: launch children, optionally await them;
//! - `{"chain": N}`: launch `nester` with `{"chain": N-1}` and await it, down to 0;
//! - `{"foreign": ID}`: try to await, cancel and message a task that is not a descendant.
//!
//! Returns data `{"launched": [...ids], "errors": [...], "results": [...], "depth": n}`.
use serde_json::{Value, json};
use std::time::Duration;
use subagent_sdk::children::{self, LaunchRequest};
use subagent_sdk::{Outcome, RunError, Subagent, Task};

struct Nester;

impl Subagent for Nester {
    fn run(task: Task) -> Result<Outcome, RunError> {
        let spec: Value = serde_json::from_str(&task.prompt).map_err(RunError::invalid)?;
        let mut launched = Vec::new();
        let mut errors = Vec::new();
        let mut results = Vec::new();

        if let Some(n) = spec.get("chain").and_then(Value::as_u64) {
            if n == 0 {
                return Ok(Outcome::summary("bottom").with_data(json!({"depth": 0})));
            }
            match children::launch("nester", &json!({"chain": n - 1}).to_string()) {
                Ok(id) => {
                    let done = children::wait(&[id], None)?;
                    let child = &done.completed[0];
                    let data: Value = child.data.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null);
                    return Ok(Outcome::summary(format!("chain {n}")).with_data(json!({
                        "depth": data["depth"].as_u64().map(|d| d + 1),
                        "child_status": child.status.as_str(),
                        "child_error": child.error_message,
                        "errors": data["errors"],
                    })));
                }
                Err(err) => return Ok(Outcome::summary(format!("chain {n}")).with_data(json!({"depth": 0, "errors": [err.describe()]}))),
            }
        }

        if let Some(id) = spec.get("foreign").and_then(Value::as_str) {
            let id = id.to_owned();
            match children::wait(std::slice::from_ref(&id), Some(Duration::ZERO)) {
                Ok(answer) => errors.push(format!("await: missing={:?}", answer.missing)),
                Err(err) => errors.push(format!("await: {err}")),
            }
            errors.push(format!("cancel: {}", children::cancel(&id).err().map(|e| e.describe()).unwrap_or("ok".into())));
            errors.push(format!("send: {}", children::send(&id, "hi").err().map(|e| e.describe()).unwrap_or("ok".into())));
        }

        for child in spec.get("spawn").and_then(Value::as_array).into_iter().flatten() {
            let mut request = LaunchRequest::new(child["subagent"].as_str().unwrap_or(""), child["prompt"].as_str().unwrap_or(""));
            request.write_dirs = child.get("write_dirs").and_then(Value::as_array).map(|dirs| dirs.iter().filter_map(Value::as_str).map(str::to_owned).collect());
            request.readonly = child.get("readonly").and_then(Value::as_bool).unwrap_or(false);
            request.timeout_ms = child.get("timeout_ms").and_then(Value::as_u64);
            match children::launch_with(&request) {
                Ok(id) => launched.push(id),
                Err(err) => errors.push(err.describe()),
            }
        }

        if spec.get("await").and_then(Value::as_bool).unwrap_or(false) && !launched.is_empty() {
            let timeout = spec.get("await_timeout_ms").and_then(Value::as_u64).map(Duration::from_millis);
            let answer = children::wait(&launched, timeout)?;
            for child in &answer.completed {
                results.push(json!({"id": child.id, "status": child.status.as_str(), "summary": child.summary, "data": child.data, "error": child.error_message}));
            }
            if subagent_sdk::cancelled() {
                return Err(RunError::Cancelled);
            }
        }
        Ok(Outcome::summary(format!("launched {}", launched.len())).with_data(json!({
            "launched": launched, "errors": errors, "results": results,
        })))
    }
}

subagent_sdk::export!(Nester);
