//! The search request: read from the prompt, then compiled into a [`Search`].

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use subagent_sdk::RunError;

use subagent_sdk::walk::{self, Filter};

/// Default number of context lines before and after each finding.
pub const DEFAULT_CONTEXT: usize = 1;
/// Most context lines a request may ask for.
pub const MAX_CONTEXT: usize = 20;
/// Default cap on the findings listed in the result.
pub const DEFAULT_MAX_FINDINGS: usize = 200;
/// Largest `max_findings` a request may ask for.
pub const MAX_MAX_FINDINGS: usize = 10_000;

const OPTIONS: [&str; 7] = [
    "query",
    "regex",
    "include",
    "exclude",
    "context",
    "max_findings",
    "case_sensitive",
];

/// What to search for, as the prompt asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub query: String,
    pub regex: bool,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub context: usize,
    pub max_findings: usize,
    /// `None`: smart case.
    pub case_sensitive: Option<bool>,
}

impl Request {
    /// Read a request from a prompt: a JSON object of options, `/PATTERN/`
    /// for a regex, or else the trimmed prompt as a literal.
    ///
    /// # Errors
    ///
    /// `RunError::InvalidInput` naming the option that is missing, unknown or
    /// of the wrong type.
    pub fn parse(prompt: &str) -> Result<Request, RunError> {
        let prompt = prompt.trim();
        let request = match serde_json::from_str::<Value>(prompt) {
            Ok(Value::Object(options)) => Request::from_options(&options)?,
            _ => Request::from_text(prompt),
        };
        if request.query.is_empty() {
            return Err(RunError::invalid(
                "empty query: give text to search for, `/REGEX/`, or a JSON object with a `query` field",
            ));
        }
        Ok(request)
    }

    fn from_text(text: &str) -> Request {
        let regex = text
            .strip_prefix('/')
            .and_then(|rest| rest.strip_suffix('/'));
        Request {
            query: regex.unwrap_or(text).to_owned(),
            regex: regex.is_some(),
            include: Vec::new(),
            exclude: Vec::new(),
            context: DEFAULT_CONTEXT,
            max_findings: DEFAULT_MAX_FINDINGS,
            case_sensitive: None,
        }
    }

    fn from_options(options: &Map<String, Value>) -> Result<Request, RunError> {
        if let Some(unknown) = options.keys().find(|key| !OPTIONS.contains(&key.as_str())) {
            return Err(RunError::invalid(format!(
                "unknown option `{unknown}`; the options are {}",
                OPTIONS.map(|name| format!("`{name}`")).join(", ")
            )));
        }
        let get = |name: &str| options.get(name).filter(|value| !value.is_null());
        let query = match get("query") {
            Some(Value::String(query)) => query.clone(),
            Some(_) => return Err(RunError::invalid("`query` must be a string")),
            None => {
                return Err(RunError::invalid(
                    "missing `query`: the text or regex to search for",
                ));
            }
        };
        Ok(Request {
            query,
            regex: bool_option(get("regex"), "regex")?.unwrap_or(false),
            include: globs_option(get("include"), "include")?,
            exclude: globs_option(get("exclude"), "exclude")?,
            context: count_option(get("context"), "context", 0, MAX_CONTEXT)?
                .unwrap_or(DEFAULT_CONTEXT),
            max_findings: count_option(get("max_findings"), "max_findings", 1, MAX_MAX_FINDINGS)?
                .unwrap_or(DEFAULT_MAX_FINDINGS),
            case_sensitive: bool_option(get("case_sensitive"), "case_sensitive")?,
        })
    }

    /// Whether the search distinguishes case: as asked, or else smart case
    /// (sensitive only when the query holds an uppercase letter; in a regex,
    /// a letter right after `\` does not count, so `\S` or `\W` stay insensitive).
    pub fn is_case_sensitive(&self) -> bool {
        self.case_sensitive
            .unwrap_or_else(|| has_uppercase(&self.query, self.regex))
    }
}

