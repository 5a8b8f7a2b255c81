//! The tools `subagent mcp` offers: their names, descriptions and input
//! schemas, and the strict reading of a call's arguments.
//!
//! Arguments are read by hand rather than deserialized into structs, so that
//! every mistake gets its own sentence (a misspelt argument gets a
//! did-you-mean, a wrong type names the type it wanted): the reader is a
//! model that will correct itself from the message.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

/// The tools, in the order they are listed.
pub const NAMES: [&str; 7] = [
    TASK,
    AWAIT_TASKS,
    SEND_MESSAGE,
    TASK_STOP,
    TASK_OUTPUT,
    LIST_TASKS,
    LIST_SUBAGENTS,
];

pub const TASK: &str = "task";
pub const AWAIT_TASKS: &str = "await_tasks";
pub const SEND_MESSAGE: &str = "send_message";
pub const TASK_STOP: &str = "task_stop";
pub const TASK_OUTPUT: &str = "task_output";
pub const LIST_TASKS: &str = "list_tasks";
pub const LIST_SUBAGENTS: &str = "list_subagents";

/// A subagent as `task`'s description lists it.
pub struct Listed {
    pub name: String,
    pub description: String,
}

/// Every tool, `task`'s description naming the subagents it can launch.
pub fn all(subagents: &[Listed]) -> Vec<Tool> {
    NAMES
        .iter()
        .map(|name| definition(name, subagents))
        .collect()
}

fn definition(name: &str, subagents: &[Listed]) -> Tool {
    let (description, schema, read_only) = match name {
        TASK => (task_description(subagents), task_schema(), false),
        AWAIT_TASKS => (
            "Wait for tasks launched with `task` (run_in_background) to finish. Returns \
             `completed` (each with its result), `pending` (still running when the timeout \
             passed) and `missing` (unknown ids). Awaiting does not consume results."
                .to_owned(),
            object(
                json!({
                    "task_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                                 "description": "The ids `task` returned."},
                    "timeout": timeout_schema("How long to wait at most; default: until all have finished."),
                }),
                &["task_ids"],
            ),
            true,
        ),
        SEND_MESSAGE => (
            "Send a follow-up message to a queued or running subagent task; it reads it from \
             its inbox. A finished task answers that it is not running."
                .to_owned(),
            object(
                json!({
                    "task_id": {"type": "string"},
                    "message": {"type": "string", "description": "At most 64 KiB."},
                }),
                &["task_id", "message"],
            ),
            false,
        ),
        TASK_STOP => (
            "Stop a subagent task and its descendants: it is asked to stop, then interrupted \
             after a grace period. Returns once it has ended, with its final status."
                .to_owned(),
            object(json!({"task_id": {"type": "string"}}), &["task_id"]),
            false,
        ),
        TASK_OUTPUT => (
            "Read a task's output (what the subagent printed) from a byte offset, and its \
             status. Continue from `next_offset` to read more."
                .to_owned(),
            object(
                json!({
                    "task_id": {"type": "string"},
                    "offset": {"type": "integer", "minimum": 0, "description": "Byte offset; default 0."},
                    "max_bytes": {"type": "integer", "minimum": 1, "maximum": MAX_OUTPUT_READ,
                                  "description": "Default 65536."},
                }),
                &["task_id"],
            ),
            true,
        ),
        LIST_TASKS => (
            "List recent subagent tasks (newest first), from the durable task store: those \
             launched here and by any other `subagent` process."
                .to_owned(),
            object(
                json!({
                    "status": {"type": "string",
                               "enum": ["queued", "running", "completed", "failed", "cancelled", "timed_out", "interrupted"]},
                    "subagent": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Default 50."},
                }),
                &[],
            ),
            true,
        ),
        LIST_SUBAGENTS => (
            "List the subagents `task` can launch: name, description, permission mode, the \
             directories it may write, host tools and model."
                .to_owned(),
            object(json!({}), &[]),
            true,
        ),
        _ => unreachable!("a tool in NAMES"),
    };
    let annotations = ToolAnnotations::from_raw(None, Some(read_only), None, None, Some(false));
    Tool::new(name.to_owned(), description, Arc::new(schema)).with_annotations(annotations)
}

