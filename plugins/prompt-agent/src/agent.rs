//! The agent loop: ask the model, run the tools it calls, repeat until it
//! finishes. The host is behind [`Env`], so tests drive the loop natively
//! with a scripted model.

use serde_json::{Value, json};
use subagent_sdk::model::{ChatRequest, ChatResponse, Message, ModelError};
use subagent_sdk::{Outcome, RunError};

use crate::tools::{self, Reply, Tools};

/// Rounds (model calls) a run may take before it fails.
pub const DEFAULT_MAX_TURNS: u32 = 20;

/// What the loop needs from the host.
pub trait Env {
    /// One chat completion.
    fn complete(&mut self, request: &ChatRequest) -> Result<ChatResponse, ModelError>;
    /// The next waiting follow-up message, without blocking.
    fn next_message(&mut self) -> Option<String>;
    /// Whether the task has been asked to stop.
    fn cancelled(&mut self) -> bool;
    /// Round `n` (1-based) starts.
    fn round(&mut self, n: u32);
    /// The model calls tool `name` with `args`.
    fn tool(&mut self, name: &str, args: Value);
}

/// One run of the loop.
pub struct Agent {
    /// The system prompt: the sandbox preamble, then the definition's prompt.
    pub system: String,
    /// The task.
    pub prompt: String,
    pub max_turns: u32,
    pub tools: Tools,
}

impl Agent {
    /// An agent for `prompt`, following the definition's `system_prompt`.
    pub fn new(system_prompt: Option<&str>, prompt: &str, tools: Tools) -> Agent {
        let max_turns = DEFAULT_MAX_TURNS;
        let mut system = preamble(&tools, max_turns);
        if let Some(definition) = system_prompt.map(str::trim).filter(|text| !text.is_empty()) {
            system.push_str("\n\n");
            system.push_str(definition);
        }
        Agent {
            system,
            prompt: prompt.to_owned(),
            max_turns,
            tools,
        }
    }

    /// Run the loop to the end.
    ///
    /// The model's answer is the summary it gives `finish`, or the text of a
    /// reply that calls no tool. Follow-up messages are added as user messages
    /// at the start of each round; one that arrives as the model finishes
    /// keeps the loop going.
    ///
    /// # Errors
    ///
    /// `RunError::Cancelled` when the task is cancelled (checked each round);
    /// `RunError::Failed` when a model call fails or after `max_turns` rounds
    /// without an answer.
    pub fn run(mut self, env: &mut impl Env) -> Result<Outcome, RunError> {
        let definitions = tools::definitions(self.tools.workspace().is_read_only());
        let mut request = ChatRequest::new(
            vec![
                Message::system(self.system.as_str()),
                Message::user(self.prompt.as_str()),
            ],
            definitions,
        );
        let mut inbox: Vec<String> = Vec::new();
        let mut tool_calls = 0usize;
        for round in 1..=self.max_turns {
            if env.cancelled() {
                return Err(RunError::Cancelled);
            }
            env.round(round);
            collect(env, &mut inbox);
            for text in inbox.drain(..) {
                request
                    .messages
                    .push(Message::user(format!("Follow-up from the user: {text}")));
            }
            let response = env.complete(&request).map_err(|err| {
                RunError::failed(format!(
                    "model call failed in round {round}: {}",
                    err.describe()
                ))
            })?;
            let done = |summary: String, tools: &Tools, tool_calls: usize| {
                Outcome::summary(summary).with_data(json!({
                    "rounds": round,
                    "tool_calls": tool_calls,
                    "files_written": tools.files_written(),
                }))
            };

            if response.tool_calls.is_empty() {
                let answer = response.content.trim().to_owned();
                request
                    .messages
                    .push(Message::assistant(response.content, Vec::new()));
                if collect(env, &mut inbox) {
                    continue;
                }
                if answer.is_empty() {
                    request.messages.push(Message::user(
                        "Your reply was empty. Go on with the task using the tools, \
                         or call finish with your answer.",
                    ));
                    continue;
                }
                return Ok(done(answer, &self.tools, tool_calls));
            }

            request.messages.push(Message::assistant(
                response.content,
                response.tool_calls.clone(),
            ));
            for call in response.tool_calls {
                tool_calls += 1;
                let args = serde_json::from_str(&call.arguments)
                    .unwrap_or_else(|_| Value::String(call.arguments.clone()));
                env.tool(&call.name, args);
                let result = match self.tools.call(&call.name, &call.arguments) {
                    Reply::Text(text) => text,
                    Reply::Finish(summary) => {
                        if !collect(env, &mut inbox) {
                            return Ok(done(summary, &self.tools, tool_calls));
                        }
                        "not finished: the user sent a follow-up (below). \
                         Take it into account, then call finish again."
                            .to_owned()
                    }
                };
                request.messages.push(Message::tool_result(call.id, result));
            }
        }
        Err(RunError::failed(format!(
            "no answer after {} rounds: the model neither called finish nor answered without tools",
            self.max_turns
        )))
    }
}