/// A boolean option, if given.
fn bool_option(value: Option<&Value>, name: &str) -> Result<Option<bool>, RunError> {
    value
        .map(|value| {
            value
                .as_bool()
                .ok_or_else(|| RunError::invalid(format!("`{name}` must be true or false")))
        })
        .transpose()
}

/// A whole-number option from `min` to `max`, if given.
fn count_option(
    value: Option<&Value>,
    name: &str,
    min: usize,
    max: usize,
) -> Result<Option<usize>, RunError> {
    value
        .map(|value| {
            value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    RunError::invalid(format!(
                        "`{name}` must be a whole number from {min} to {max}"
                    ))
                })
        })
        .transpose()
}

/// A list of glob strings; a single string counts as a list of one.
fn globs_option(value: Option<&Value>, name: &str) -> Result<Vec<String>, RunError> {
    let invalid = || {
        RunError::invalid(format!(
            "`{name}` must be a list of glob strings, such as [\"**/*.rs\"]"
        ))
    };
    match value {
        None => Ok(Vec::new()),
        Some(Value::String(glob)) => Ok(vec![glob.clone()]),
        Some(Value::Array(globs)) => globs
            .iter()
            .map(|glob| glob.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect(),
        Some(_) => Err(invalid()),
    }
}

/// Whether `query` holds an uppercase letter; in a regex, not counting escapes.
fn has_uppercase(query: &str, regex: bool) -> bool {
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        if regex && c == '\\' {
            chars.next();
        } else if c.is_uppercase() {
            return true;
        }
    }
    false
}

/// A compiled request: the line matcher and the path filters.
#[derive(Debug)]
pub struct Search {
    pub request: Request,
    pub case_sensitive: bool,
    matcher: Regex,
    /// The same pattern over a whole file (`^`/`$` at line ends, CRLF-aware):
    /// a file it does not match has no matching line, so most files are
    /// settled by one search. `None` for patterns whose meaning changes
    /// between a line and a file (`\A`, `\z`).
    text_matcher: Option<Regex>,
    include: Option<GlobSet>,
    exclude: GlobSet,
    /// The default-skipped directory names no include glob mentions.
    skipped_dirs: Vec<&'static str>,
}

impl Search {
    /// Compile `request`.
    ///
    /// # Errors
    ///
    /// `RunError::InvalidInput` for an invalid regex or glob, naming the field.
    pub fn new(request: Request) -> Result<Search, RunError> {
        let case_sensitive = request.is_case_sensitive();
        let pattern = if request.regex {
            request.query.clone()
        } else {
            regex::escape(&request.query)
        };
        let matcher = RegexBuilder::new(&pattern)
            .case_insensitive(!case_sensitive)
            .build()
            .map_err(|err| {
                RunError::invalid(format!(
                    "invalid regex in `query`: {err}{}",
                    regex_hint(&err)
                ))
            })?;
        let text_matcher = if pattern.contains("\\A") || pattern.contains("\\z") {
            None
        } else {
            RegexBuilder::new(&pattern)
                .case_insensitive(!case_sensitive)
                .multi_line(true)
                .crlf(true)
                .build()
                .ok()
        };
        let include = if request.include.is_empty() {
            None
        } else {
            Some(glob_set(&request.include, "include")?)
        };
        let exclude = glob_set(&request.exclude, "exclude")?;
        let skipped_dirs = walk::SKIPPED_DIRS
            .into_iter()
            .filter(|dir| {
                !request
                    .include
                    .iter()
                    .any(|glob| glob.split('/').any(|part| part == *dir))
            })
            .collect();
        Ok(Search {
            request,
            case_sensitive,
            matcher,
            text_matcher,
            include,
            exclude,
            skipped_dirs,
        })
    }

    /// Whether `line` is a finding.
    pub fn is_match(&self, line: &str) -> bool {
        self.matcher.is_match(line)
    }

    /// Whether some line of `text` may be a finding (never false when one is).
    pub fn may_match(&self, text: &str) -> bool {
        self.text_matcher
            .as_ref()
            .is_none_or(|matcher| matcher.is_match(text))
    }