fn task_description(subagents: &[Listed]) -> String {
    let mut text = String::from(
        "Launch a subagent: a sandboxed WebAssembly helper agent that works on the workspace \
         with exactly the file access its manifest grants (read-only ones write nothing), under \
         memory, time and output limits. Give it a self-contained prompt. By default this waits \
         for its result (summary, data, the files it changed, usage); with \
         `run_in_background: true` it returns a task id at once: collect the result with \
         `await_tasks`, steer it with `send_message`, stop it with `task_stop`.\n\nAvailable subagents:\n",
    );
    if subagents.is_empty() {
        text.push_str("(none found in the registries)\n");
    }
    for subagent in subagents {
        text.push_str(&format!(
            "- {}: {}\n",
            subagent.name,
            one_line(&subagent.description)
        ));
    }
    text
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn task_schema() -> JsonObject {
    object(
        json!({
            "subagent": {"type": "string", "description": "The subagent's name (see the list above)."},
            "prompt": {"type": "string", "description": "The task for the subagent."},
            "description": {"type": "string", "description": "A short (3-5 word) description of the task, for listings."},
            "run_in_background": {"type": "boolean", "description": "Return the task id at once instead of waiting. Default false."},
            "write_dirs": {"type": "array", "items": {"type": "string"},
                           "description": "Narrow the directories it may write to these (each inside what its manifest allows). Never widens."},
            "model": {"type": "string", "description": "Use this model instead of the subagent's (an alias from the host config, or provider/model)."},
            "timeout": timeout_schema("Replace the subagent's time limit."),
            "workspace": {"type": "string", "description": "The directory it works on; default: the server's workspace. Must lie inside the allowed workspace (or the client's roots)."},
        }),
        &["subagent", "prompt"],
    )
}

fn timeout_schema(description: &str) -> Value {
    json!({
        "description": format!("{description} Seconds, or a duration such as \"30s\", \"5m\", \"1h30m\"."),
        "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}],
    })
}

fn object(properties: Value, required: &[&str]) -> JsonObject {
    let mut schema = JsonObject::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), properties);
    if !required.is_empty() {
        schema.insert("required".into(), json!(required));
    }
    schema.insert("additionalProperties".into(), json!(false));
    schema
}

/// The most bytes one `task_output` call returns.
pub const MAX_OUTPUT_READ: u64 = 1 << 20;

/// A call's arguments, read strictly: an argument the tool does not take is
/// an error with a did-you-mean, a wrong type says what it wanted.
pub struct Args {
    tool: &'static str,
    map: JsonObject,
}

/// What is wrong with a call, as one sentence for the caller.
#[derive(Debug)]
pub struct ArgError(pub String);

