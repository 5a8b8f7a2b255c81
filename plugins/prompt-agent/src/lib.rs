//! `prompt-agent`: run a prompt-only subagent definition as an agent loop
//! with the host's model and sandboxed file tools.
//!
//! The host runs this component for definitions that have a prompt but no
//! component of their own (such as Claude Code or Cursor style markdown
//! definitions). It needs `tools = ["model"]`; the model is the task's
//! effective model, chosen by the host.
//!
//! # Input
//!
//! - `task.prompt`: the task, sent as the first user message. Empty is
//!   `invalid-input`.
//! - `task.system_prompt`: the definition's prompt. The system prompt is a
//!   built-in preamble (the workspace is `/workspace`, what this run may
//!   write, the tools, the round limit, "call finish with a summary"), then a
//!   blank line and the definition's prompt, if any.
//! - `task.writable_dirs`: where `write_file` may write. For a read-only run
//!   (none), `write_file` is not offered at all.
//!
//! # Tools
//!
//! Paths are relative to `/workspace` or absolute under it; `.` and `..` are
//! folded lexically, and a path that leaves the workspace is refused. Each
//! tool answers with text, and a failure is an answer too (`error: …`,
//! `permission denied: …`) so the model can correct itself; an unknown tool
//! or bad arguments (unknown fields are rejected) are answered the same way.
//!
//! - `list_dir {path}`: the entries sorted by name, directories ending in
//!   `/`, files with their size; the header says whether the directory is
//!   writable. At most 500 entries.
//! - `read_file {path, offset?, limit?}`: lines `offset` (1-based, default 1)
//!   onwards, at most `limit` of them, numbered like `cat -n`. Output stops
//!   after 64 KiB and lines are cut at 2000 bytes; either way the answer
//!   ends by saying which `offset` reads on. Binary files (a NUL byte in the
//!   first 8 KiB) are not shown.
//! - `search {query, regex?, include?}`: lines of the workspace's text files
//!   matching `query` (literal unless `regex`; case-insensitive unless it has
//!   an uppercase letter), as `path:line: text`, at most 100 with a count of
//!   the rest. `include` is a glob or a list of globs; one without `/` matches
//!   a file name at any depth. Directories named `.git`, `target` and
//!   `node_modules` and files over 4 MiB are skipped.
//! - `write_file {path, content}`: create or replace a file, creating its
//!   directories. A path outside `task.writable_dirs` is refused without
//!   trying (`permission denied: /workspace/src/a.rs is read-only in this
//!   run; you may write only in /workspace/reports/`); a write the sandbox
//!   refuses anyway is reported the same way with the OS error.
//! - `finish {summary}`: end the run with `summary` as the answer.
//!
//! # Loop
//!
//! Each round (at most 20): stop with `cancelled` if the task was cancelled;
//! report progress `round(n)`; add any waiting follow-up messages as user
//! messages (`Follow-up from the user: …`); ask the model. The assistant
//! message and one tool message per call are added to the conversation, and
//! each call is reported as progress `tool(name, args)` before it runs.
//! The run ends when the model calls `finish`, or replies without calling a
//! tool (its text is the answer; an empty reply is answered with a nudge
//! instead). If a follow-up message is waiting at that moment, the run goes
//! on: `finish` is answered `not finished: …` and the message is added.
//!
//! A failed model call (including `budget-exceeded`) fails the run with
//! `model call failed in round N: kind: message`; 20 rounds without an
//! answer fail it with `no answer after 20 rounds: …`.
//!
//! # Output
//!
//! The summary is the model's answer. The data is a JSON object:
//! - `rounds`: model calls made;
//! - `tool_calls`: tool calls the model made, `finish` included;
//! - `files_written`: guest paths (`/workspace/reports/todo.md`) written by
//!   `write_file`, in order of first write, without repeats.

mod agent;
mod tools;
mod workspace;

use std::path::Path;

use serde_json::Value;
use subagent_sdk::model::{self, ChatRequest, ChatResponse, ModelError};
use subagent_sdk::{Outcome, RunError, Subagent, Task, WORKSPACE, progress};

use crate::agent::{Agent, Env};
use crate::tools::Tools;
use crate::workspace::Workspace;

struct PromptAgent;

impl Subagent for PromptAgent {
    fn run(task: Task) -> Result<Outcome, RunError> {
        if task.prompt.trim().is_empty() {
            return Err(RunError::invalid(
                "empty prompt: say what the subagent should do",
            ));
        }
        let workspace = Workspace::new(Path::new(WORKSPACE), &task.writable_dirs);
        let agent = Agent::new(
            task.system_prompt.as_deref(),
            &task.prompt,
            Tools::new(workspace),
        );
        agent.run(&mut Host)
    }
}

/// The real host.
struct Host;

impl Env for Host {
    fn complete(&mut self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let response = model::complete(request)?;
        subagent_sdk::log::debug(&format!(
            "{}: {} input + {} output tokens, {} tool calls",
            response.model,
            response.usage.input_tokens,
            response.usage.output_tokens,
            response.tool_calls.len()
        ));
        Ok(response)
    }

    fn next_message(&mut self) -> Option<String> {
        subagent_sdk::messages::next()
    }

    fn cancelled(&mut self) -> bool {
        subagent_sdk::cancelled()
    }

    fn round(&mut self, n: u32) {
        progress::round(n);
    }

    fn tool(&mut self, name: &str, args: Value) {
        progress::tool(name, args);
    }
}

subagent_sdk::export!(PromptAgent);