    /// How many lines of `text` (as `str::lines` splits it) are findings.
    ///
    /// A line with a match also holds the start of a match of the whole-text
    /// pattern found from the line's start, so each search jumps straight to
    /// the next candidate line, which the line matcher then confirms.
    pub fn count_matching_lines(&self, text: &str) -> usize {
        let Some(matcher) = &self.text_matcher else {
            return text.lines().filter(|line| self.is_match(line)).count();
        };
        let bytes = text.as_bytes();
        let mut count = 0;
        let mut at = 0;
        while at < text.len() {
            let Some(found) = matcher.find_at(text, at) else {
                break;
            };
            let start = memchr::memrchr(b'\n', &bytes[..found.start()]).map_or(0, |i| i + 1);
            if start == text.len() {
                break;
            }
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(text.len(), |i| start + i);
            let line = text[start..end]
                .strip_suffix('\r')
                .unwrap_or(&text[start..end]);
            if self.is_match(line) {
                count += 1;
            }
            at = end + 1;
        }
        count
    }
}

impl Filter for Search {
    fn skip_dir(&self, path: &str) -> bool {
        self.skipped_dirs.contains(&walk::file_name(path)) || self.exclude.is_match(path)
    }

    fn skip_file(&self, path: &str) -> bool {
        self.exclude.is_match(path)
            || self
                .include
                .as_ref()
                .is_some_and(|include| !include.is_match(path))
    }
}

/// How to get past a regex error that comes from the trimmed Unicode tables.
fn regex_hint(err: &regex::Error) -> &'static str {
    if err.to_string().contains("Unicode property not found") {
        "\n(deep-search is built without Unicode property tables: write `\\p{…}` classes as explicit ranges)"
    } else {
        ""
    }
}

