//! The orchestrator's input: read from the prompt into a [`Plan`].

use serde_json::{Map, Value};
use subagent_sdk::RunError;

/// The child subagent run on each query unless the input names another.
pub const DEFAULT_SUBAGENT: &str = "deep-search";
/// Most queries one task may fan out.
pub const MAX_QUERIES: usize = 100;

const OPTIONS: [&str; 4] = ["queries", "subagent", "timeout_ms", "max_parallel"];

const NO_QUERIES: &str = "no queries: give one query per line, or a JSON object such as \
     {\"queries\": [\"TODO\", {\"query\": \"fn \\\\w+_test\", \"regex\": true}]}";

/// One query, as given and as sent to its child.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The query as the input gave it: a string, or an object of options.
    pub input: Value,
    /// The child's prompt: a string query verbatim, an object as JSON.
    pub prompt: String,
    /// One line naming the query for people: the text, `/regex/`, or the
    /// object's JSON when it has no `query` string.
    pub label: String,
}

impl Query {
    fn text(text: &str) -> Query {
        Query {
            input: Value::String(text.to_owned()),
            prompt: text.to_owned(),
            label: one_line(text.trim()),
        }
    }

    fn options(options: &Map<String, Value>) -> Query {
        let json = Value::Object(options.clone()).to_string();
        let label = match options.get("query") {
            Some(Value::String(query)) if options.get("regex") == Some(&Value::Bool(true)) => {
                format!("/{}/", one_line(query))
            }
            Some(Value::String(query)) => one_line(query),
            _ => json.clone(),
        };
        Query {
            input: Value::Object(options.clone()),
            prompt: json,
            label,
        }
    }
}

/// What to run: the queries, which child runs them, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub queries: Vec<Query>,
    pub subagent: String,
    /// Each child's timeout, replacing its manifest's.
    pub timeout_ms: Option<u64>,
    /// Children running at once; `None`: all.
    pub max_parallel: Option<usize>,
}

impl Plan {
    /// Read a plan from a prompt: a JSON object of options, a JSON list of
    /// queries, or else one query per non-empty line.
    ///
    /// # Errors
    ///
    /// `RunError::InvalidInput` when there is no query, too many, or an option
    /// is unknown or of the wrong type, naming the option.
    pub fn parse(prompt: &str) -> Result<Plan, RunError> {
        let trimmed = prompt.trim();
        let plan = match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Object(options)) => Plan::from_options(&options)?,
            Ok(Value::Array(queries)) => Plan::with_queries(queries_option(&queries)?),
            Err(err) if trimmed.starts_with('{') => {
                return Err(RunError::invalid(format!(
                    "the prompt starts with `{{` but is not a JSON object ({err}); \
                     fix the JSON, or give one query per line"
                )));
            }
            _ => Plan::with_queries(
                trimmed
                    .lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(Query::text)
                    .collect(),
            ),
        };
        if plan.queries.is_empty() {
            return Err(RunError::invalid(NO_QUERIES));
        }
        if plan.queries.len() > MAX_QUERIES {
            return Err(RunError::invalid(format!(
                "{} queries: at most {MAX_QUERIES} may run in one task; split them over several tasks",
                plan.queries.len()
            )));
        }
        Ok(plan)
    }

    fn with_queries(queries: Vec<Query>) -> Plan {
        Plan {
            queries,
            subagent: DEFAULT_SUBAGENT.to_owned(),
            timeout_ms: None,
            max_parallel: None,
        }
    }

    fn from_options(options: &Map<String, Value>) -> Result<Plan, RunError> {
        if let Some(unknown) = options.keys().find(|key| !OPTIONS.contains(&key.as_str())) {
            let hint = if unknown == "query" {
                "; for one search, give {\"queries\": [{\"query\": …}]}"
            } else {
                ""
            };
            return Err(RunError::invalid(format!(
                "unknown option `{unknown}`; the options are {}{hint}",
                OPTIONS.map(|name| format!("`{name}`")).join(", ")
            )));
        }
        let get = |name: &str| options.get(name).filter(|value| !value.is_null());
        let queries = match get("queries") {
            Some(Value::Array(queries)) => queries_option(queries)?,
            Some(_) => {
                return Err(RunError::invalid(
                    "`queries` must be a list of strings or JSON objects of options",
                ));
            }
            None => return Err(RunError::invalid(NO_QUERIES)),
        };
        let subagent = match get("subagent") {
            None => DEFAULT_SUBAGENT.to_owned(),
            Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
            Some(_) => {
                return Err(RunError::invalid(
                    "`subagent` must be the name of a subagent, such as \"deep-search\"",
                ));
            }
        };
        let timeout_ms = get("timeout_ms")
            .map(|value| {
                value.as_u64().filter(|&ms| ms >= 1).ok_or_else(|| {
                    RunError::invalid(
                        "`timeout_ms` must be a whole number of milliseconds, at least 1",
                    )
                })
            })
            .transpose()?;
        let max_parallel = get("max_parallel")
            .map(|value| {
                value
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| (1..=MAX_QUERIES).contains(n))
                    .ok_or_else(|| {
                        RunError::invalid(format!(
                            "`max_parallel` must be a whole number from 1 to {MAX_QUERIES}"
                        ))
                    })
            })
            .transpose()?;
        Ok(Plan {
            queries,
            subagent,
            timeout_ms,
            max_parallel,
        })
    }

    /// How many children run at once: `max_parallel`, or all of them.
    pub fn wave_size(&self) -> usize {
        self.max_parallel
            .unwrap_or(self.queries.len())
            .clamp(1, self.queries.len().max(1))
    }

    /// The listing line of the child running query `index`.
    pub fn description(&self, index: usize) -> String {
        format!(
            "orchestrator query {}/{}: {}",
            index + 1,
            self.queries.len(),
            shorten(&self.queries[index].label, 80)
        )
    }
}