impl Args {
    /// `tool`'s arguments; `known` are the ones it takes.
    pub fn new(tool: &'static str, map: Option<JsonObject>) -> Result<Args, ArgError> {
        let map = map.unwrap_or_default();
        let known = known(tool);
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                let hint = crate::diagnostic::did_you_mean(key, known)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(ArgError(format!(
                    "{tool}: unknown argument `{key}`{hint}; it takes: {}",
                    known.join(", ")
                )));
            }
        }
        Ok(Args { tool, map })
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn wrong(&self, name: &str, wanted: &str, got: &Value) -> ArgError {
        ArgError(format!(
            "{}: `{name}` must be {wanted}, not {}",
            self.tool,
            kind(got)
        ))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, ArgError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong(name, "a string", other)),
        }
    }

    pub fn required_string(&self, name: &str) -> Result<String, ArgError> {
        self.string(name)?
            .ok_or_else(|| ArgError(format!("{}: `{name}` is required", self.tool)))
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ArgError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong(name, "true or false", other)),
        }
    }

    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, ArgError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.wrong(name, "a list of strings", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.wrong(name, "a list of strings", other)),
        }
    }

    /// A non-negative integer no larger than `max`.
    pub fn integer(&self, name: &str, max: u64) -> Result<Option<u64>, ArgError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if v <= max => Ok(Some(v)),
                _ => Err(ArgError(format!(
                    "{}: `{name}` must be a whole number from 0 to {max}, not {n}",
                    self.tool
                ))),
            },
            Some(other) => Err(self.wrong(name, "a whole number", other)),
        }
    }

    /// Seconds (a positive number) or a duration string.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, ArgError> {
        const MAX: Duration = Duration::from_secs(366 * 24 * 3600);
        let bad = |what: String| {
            ArgError(format!(
                "{}: `{name}` {what}; give seconds (a positive number) or a duration such as \"30s\", \"5m\", \"1h30m\"",
                self.tool
            ))
        };
        let duration = match self.get(name) {
            None => return Ok(None),
            Some(Value::Number(n)) => {
                let secs = n.as_f64().unwrap_or(-1.0);
                if !(secs > 0.0 && secs.is_finite()) {
                    return Err(bad(format!(
                        "is {n}, which is not a positive number of seconds"
                    )));
                }
                Duration::try_from_secs_f64(secs).unwrap_or(MAX)
            }
            Some(Value::String(s)) => {
                crate::units::parse_duration(s).map_err(|err| bad(format!("is \"{s}\": {err}")))?
            }
            Some(other) => return Err(self.wrong(name, "seconds or a duration string", other)),
        };
        if duration.is_zero() {
            return Err(bad("is zero".into()));
        }
        Ok(Some(duration.min(MAX)))
    }
}

fn known(tool: &str) -> &'static [&'static str] {
    match tool {
        TASK => &[
            "subagent",
            "prompt",
            "description",
            "run_in_background",
            "write_dirs",
            "model",
            "timeout",
            "workspace",
        ],
        AWAIT_TASKS => &["task_ids", "timeout"],
        SEND_MESSAGE => &["task_id", "message"],
        TASK_STOP => &["task_id"],
        TASK_OUTPUT => &["task_id", "offset", "max_bytes"],
        LIST_TASKS => &["status", "subagent", "limit"],
        _ => &[],
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(tool: &'static str, value: Value) -> Result<Args, ArgError> {
        Args::new(tool, value.as_object().cloned())
    }

    #[test]
    fn a_misspelt_argument_gets_a_did_you_mean() {
        let err = args(TASK, json!({"subagent": "x", "promt": "y"}))
            .err()
            .unwrap();
        assert!(err.0.contains("unknown argument `promt`"), "{}", err.0);
        assert!(err.0.contains("did you mean `prompt`"), "{}", err.0);
    }

    #[test]
    fn durations_are_seconds_or_strings_and_positive() {
        let a = args(TASK, json!({"timeout": 1.5})).unwrap();
        assert_eq!(
            a.duration("timeout").unwrap(),
            Some(Duration::from_millis(1500))
        );
        let a = args(TASK, json!({"timeout": "2m"})).unwrap();
        assert_eq!(
            a.duration("timeout").unwrap(),
            Some(Duration::from_secs(120))
        );
        for bad in [json!(-1), json!(0), json!("soon"), json!(true)] {
            let a = args(TASK, json!({ "timeout": bad })).unwrap();
            let err = a.duration("timeout").unwrap_err().0;
            assert!(err.contains("`timeout`"), "{err}");
        }
    }

    #[test]
    fn wrong_types_say_what_was_wanted() {
        let a = args(TASK, json!({"prompt": 5})).unwrap();
        let err = a.required_string("prompt").unwrap_err().0;
        assert_eq!(err, "task: `prompt` must be a string, not a number");
        let a = args(TASK_OUTPUT, json!({"offset": -5})).unwrap();
        let err = a.integer("offset", u64::MAX).unwrap_err().0;
        assert!(err.contains("whole number"), "{err}");
    }

    #[test]
    fn the_task_description_lists_the_subagents() {
        let tools = all(&[Listed {
            name: "echo".into(),
            description: "Echoes\nthings".into(),
        }]);
        assert_eq!(tools.len(), NAMES.len());
        let task = tools.iter().find(|t| t.name == TASK).unwrap();
        assert!(
            task.description
                .as_deref()
                .unwrap()
                .contains("- echo: Echoes things")
        );
    }
}