/// Compile `globs`; one without a `/` matches a file name at any depth.
fn glob_set(globs: &[String], field: &str) -> Result<GlobSet, RunError> {
    let mut set = GlobSetBuilder::new();
    for original in globs {
        let glob = original.strip_prefix("./").unwrap_or(original);
        let glob = if glob.contains('/') {
            glob.to_owned()
        } else {
            format!("**/{glob}")
        };
        let compiled = GlobBuilder::new(&glob)
            .literal_separator(true)
            .build()
            .map_err(|err| {
                RunError::invalid(format!(
                    "invalid glob `{original}` in `{field}`: {}",
                    err.kind()
                ))
            })?;
        set.add(compiled);
    }
    set.build()
        .map_err(|err| RunError::invalid(format!("invalid glob in `{field}`: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_message(result: Result<impl std::fmt::Debug, RunError>) -> String {
        match result {
            Err(RunError::InvalidInput(message)) => message,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    fn search(prompt: &str) -> Search {
        Search::new(Request::parse(prompt).unwrap()).unwrap()
    }

    #[test]
    fn a_plain_prompt_is_a_trimmed_literal() {
        let request = Request::parse("  foo.bar(  \n").unwrap();
        assert_eq!(request.query, "foo.bar(");
        assert!(!request.regex);
        assert_eq!(
            (request.context, request.max_findings),
            (DEFAULT_CONTEXT, DEFAULT_MAX_FINDINGS)
        );
        let search = Search::new(request).unwrap();
        assert!(search.is_match("x = FOO.BAR(1)"));
        assert!(!search.is_match("fooXbar("));
    }

    #[test]
    fn slashes_make_a_regex() {
        let request = Request::parse("/fn \\w+_test/").unwrap();
        assert_eq!(
            (request.query.as_str(), request.regex),
            ("fn \\w+_test", true)
        );
        assert!(Request::parse("/").unwrap().query == "/");
    }

    #[test]
    fn json_options_are_read() {
        let request = Request::parse(
            r#"{"query": "a.b", "regex": true, "include": ["**/*.rs"], "exclude": "docs/**",
                "context": 0, "max_findings": 5, "case_sensitive": true}"#,
        )
        .unwrap();
        assert_eq!(
            request,
            Request {
                query: "a.b".into(),
                regex: true,
                include: vec!["**/*.rs".into()],
                exclude: vec!["docs/**".into()],
                context: 0,
                max_findings: 5,
                case_sensitive: Some(true),
            }
        );
    }

    #[test]
    fn text_that_is_not_a_json_object_is_a_literal() {
        assert_eq!(Request::parse("[1, 2]").unwrap().query, "[1, 2]");
        assert_eq!(Request::parse("{not json").unwrap().query, "{not json");
    }

    #[test]
    fn bad_input_names_the_field() {
        assert!(invalid_message(Request::parse("   ")).starts_with("empty query"));
        assert!(invalid_message(Request::parse("//")).starts_with("empty query"));
        assert!(invalid_message(Request::parse(r#"{"query": ""}"#)).starts_with("empty query"));
        assert!(
            invalid_message(Request::parse(r#"{"regex": true}"#)).starts_with("missing `query`")
        );
        assert!(
            invalid_message(Request::parse(r#"{"query": 1}"#))
                .starts_with("`query` must be a string")
        );
        assert!(
            invalid_message(Request::parse(r#"{"query": "x", "regex": "yes"}"#))
                .starts_with("`regex` must be")
        );
        assert!(
            invalid_message(Request::parse(r#"{"query": "x", "context": -1}"#))
                .starts_with("`context` must be")
        );
        assert!(
            invalid_message(Request::parse(r#"{"query": "x", "max_findings": 0}"#))
                .starts_with("`max_findings`")
        );
        assert!(
            invalid_message(Request::parse(r#"{"query": "x", "include": [1]}"#))
                .starts_with("`include` must be")
        );
        assert!(
            invalid_message(Request::parse(r#"{"query": "x", "glob": "*"}"#))
                .starts_with("unknown option `glob`")
        );
        let regex = invalid_message(Search::new(Request::parse("/a(b/").unwrap()));
        assert!(regex.starts_with("invalid regex in `query`"), "{regex}");
        let property = invalid_message(Search::new(Request::parse(r"/\p{Greek}/").unwrap()));
        assert!(
            property.ends_with("write `\\p{…}` classes as explicit ranges)"),
            "{property}"
        );
        let glob = invalid_message(Search::new(
            Request::parse(r#"{"query": "x", "exclude": ["a/[b"]}"#).unwrap(),
        ));
        assert_eq!(
            glob,
            "invalid glob `a/[b` in `exclude`: unclosed character class; missing ']'"
        );
    }

    #[test]
    fn case_is_smart_unless_set() {
        assert!(!search("todo").case_sensitive);
        assert!(search("Todo").case_sensitive);
        assert!(!search(r"/\w+\S/").case_sensitive);
        assert!(search(r"/\wX/").case_sensitive);
        assert!(!search(r#"{"query": "Todo", "case_sensitive": false}"#).is_match("x"));
        assert!(search(r#"{"query": "Todo", "case_sensitive": false}"#).is_match("TODO"));
        assert!(!search("Todo").is_match("TODO"));
    }

    #[test]
    fn globs_filter_paths() {
        let search = search(
            r#"{"query": "x", "include": ["*.rs", "docs/*.md"], "exclude": ["src/gen/**"]}"#,
        );
        assert!(!search.skip_file("main.rs"));
        assert!(!search.skip_file("src/deep/lib.rs"));
        assert!(!search.skip_file("docs/a.md"));
        assert!(search.skip_file("docs/sub/a.md"));
        assert!(search.skip_file("README.md"));
        assert!(search.skip_file("src/gen/x.rs"));
        assert!(search.skip_dir("a/target"));
        assert!(!search.skip_dir("src/gen"));
    }

    #[test]
    fn an_include_naming_a_skipped_dir_opens_it() {
        let search = search(r#"{"query": "x", "include": ["target/**/*.json"]}"#);
        assert!(!search.skip_dir("target"));
        assert!(search.skip_dir("node_modules"));
        assert!(search.skip_dir(".git"));
    }
}