/// The `queries` list: strings (non-blank) and objects, in order.
fn queries_option(queries: &[Value]) -> Result<Vec<Query>, RunError> {
    queries
        .iter()
        .enumerate()
        .map(|(index, query)| match query {
            Value::String(text) if text.trim().is_empty() => Err(RunError::invalid(format!(
                "`queries[{index}]` is empty: give text to search for"
            ))),
            Value::String(text) => Ok(Query::text(text)),
            Value::Object(options) => Ok(Query::options(options)),
            _ => Err(RunError::invalid(format!(
                "`queries[{index}]` must be a string or a JSON object of options, not {query}"
            ))),
        })
        .collect()
}

/// `text` on one line: line breaks shown as `\n`.
fn one_line(text: &str) -> String {
    text.replace('\r', "").replace('\n', "\\n")
}

/// `text` cut to `max` characters, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invalid_message(result: Result<Plan, RunError>) -> String {
        match result {
            Err(RunError::InvalidInput(message)) => message,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    fn prompts(plan: &Plan) -> Vec<&str> {
        plan.queries.iter().map(|q| q.prompt.as_str()).collect()
    }

    #[test]
    fn plain_text_is_one_query_per_non_empty_line() {
        let plan = Plan::parse("\n  TODO \r\n\n/fn \\w+_test/\n   \nFIXME\n").unwrap();
        assert_eq!(prompts(&plan), ["TODO", "/fn \\w+_test/", "FIXME"]);
        assert_eq!(plan.queries[1].label, "/fn \\w+_test/");
        assert_eq!(plan.queries[0].input, json!("TODO"));
        assert_eq!(plan.subagent, DEFAULT_SUBAGENT);
        assert_eq!((plan.timeout_ms, plan.max_parallel), (None, None));
        assert_eq!(plan.wave_size(), 3);
    }

    #[test]
    fn json_options_are_read() {
        let plan = Plan::parse(
            r#"{"queries": [" TODO ", {"query": "a.b", "regex": true, "include": "*.rs"}, {"context": 0}],
                "subagent": "grep", "timeout_ms": 30000, "max_parallel": 2}"#,
        )
        .unwrap();
        assert_eq!(plan.subagent, "grep");
        assert_eq!(plan.timeout_ms, Some(30_000));
        assert_eq!(plan.max_parallel, Some(2));
        assert_eq!(plan.wave_size(), 2);
        // A string goes to the child verbatim; an object as its JSON.
        assert_eq!(plan.queries[0].prompt, " TODO ");
        assert_eq!(plan.queries[0].label, "TODO");
        let options: Value = serde_json::from_str(&plan.queries[1].prompt).unwrap();
        assert_eq!(
            options,
            json!({"query": "a.b", "regex": true, "include": "*.rs"})
        );
        assert_eq!(plan.queries[1].input, options);
        assert_eq!(plan.queries[1].label, "/a.b/");
        assert_eq!(plan.queries[2].label, r#"{"context":0}"#);
        assert_eq!(
            plan.description(1),
            "orchestrator query 2/3: /a.b/".to_owned()
        );
    }

    #[test]
    fn a_json_list_is_the_queries() {
        let plan = Plan::parse(r#"["TODO", {"query": "FIXME"}]"#).unwrap();
        assert_eq!(prompts(&plan), ["TODO", r#"{"query":"FIXME"}"#]);
        assert_eq!(plan.subagent, DEFAULT_SUBAGENT);
    }

    #[test]
    fn nulls_are_defaults() {
        let plan = Plan::parse(
            r#"{"queries": ["x"], "subagent": null, "timeout_ms": null, "max_parallel": null}"#,
        )
        .unwrap();
        assert_eq!(plan.subagent, DEFAULT_SUBAGENT);
        assert_eq!((plan.timeout_ms, plan.max_parallel), (None, None));
    }

    #[test]
    fn max_parallel_above_the_query_count_is_one_wave() {
        let plan = Plan::parse(r#"{"queries": ["a", "b"], "max_parallel": 50}"#).unwrap();
        assert_eq!(plan.wave_size(), 2);
    }

    #[test]
    fn no_queries_is_invalid_input() {
        for prompt in [
            "",
            "  \n \n",
            r#"{"queries": []}"#,
            "[]",
            r#"{"subagent": "x"}"#,
        ] {
            let message = invalid_message(Plan::parse(prompt));
            assert!(message.starts_with("no queries: "), "{prompt:?}: {message}");
        }
    }

    #[test]
    fn bad_options_are_named() {
        let cases = [
            (
                r#"{"query": "x"}"#,
                "unknown option `query`; the options are `queries`, `subagent`, `timeout_ms`, `max_parallel`; for one search, give {\"queries\": [{\"query\": …}]}",
            ),
            (
                r#"{"queries": "TODO"}"#,
                "`queries` must be a list of strings or JSON objects of options",
            ),
            (
                r#"{"queries": ["a", "  "]}"#,
                "`queries[1]` is empty: give text to search for",
            ),
            (
                r#"{"queries": ["a", 7]}"#,
                "`queries[1]` must be a string or a JSON object of options, not 7",
            ),
            (
                r#"{"queries": ["a"], "subagent": ""}"#,
                "`subagent` must be the name of a subagent, such as \"deep-search\"",
            ),
            (
                r#"{"queries": ["a"], "max_parallel": 0}"#,
                "`max_parallel` must be a whole number from 1 to 100",
            ),
            (
                r#"{"queries": ["a"], "max_parallel": 1.5}"#,
                "`max_parallel` must be a whole number from 1 to 100",
            ),
            (
                r#"{"queries": ["a"], "timeout_ms": -5}"#,
                "`timeout_ms` must be a whole number of milliseconds, at least 1",
            ),
            (
                r#"{"queries": ["a"], "timeout_ms": "1m"}"#,
                "`timeout_ms` must be a whole number of milliseconds, at least 1",
            ),
            (
                r#"{"queries": ["a"], "colour": 1}"#,
                "unknown option `colour`; the options are `queries`, `subagent`, `timeout_ms`, `max_parallel`",
            ),
        ];
        for (prompt, expected) in cases {
            assert_eq!(invalid_message(Plan::parse(prompt)), expected, "{prompt}");
        }
    }

    #[test]
    fn broken_json_is_not_taken_for_text() {
        let message = invalid_message(Plan::parse(r#"{"queries": ["a"]"#));
        assert!(
            message.starts_with("the prompt starts with `{` but is not a JSON object ("),
            "{message}"
        );
    }

    #[test]
    fn too_many_queries_is_invalid_input() {
        let prompt = (0..=MAX_QUERIES)
            .map(|i| format!("q{i}\n"))
            .collect::<String>();
        assert_eq!(
            invalid_message(Plan::parse(&prompt)),
            "101 queries: at most 100 may run in one task; split them over several tasks"
        );
    }

    #[test]
    fn labels_stay_on_one_line() {
        let plan = Plan::parse(r#"{"queries": ["a\nb", {"query": "c\r\nd"}]}"#).unwrap();
        assert_eq!(plan.queries[0].label, "a\\nb");
        assert_eq!(plan.queries[0].prompt, "a\nb");
        assert_eq!(plan.queries[1].label, "c\\nd");
    }

    #[test]
    fn shorten_cuts_on_characters() {
        assert_eq!(shorten("héllo", 10), "héllo");
        assert_eq!(shorten("héllo", 2), "hé…");
    }
}