/// Move the waiting follow-up messages into `inbox`; whether it holds any.
fn collect(env: &mut impl Env, inbox: &mut Vec<String>) -> bool {
    while let Some(text) = env.next_message() {
        inbox.push(text);
    }
    !inbox.is_empty()
}

/// What the model is told about the sandbox, before the definition's prompt.
fn preamble(tools: &Tools, max_turns: u32) -> String {
    let workspace = tools.workspace();
    let writes = if workspace.is_read_only() {
        "This run is read-only: you cannot write any file.".to_owned()
    } else {
        format!(
            "You may write only in: {}. Everything else is read-only.",
            workspace.writable_description()
        )
    };
    let write_tool = if workspace.is_read_only() {
        ""
    } else {
        "\n- write_file: create or replace a file."
    };
    format!(
        "You are a subagent working in a sandbox on the task the user gives you.\n\
         \n\
         The workspace is at /workspace; you can read all of it. {writes} \
         There is no shell and no network: only these tools.\n\
         - list_dir: list a directory.\n\
         - read_file: read a text file, by lines.\n\
         - search: find lines matching text or a regex in the workspace's files.{write_tool}\n\
         - finish: end the task with your answer.\n\
         Paths are relative to /workspace, or absolute under it. You have at most \
         {max_turns} rounds; when done, call finish with a summary of what you found and \
         did, naming any files you wrote. That summary is what the user sees."
    )
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::fs;

    use subagent_sdk::model::{Role, StopReason, ToolCall, Usage};
    use subagent_sdk::testing::tree;

    use super::*;
    use crate::workspace::Workspace;

    /// A scripted model turn: text and `(tool, arguments)` calls.
    type Turn = (&'static str, Vec<(&'static str, Value)>);

    /// A fake host: answers with scripted turns and records what it saw.
    #[derive(Default)]
    struct Script {
        turns: VecDeque<Result<Turn, ModelError>>,
        /// Follow-ups that arrive just before the given model call (1-based)
        /// returns, or — for call 0 — before the run starts.
        follow_ups: Vec<(usize, &'static str)>,
        cancel_at_round: Option<u32>,
        requests: Vec<ChatRequest>,
        events: Vec<String>,
        round: u32,
        delivered: usize,
    }

    impl Script {
        fn new(turns: Vec<Turn>) -> Script {
            Script {
                turns: turns.into_iter().map(Ok).collect(),
                ..Script::default()
            }
        }
    }

    impl Env for Script {
        fn complete(&mut self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
            self.requests.push(request.clone());
            let n = self.requests.len();
            let (text, calls) = self.turns.pop_front().expect("the script ran out")?;
            let tool_calls: Vec<ToolCall> = calls
                .into_iter()
                .enumerate()
                .map(|(i, (name, args))| ToolCall {
                    id: format!("call-{n}-{i}"),
                    name: name.to_owned(),
                    arguments: args.to_string(),
                })
                .collect();
            Ok(ChatResponse {
                content: text.to_owned(),
                stop_reason: if tool_calls.is_empty() {
                    StopReason::EndTurn
                } else {
                    StopReason::ToolCalls
                },
                tool_calls,
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                },
                model: "scripted".to_owned(),
            })
        }

        fn next_message(&mut self) -> Option<String> {
            let calls = self.requests.len();
            let (_, text) = self
                .follow_ups
                .iter()
                .skip(self.delivered)
                .find(|(at, _)| *at <= calls)?;
            self.delivered += 1;
            Some(text.to_string())
        }

        fn cancelled(&mut self) -> bool {
            self.cancel_at_round == Some(self.round + 1)
        }

        fn round(&mut self, n: u32) {
            self.round = n;
            self.events.push(format!("round {n}"));
        }

        fn tool(&mut self, name: &str, args: Value) {
            self.events.push(format!("tool {name} {args}"));
        }
    }

    fn agent(root: &std::path::Path, writable: &[&str], system: Option<&str>) -> Agent {
        let dirs: Vec<String> = writable.iter().map(|dir| dir.to_string()).collect();
        Agent::new(
            system,
            "Report the TODOs.",
            Tools::new(Workspace::new(root, &dirs)),
        )
    }

    fn roles(request: &ChatRequest) -> Vec<&'static str> {
        request
            .messages
            .iter()
            .map(|message| match message.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Tool => "tool",
            })
            .collect()
    }

    fn data(outcome: &Outcome) -> Value {
        serde_json::from_str(outcome.data.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn a_multi_turn_task_reads_searches_writes_and_finishes() {
        let root = tree(&[
            (
                "src/main.rs",
                "fn main() {\n    // TODO: handle errors\n}\n",
            ),
            ("README.md", "# Demo\n"),
        ]);
        let mut script = Script::new(vec![
            (
                "Let me look around.",
                vec![("list_dir", json!({"path": "."}))],
            ),
            (
                "",
                vec![
                    ("search", json!({"query": "TODO"})),
                    (
                        "read_file",
                        json!({"path": "src/main.rs", "offset": 2, "limit": 1}),
                    ),
                ],
            ),
            (
                "",
                vec![
                    (
                        "write_file",
                        json!({"path": "src/todo.md", "content": "nope"}),
                    ),
                    (
                        "write_file",
                        json!({"path": "reports/todo.md", "content": "- src/main.rs:2 handle errors\n"}),
                    ),
                ],
            ),
            (
                "",
                vec![(
                    "finish",
                    json!({"summary": "1 TODO; wrote reports/todo.md"}),
                )],
            ),
        ]);
        let outcome = agent(root.path(), &["/workspace/reports"], Some("Be terse."))
            .run(&mut script)
            .unwrap();

        assert_eq!(outcome.summary, "1 TODO; wrote reports/todo.md");
        assert_eq!(
            data(&outcome),
            json!({"rounds": 4, "tool_calls": 6, "files_written": ["/workspace/reports/todo.md"]})
        );
        assert_eq!(
            fs::read_to_string(root.path().join("reports/todo.md")).unwrap(),
            "- src/main.rs:2 handle errors\n"
        );
        assert!(!root.path().join("src/todo.md").exists());
        assert_eq!(
            script.events,
            [
                "round 1",
                r#"tool list_dir {"path":"."}"#,
                "round 2",
                r#"tool search {"query":"TODO"}"#,
                r#"tool read_file {"limit":1,"offset":2,"path":"src/main.rs"}"#,
                "round 3",
                r#"tool write_file {"content":"nope","path":"src/todo.md"}"#,
                r#"tool write_file {"content":"- src/main.rs:2 handle errors\n","path":"reports/todo.md"}"#,
                "round 4",
                r#"tool finish {"summary":"1 TODO; wrote reports/todo.md"}"#,
            ]
        );

        let last = script.requests.last().unwrap();
        assert_eq!(
            roles(last),
            [
                "system",
                "user",
                "assistant",
                "tool",
                "assistant",
                "tool",
                "tool",
                "assistant",
                "tool",
                "tool"
            ]
        );
        let system = &last.messages[0].content;
        assert!(
            system.contains("You may write only in: /workspace/reports/."),
            "{system}"
        );
        assert!(system.ends_with("\n\nBe terse."), "{system}");
        assert_eq!(last.messages[1].content, "Report the TODOs.");
        let tool_names: Vec<&str> = last.tools.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(
            tool_names,
            ["list_dir", "read_file", "search", "write_file", "finish"]
        );
        let results: Vec<(&str, &str)> = last
            .messages
            .iter()
            .filter(|message| matches!(message.role, Role::Tool))
            .map(|message| {
                (
                    message.tool_call_id.as_deref().unwrap(),
                    message.content.as_str(),
                )
            })
            .collect();
        assert_eq!(
            results,
            [
                (
                    "call-1-0",
                    "/workspace (2 entries, read-only)\nREADME.md (7 bytes)\nsrc/"
                ),
                (
                    "call-2-0",
                    "1 match in 1 file (scanned 2 files); paths are relative to /workspace:\nsrc/main.rs:2: // TODO: handle errors"
                ),
                (
                    "call-2-1",
                    "     2\t    // TODO: handle errors\n[more lines follow: read on with offset 3]"
                ),
                (
                    "call-3-0",
                    "permission denied: /workspace/src/todo.md is read-only in this run; you may write only in /workspace/reports/"
                ),
                ("call-3-1", "wrote 30 bytes to /workspace/reports/todo.md"),
            ]
        );
        assert_eq!(last.messages[2].content, "Let me look around.");
        assert_eq!(last.messages[2].tool_calls[0].name, "list_dir");
    }

    #[test]
    fn a_reply_without_tool_calls_is_the_answer() {
        let root = tree(&[]);
        let mut script = Script::new(vec![("  There are no TODOs.\n", vec![])]);
        let outcome = agent(root.path(), &[], None).run(&mut script).unwrap();
        assert_eq!(outcome.summary, "There are no TODOs.");
        assert_eq!(
            data(&outcome),
            json!({"rounds": 1, "tool_calls": 0, "files_written": []})
        );
        let request = &script.requests[0];
        assert!(
            request.messages[0]
                .content
                .contains("This run is read-only")
        );
        assert!(!request.messages[0].content.contains("write_file"));
        assert!(!request.tools.iter().any(|tool| tool.name == "write_file"));
    }

    #[test]
    fn an_empty_reply_is_nudged() {
        let root = tree(&[]);
        let mut script = Script::new(vec![("", vec![]), ("Done.", vec![])]);
        let outcome = agent(root.path(), &[], None).run(&mut script).unwrap();
        assert_eq!(outcome.summary, "Done.");
        assert_eq!(
            roles(&script.requests[1]),
            ["system", "user", "assistant", "user"]
        );
        assert!(
            script.requests[1].messages[3]
                .content
                .starts_with("Your reply was empty.")
        );
    }

    #[test]
    fn follow_ups_are_injected_at_round_boundaries() {
        let root = tree(&[("a.txt", "a")]);
        let mut script = Script::new(vec![
            ("", vec![("list_dir", json!({"path": "."}))]),
            ("", vec![("finish", json!({"summary": "done"}))]),
        ]);
        script.follow_ups = vec![(0, "focus on src"), (1, "and docs")];
        let outcome = agent(root.path(), &[], None).run(&mut script).unwrap();
        assert_eq!(outcome.summary, "done");
        let first = &script.requests[0];
        assert_eq!(roles(first), ["system", "user", "user"]);
        assert_eq!(
            first.messages[2].content,
            "Follow-up from the user: focus on src"
        );
        let second = &script.requests[1];
        assert_eq!(
            roles(second),
            ["system", "user", "user", "assistant", "tool", "user"]
        );
        assert_eq!(
            second.messages[5].content,
            "Follow-up from the user: and docs"
        );
    }

    #[test]
    fn a_follow_up_at_finish_keeps_the_loop_going() {
        let root = tree(&[]);
        let mut script = Script::new(vec![
            ("", vec![("finish", json!({"summary": "first"}))]),
            ("Second answer.", vec![]),
        ]);
        script.follow_ups = vec![(1, "also count FIXMEs")];
        let outcome = agent(root.path(), &[], None).run(&mut script).unwrap();
        assert_eq!(outcome.summary, "Second answer.");
        assert_eq!(data(&outcome)["rounds"], 2);
        let second = &script.requests[1];
        assert_eq!(
            roles(second),
            ["system", "user", "assistant", "tool", "user"]
        );
        assert!(
            second.messages[3]
                .content
                .starts_with("not finished: the user sent a follow-up")
        );
        assert_eq!(
            second.messages[4].content,
            "Follow-up from the user: also count FIXMEs"
        );
    }

    #[test]
    fn a_follow_up_after_a_plain_answer_keeps_the_loop_going() {
        let root = tree(&[]);
        let mut script = Script::new(vec![("First.", vec![]), ("Second.", vec![])]);
        script.follow_ups = vec![(1, "more detail")];
        let outcome = agent(root.path(), &[], None).run(&mut script).unwrap();
        assert_eq!(outcome.summary, "Second.");
        assert_eq!(
            roles(&script.requests[1]),
            ["system", "user", "assistant", "user"]
        );
    }

    #[test]
    fn cancellation_is_seen_at_the_next_round() {
        let root = tree(&[]);
        let mut script = Script::new(vec![("", vec![("list_dir", json!({"path": "."}))])]);
        script.cancel_at_round = Some(2);
        let result = agent(root.path(), &[], None).run(&mut script);
        assert!(matches!(result, Err(RunError::Cancelled)));
        assert_eq!(script.requests.len(), 1);
    }

    #[test]
    fn too_many_rounds_fail() {
        let root = tree(&[]);
        let turns = (0..DEFAULT_MAX_TURNS)
            .map(|_| ("", vec![("list_dir", json!({"path": "."}))]))
            .collect();
        let mut script = Script::new(turns);
        let result = agent(root.path(), &[], None).run(&mut script);
        assert!(matches!(
            result,
            Err(RunError::Failed(message)) if message.starts_with("no answer after 20 rounds")
        ));
        assert_eq!(script.requests.len(), DEFAULT_MAX_TURNS as usize);
    }

    #[test]
    fn model_errors_fail_the_run() {
        let root = tree(&[]);
        let mut script = Script::default();
        script.turns.push_back(Err(ModelError::BudgetExceeded(
            "used 5000 of 5000 tokens".into(),
        )));
        let result = agent(root.path(), &[], None).run(&mut script);
        assert!(matches!(
            result,
            Err(RunError::Failed(message))
                if message == "model call failed in round 1: budget exceeded: used 5000 of 5000 tokens"
        ));
    }

    #[test]
    fn bad_tool_calls_are_answered_and_the_loop_goes_on() {
        let root = tree(&[]);
        let mut script = Script::new(vec![
            ("", vec![("shell", json!({"cmd": "ls"}))]),
            ("", vec![("read_file", json!({"file": "x"}))]),
            ("Gave up.", vec![]),
        ]);
        let outcome = agent(root.path(), &[], None).run(&mut script).unwrap();
        assert_eq!(outcome.summary, "Gave up.");
        assert_eq!(data(&outcome)["tool_calls"], 2);
        let last = script.requests.last().unwrap();
        assert!(
            last.messages[3]
                .content
                .starts_with("error: there is no tool `shell`")
        );
        assert!(
            last.messages[5]
                .content
                .starts_with("error: invalid arguments for read_file")
        );
    }
}
