//! Model access through the whole host: the prompt-agent plugin completing
//! a real multi-turn task against a scripted OpenAI-compatible server on
//! loopback, model resolution at launch, usage roll-up through nested
//! tasks, secret isolation, and record/replay through the CLI.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use subagent_host::model::{HostConfig, Models};
use subagent_host::tasks::{LaunchRequest, ManagerConfig, ManagerError, SubagentRef, TaskManager};
use subagent_host::{Runtime, RuntimeConfig, TaskStatus};

use crate::helpers::*;
use crate::http_server::{Canned, TestServer};

const SECRET: &str = "sk-test-4f1c-never-in-a-guest";

/// An OpenAI chat-completions answer with tool calls (or text when empty).
fn answer(text: &str, calls: &[(&str, Value)], usage: (u64, u64)) -> Canned {
    let tool_calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| json!({"id": format!("call_{i}_{name}"), "type": "function", "function": {"name": name, "arguments": args.to_string()}}))
        .collect();
    let mut message = json!({"role": "assistant", "content": text});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    Canned::openai_chat("scripted-1", message, finish, usage)
}

/// A host config with aliases `fast` (the default) and `smart`, both on `url`.
fn config(dir: &Path, url: &str) -> HostConfig {
    let text = format!(
        "default_model = \"fast\"\n\n[models.fast]\nprovider = \"openai\"\nbase_url = \"{url}/v1\"\nmodel = \"scripted-1\"\napi_key_env = \"SUBAGENT_TEST_KEY\"\nmax_retries = 0\n\n[models.smart]\nprovider = \"openai\"\nbase_url = \"{url}/v1\"\nmodel = \"scripted-2\"\napi_key_env = \"SUBAGENT_TEST_KEY\"\nmax_retries = 0\n"
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    subagent_host::model::config::load(Some(&path)).unwrap()
}

/// A manager whose models read the key from a test env, over a registry
/// holding `bundles` (name, component, extra manifest lines).
fn manager(dir: &Path, url: &str, bundles: &[(&str, &Path, &str)]) -> TaskManager {
    let registry = dir.join("registry");
    for (name, component, extra) in bundles {
        std::fs::create_dir_all(registry.join(name)).unwrap();
        std::fs::write(
            registry.join(name).join("subagent.toml"),
            format!(
                "name = \"{name}\"\ndescription = \"test\"\ncomponent = {:?}\n{extra}\n",
                component.display().to_string()
            ),
        )
        .unwrap();
    }
    let models = Models::new(config(dir, url), None)
        .unwrap()
        .with_env(|name| (name == "SUBAGENT_TEST_KEY").then(|| SECRET.to_owned()));
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig {
            cache_dir: Some(cache_dir()),
            ..Default::default()
        })
        .unwrap(),
    );
    let config = ManagerConfig {
        agents: vec![registry],
        ..ManagerConfig::default()
    };
    TaskManager::builder(runtime)
        .config(config)
        .models(Arc::new(models))
        .build()
        .unwrap()
}

/// A host config file in `dir` whose default model `local` is the scripted
/// server at `url`.
fn local_model_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("default_model = \"local\"\n[models.local]\nprovider = \"openai\"\nbase_url = \"{url}/v1\"\nmodel = \"scripted-1\"\nmax_retries = 0\n"),
    )
    .unwrap();
    config
}

fn prompt_agent() -> std::path::PathBuf {
    subagent_host::Bundle::open(&plugin("prompt-agent"))
        .unwrap()
        .manifest
        .component
}

const REPORTER: &str = "prompt = \"You write short reports about code.\"\ntools = [\"model\"]\npermission_mode = \"default\"\nallowed_write_directories = [\"reports\"]\nmodel = \"smart\"";

#[tokio::test]
async fn prompt_agent_completes_a_multi_turn_task_in_its_sandbox() {
    let script = vec![
        answer("", &[("list_dir", json!({"path": "."}))], (100, 10)),
        answer(
            "",
            &[("read_file", json!({"path": "src/lib.rs"}))],
            (150, 12),
        ),
        answer(
            "",
            &[(
                "write_file",
                json!({"path": "src/lib.rs", "content": "pwned"}),
            )],
            (200, 20),
        ),
        answer(
            "",
            &[(
                "write_file",
                json!({"path": "reports/summary.md", "content": "# Summary\n\nOne TODO in src/lib.rs.\n"}),
            )],
            (220, 30),
        ),
        answer(
            "",
            &[(
                "finish",
                json!({"summary": "Wrote reports/summary.md: one TODO."}),
            )],
            (240, 8),
        ),
    ];
    let server = TestServer::start(script).await;
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(
        dir.path(),
        &server.url(),
        &[("reporter", &prompt_agent(), REPORTER)],
    );
    let fixture = Fixture::new();
    let request = LaunchRequest::new(
        SubagentRef::Name("reporter".into()),
        "Report the TODOs in src/.",
        &fixture.workspace,
    );
    let (id, result) = manager.run(request).await.unwrap();

    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    assert_eq!(
        result.summary.as_deref(),
        Some("Wrote reports/summary.md: one TODO.")
    );
    assert_eq!(
        result.model.as_deref(),
        Some("smart"),
        "the effective model is recorded"
    );
    assert_eq!(
        (
            result.usage.model_calls,
            result.usage.input_tokens,
            result.usage.output_tokens
        ),
        (5, 910, 80)
    );
    assert_eq!(result.usage.rounds, 5);
    // The host observed exactly one change: the report, in the allowed dir.
    let created: Vec<&str> = result
        .files
        .created
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(created, ["reports/summary.md"]);
    assert!(result.files.modified.is_empty());
    assert_eq!(
        std::fs::read_to_string(fixture.workspace.join("src/lib.rs")).unwrap(),
        "// TODO: write the library\nfn main() {}\n"
    );

    let requests = server.received();
    assert_eq!(requests.len(), 5);
    let first = requests[0].json();
    assert_eq!(first["model"], "scripted-2");
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("You write short reports about code.")
    );
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        ["list_dir", "read_file", "search", "write_file", "finish"]
    );
    // The refused write came back to the model as a tool result saying so.
    let fourth = requests[3].json();
    let refusal = fourth["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .unwrap();
    let refusal = refusal["content"].as_str().unwrap();
    assert!(
        refusal.starts_with("permission denied") && refusal.contains("reports/"),
        "{refusal}"
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(
        manager.get(&id).unwrap().key,
        "smart",
        "the effective model is the concurrency key"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_guest() {
    let server = TestServer::start(vec![answer(
        "",
        &[("finish", json!({"summary": "done"}))],
        (1, 1),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(
        dir.path(),
        &server.url(),
        &[
            ("reporter", &prompt_agent(), REPORTER),
            ("escape", &guest("escape"), "tools = [\"model\"]"),
        ],
    );
    let fixture = Fixture::new();
    let (agent_id, agent) = manager
        .run(LaunchRequest::new(
            SubagentRef::Name("reporter".into()),
            "go",
            &fixture.workspace,
        ))
        .await
        .unwrap();
    assert_eq!(agent.status, TaskStatus::Completed);
    // The key went to the provider, and nowhere a guest can see: not its
    // task, environment, output, events or result.
    assert_eq!(
        server.received()[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    let (_, env) = manager
        .run(LaunchRequest::new(
            SubagentRef::Name("escape".into()),
            "env",
            &fixture.workspace,
        ))
        .await
        .unwrap();
    assert_eq!(env.data.as_ref().unwrap()["vars"], json!([]));
    let mut events = manager.subscribe(&agent_id).unwrap();
    let mut seen = String::new();
    while let Some(subagent_host::tasks::StreamItem::Event(event)) = events.next().await {
        seen += &serde_json::to_string(&event).unwrap();
    }
    seen += &serde_json::to_string(&agent).unwrap();
    seen += &serde_json::to_string(&env).unwrap();
    for request in server.received() {
        seen += &request.json().to_string();
    }
    assert!(
        !seen.contains(SECRET),
        "the key leaked into what the guest sees or sends"
    );
}

#[tokio::test]
async fn model_resolution_precedence_at_launch() {
    let server = TestServer::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let noop = guest("noop");
    let nester = guest("nester");
    let manager = manager(
        dir.path(),
        &server.url(),
        &[
            ("pinned", &noop, "tools = [\"model\"]\nmodel = \"smart\""),
            ("unpinned", &noop, "tools = [\"model\"]"),
            ("no-model", &noop, "model = \"smart\""),
            ("typo", &noop, "tools = [\"model\"]\nmodel = \"smrt\""),
            (
                "inheritor",
                &noop,
                "tools = [\"model\"]\nmodel = \"inherit\"",
            ),
            (
                "parent",
                &nester,
                "tools = [\"model\", \"subagents\"]\nmodel = \"smart\"",
            ),
        ],
    );
    let ws = tempfile::tempdir().unwrap();
    let run = |name: &str, model: Option<&str>| {
        let mut request = LaunchRequest::new(SubagentRef::Name(name.into()), "x", ws.path());
        request.model = model.map(str::to_owned);
        let manager = manager.clone();
        async move {
            let (id, result) = manager.run(request).await?;
            Ok::<_, ManagerError>((manager.get(&id).unwrap().key, result.model))
        }
    };
    // manifest > host default; launch override > manifest.
    assert_eq!(
        run("pinned", None).await.unwrap(),
        ("smart".into(), Some("smart".into()))
    );
    assert_eq!(
        run("pinned", Some("fast")).await.unwrap(),
        ("fast".into(), Some("fast".into()))
    );
    assert_eq!(
        run("unpinned", None).await.unwrap(),
        ("fast".into(), Some("fast".into()))
    );
    // Without the `model` tool the key stays the subagent's name.
    assert_eq!(run("no-model", None).await.unwrap().0, "no-model");
    // An unknown alias is refused at launch, with a suggestion.
    let err = run("typo", None).await.unwrap_err().to_string();
    assert!(
        err.contains("subagent `typo` uses model `smrt`") && err.contains("did you mean `smart`?"),
        "{err}"
    );
    let err = run("pinned", Some("nope/x")).await.unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
    // `inherit` takes the parent's effective model.
    let spec = json!({"spawn": [{"subagent": "inheritor", "prompt": "x"}], "await": true});
    let (parent, result) = manager
        .run(LaunchRequest::new(
            SubagentRef::Name("parent".into()),
            spec.to_string(),
            ws.path(),
        ))
        .await
        .unwrap();
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    let child = &manager.get(&parent).unwrap().children[0];
    assert_eq!(manager.get(child).unwrap().model.as_deref(), Some("smart"));
}

#[tokio::test]
async fn usage_rolls_up_through_nested_tasks() {
    let finish = || answer("", &[("finish", json!({"summary": "ok"}))], (10, 5));
    let server = TestServer::start(vec![finish(), finish()]).await;
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(
        dir.path(),
        &server.url(),
        &[
            ("reporter", &prompt_agent(), REPORTER),
            (
                "parent",
                &guest("nester"),
                "tools = [\"model\", \"subagents\"]\npermission_mode = \"default\"",
            ),
        ],
    );
    let fixture = Fixture::new();
    let spec = json!({"spawn": [{"subagent": "reporter", "prompt": "a"}, {"subagent": "reporter", "prompt": "b"}], "await": true});
    let (_, result) = manager
        .run(LaunchRequest::new(
            SubagentRef::Name("parent".into()),
            spec.to_string(),
            &fixture.workspace,
        ))
        .await
        .unwrap();
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    assert_eq!(
        result.usage.model_calls, 0,
        "the parent itself called no model"
    );
    let total = result
        .usage
        .total
        .expect("a parent's usage includes its descendants");
    assert_eq!(
        (
            total.tasks,
            total.model_calls,
            total.input_tokens,
            total.output_tokens
        ),
        (3, 2, 20, 10)
    );
}

#[tokio::test]
async fn a_model_call_without_the_grant_is_denied() {
    let server = TestServer::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let no_grant = "permission_mode = \"readonly\"\nprompt = \"p\"";
    let manager = manager(
        dir.path(),
        &server.url(),
        &[("ungranted", &prompt_agent(), no_grant)],
    );
    let ws = tempfile::tempdir().unwrap();
    let (_, result) = manager
        .run(LaunchRequest::new(
            SubagentRef::Name("ungranted".into()),
            "go",
            ws.path(),
        ))
        .await
        .unwrap();
    assert_eq!(result.status, TaskStatus::Failed);
    let message = result.error.unwrap().message;
    assert!(
        message.contains("denied") && message.contains("add \"model\" to `tools`"),
        "{message}"
    );
    assert!(server.received().is_empty(), "nothing reached the provider");
}

#[test]
fn record_then_replay_offline_through_the_cli() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(vec![
        answer("", &[("list_dir", json!({"path": "."}))], (30, 4)),
        answer(
            "",
            &[("finish", json!({"summary": "Looked around."}))],
            (40, 6),
        ),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let config = local_model_config(dir.path(), &server.url());
    let bundle = dir.path().join("agent");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("subagent.toml"),
        format!(
            "name = \"agent\"\ndescription = \"d\"\ncomponent = {:?}\ntools = [\"model\"]\n",
            prompt_agent().display().to_string()
        ),
    )
    .unwrap();
    let ws = tempfile::tempdir().unwrap();
    let recording = dir.path().join("session.jsonl");
    let args = |extra: &[&str]| {
        let mut args = vec![
            "--config",
            path(&config),
            "run",
            path(&bundle),
            "look around",
            "--workspace",
            path(ws.path()),
            "--json",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let live = args(&["--record", path(&recording)]);
    let live = subagent(&live.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code(&live), 0, "{}", stderr(&live));
    let live: Value = serde_json::from_str(&stdout(&live)).unwrap();
    assert_eq!(live["summary"], "Looked around.");
    assert_eq!(live["model"], "local");
    drop(server);
    drop(runtime);

    // The provider is gone; the recording answers.
    let replayed = args(&["--replay", path(&recording)]);
    let replayed = subagent(&replayed.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code(&replayed), 0, "{}", stderr(&replayed));
    let replayed: Value = serde_json::from_str(&stdout(&replayed)).unwrap();
    assert_eq!(replayed["summary"], live["summary"]);
    assert_eq!(
        replayed["usage"]["input_tokens"],
        live["usage"]["input_tokens"]
    );

    // A different conversation does not match the recording: a clear error.
    let mut other = args(&["--replay", path(&recording)]);
    other[4] = "do something else".into();
    let other = subagent(&other.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code(&other), 1);
    let report: Value = serde_json::from_str(&stdout(&other)).unwrap();
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("does not match the recording") || message.contains("recording"),
        "{message}"
    );
}

#[test]
fn example_host_configs_are_valid() {
    let dir = repo_root().join("examples").join("config");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let config = subagent_host::model::config::load(Some(&entry.path()))
            .unwrap_or_else(|e| panic!("{e}"));
        let default = config
            .default_model
            .clone()
            .expect("each example sets default_model");
        config
            .resolve(&default)
            .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
        count += 1;
    }
    assert!(count >= 2);
}

#[tokio::test]
async fn the_token_budget_stops_model_calls() {
    // Each answer costs 60 tokens; the budget is 100, so the third call is refused.
    let script = vec![
        answer("", &[("list_dir", json!({"path": "."}))], (50, 10)),
        answer("", &[("list_dir", json!({"path": "src"}))], (50, 10)),
        answer(
            "",
            &[("finish", json!({"summary": "never reached"}))],
            (50, 10),
        ),
    ];
    let server = TestServer::start(script).await;
    let dir = tempfile::tempdir().unwrap();
    let budgeted = format!("{REPORTER}\n[limits]\ntokens = 100");
    let manager = manager(
        dir.path(),
        &server.url(),
        &[("budgeted", &prompt_agent(), &budgeted)],
    );
    let fixture = Fixture::new();
    let (_, result) = manager
        .run(LaunchRequest::new(
            SubagentRef::Name("budgeted".into()),
            "go",
            &fixture.workspace,
        ))
        .await
        .unwrap();
    assert_eq!(result.status, TaskStatus::Failed, "{result:#?}");
    let message = result.error.unwrap().message;
    assert!(
        message.contains("budget exceeded")
            && message.contains("120 of its 100 tokens (limits.tokens)"),
        "{message}"
    );
    assert_eq!(result.usage.model_calls, 2);
    let requests = server.received();
    assert_eq!(
        requests.len(),
        2,
        "the refused call never reached the provider"
    );
    // Each answer may use at most what is left of the budget.
    assert_eq!(requests[0].json()["max_tokens"], 100);
    assert_eq!(requests[1].json()["max_tokens"], 40);
}

#[test]
fn validate_resolves_the_model_as_a_launch_would() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "default_model = \"fast\"\n[models.fast]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n").unwrap();
    let bundle = |name: &str, extra: &str| {
        let dir = dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = format!(
            "name = \"{name}\"\ndescription = \"d\"\ncomponent = {:?}\ntools = [\"model\"]\n{extra}\n",
            prompt_agent().display().to_string()
        );
        std::fs::write(dir.join("subagent.toml"), manifest).unwrap();
        dir
    };
    let defaulted = bundle("defaulted", "");
    let out = subagent(&["--config", path(&config), "validate", path(&defaulted)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("  model        fast (the host config's default_model)\n"),
        "{}",
        stdout(&out)
    );
    let typo = bundle("typo", "model = \"fsat\"");
    let out = subagent(&["--config", path(&config), "validate", path(&typo)]);
    // The bundle is fine; this host's config lacks the alias: a warning, as a run would be refused.
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("  warning      model `fsat`: unknown model `fsat`")
            && text.contains("did you mean `fast`?")
            && text.contains("a run here would be refused"),
        "{text}"
    );
}

/// `run --background` hands its detached process the whole request: a
/// Markdown definition found through one `--agents` dir, whose `prompt-agent`
/// runner lives in another, runs to completion and is recorded. The detached
/// process once got a hand-rebuilt command line without `--agents`.
#[test]
fn background_run_of_a_definition_keeps_the_agents_dirs() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(vec![answer(
        "",
        &[("finish", json!({"summary": "Reviewed in the background."}))],
        (12, 3),
    )]));
    let dir = tempfile::tempdir().unwrap();
    let config = local_model_config(dir.path(), &server.url());
    let (runners, agents) = (dir.path().join("runners"), dir.path().join("agents"));
    std::fs::create_dir_all(runners.join("prompt-agent")).unwrap();
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(
        runners.join("prompt-agent/subagent.toml"),
        format!(
            "name = \"prompt-agent\"\ndescription = \"runs Markdown definitions\"\ncomponent = {:?}\ntools = [\"model\"]\n",
            prompt_agent().display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        agents.join("reviewer.md"),
        "---\nname: reviewer\ndescription: Reviews code.\n---\n\nYou review code.\n",
    )
    .unwrap();
    let ws = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cli = |args: &[&str]| {
        let mut all = vec![
            "--state-dir",
            path(&state),
            "--agents",
            path(&runners),
            "--agents",
            path(&agents),
            "--config",
            path(&config),
        ];
        all.extend_from_slice(args);
        subagent(&all)
    };

    let started = cli(&[
        "run",
        "reviewer",
        "review the workspace",
        "--workspace",
        path(ws.path()),
        "--background",
    ]);
    assert_eq!(code(&started), 0, "{}", stderr(&started));
    let id = stdout(&started).trim().to_owned();
    let store = subagent_host::store::Store::open(&state).unwrap();
    let waited = std::time::Instant::now();
    let task = loop {
        let task = store.task(&id).unwrap();
        if task.status.is_terminal() {
            break task;
        }
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(60),
            "task {id} stuck at {}",
            task.status
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let result = task.result.expect("a finished task has its result");
    assert_eq!(
        result.status,
        subagent_host::TaskStatus::Completed,
        "{result:#?}"
    );
    assert_eq!(
        result.summary.as_deref(),
        Some("Reviewed in the background.")
    );
    drop(server);
}

/// A registry pair for the duplicate-name tests: `runners` holds
/// prompt-agent, `agents` what the test writes.
struct Duplicates {
    _dir: tempfile::TempDir,
    runners: std::path::PathBuf,
    agents: std::path::PathBuf,
    workspace: std::path::PathBuf,
}

impl Duplicates {
    fn new() -> Duplicates {
        let dir = tempfile::tempdir().unwrap();
        let runners = dir.path().join("runners");
        let agents = dir.path().join("agents");
        let workspace = dir.path().join("workspace");
        for d in [&runners, &agents, &workspace] {
            std::fs::create_dir_all(d).unwrap();
        }
        let set = Duplicates {
            _dir: dir,
            runners,
            agents,
            workspace,
        };
        set.bundle(&set.runners, "prompt-agent", "prompt-agent");
        set
    }

    /// A Markdown definition named `name` at `agents/<file>`.
    fn definition(&self, file: &str, name: &str, description: &str) -> std::path::PathBuf {
        let path = self.agents.join(file);
        std::fs::write(
            &path,
            format!("---\nname: {name}\ndescription: {description}\n---\n\nYou review code.\n"),
        )
        .unwrap();
        path
    }

    /// A bundle directory `<registry>/<dir>` named `name`, run by prompt-agent.
    fn bundle(&self, registry: &Path, dir: &str, name: &str) -> std::path::PathBuf {
        let path = registry.join(dir);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(
            path.join("subagent.toml"),
            format!(
                "name = \"{name}\"\ndescription = \"a bundle\"\ncomponent = {:?}\ntools = [\"model\"]\n",
                prompt_agent().display().to_string()
            ),
        )
        .unwrap();
        path
    }

    fn registries(&self) -> subagent_host::Registries {
        subagent_host::Registries {
            dirs: vec![self.agents.clone(), self.runners.clone()],
        }
    }

    /// `subagent` with both registries and the workspace.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec![
            "--agents",
            path(&self.agents),
            "--agents",
            path(&self.runners),
        ];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--workspace", path(&self.workspace)]);
        subagent(&all)
    }
}

/// Issue 12: two definitions with one name in one registry were silently
/// resolved to the first; now running the name is an error naming both
/// files, and `list` marks both.
#[test]
fn a_name_defined_twice_in_one_registry_is_an_error_naming_both_files() {
    let set = Duplicates::new();
    let a = set.definition("a-reviewer.md", "reviewer", "The first reviewer.");
    let b = set.definition("b-reviewer.md", "reviewer", "The second reviewer.");
    set.definition("tester.md", "tester", "Tests code.");
    let registries = set.registries();

    let entries = registries.entries();
    let reviewers: Vec<_> = entries.iter().filter(|e| e.name() == "reviewer").collect();
    assert_eq!(reviewers.len(), 2);
    assert_eq!(reviewers[0].dir, a);
    assert_eq!(reviewers[0].duplicates, [b.clone()]);
    assert_eq!(reviewers[1].duplicates, [a.clone()]);
    // Not shadowing: both are in the same registry.
    assert!(reviewers.iter().all(|e| !e.shadowed));
    let tester = entries.iter().find(|e| e.name() == "tester").unwrap();
    assert!(tester.duplicates.is_empty());

    let err = registries.resolve_name("reviewer").unwrap_err();
    assert!(
        matches!(err, subagent_host::BundleError::Duplicate { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "subagent `reviewer` is defined 2 times in the registry {}: {}, {}\n  = help: a name is unique per registry: rename all but one (`name:` in a definition's frontmatter, `name` in a bundle's subagent.toml) or remove them; or run one by its path",
            set.agents.display(),
            a.display(),
            b.display()
        )
    );
    // The others still resolve, and a path is unambiguous.
    assert_eq!(registries.resolve_name("tester").unwrap().name(), "tester");
    let by_path = registries.resolve(path(&b)).unwrap();
    assert_eq!(by_path.manifest.description, "The second reviewer.");
    assert_eq!(registries.duplicates_of(&b), [a.clone()]);

    // `run` and `validate` by name refuse, naming both files.
    for args in [
        &["run", "reviewer", "review it"][..],
        &["validate", "reviewer"][..],
    ] {
        let out = set.cli(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("subagent `reviewer` is defined 2 times")
                && err.contains(path(&a))
                && err.contains(path(&b))
                && err.contains("rename all but one"),
            "{args:?}: {err}"
        );
    }

    // `validate` by path validates, and says the name is not unique.
    let out = set.cli(&["validate", path(&a)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "  warning      `reviewer` is also defined by {} in the same registry: running `reviewer` by name fails",
            b.display()
        )),
        "{}",
        stdout(&out)
    );
    let out = set.cli(&["validate", path(&a), "--json"]);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["duplicates"], json!([path(&b)]));

    // `list` names both files, in text and JSON.
    let out = set.cli(&["list", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let duplicates = |file: &Path| {
        rows.iter()
            .find(|r| r["path"] == path(file))
            .unwrap_or_else(|| panic!("no {} in {rows:#?}", file.display()))["duplicates"]
            .clone()
    };
    assert_eq!(duplicates(&a), json!([path(&b)]));
    assert_eq!(duplicates(&b), json!([path(&a)]));
    let text = stdout(&set.cli(&["list"]));
    assert!(
        text.contains(&format!(
            "error: `reviewer` is also defined by {}; running `reviewer` by name fails",
            b.display()
        )) && text.contains(&format!("`reviewer` is also defined by {}", a.display())),
        "{text}"
    );
    // (The built-in prompt-agent is shadowed by the registry's; no reviewer is.)
    assert!(
        !text
            .lines()
            .any(|l| l.contains("reviewer") && l.contains("shadowed")),
        "{text}"
    );
}

/// Bundle directories collide like definitions; across registries the
/// earlier one still wins and shadows a later pair without an error.
#[test]
fn duplicate_bundles_collide_in_their_registry_but_an_earlier_registry_wins() {
    let set = Duplicates::new();
    let first = set.bundle(&set.agents, "twin-one", "twin");
    let second = set.bundle(&set.agents, "twin-two", "twin");
    let md = set.definition("twin.md", "twin", "A definition of the same name.");
    let err = set
        .registries()
        .resolve_name("twin")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "subagent `twin` is defined 3 times in the registry {}: ",
            set.agents.display()
        )) && [&first, &second, &md].iter().all(|p| err.contains(path(p))),
        "{err}"
    );

    // An earlier registry with one `twin`: it wins, the pair is shadowed.
    let earlier = tempfile::tempdir().unwrap();
    let winner = set.bundle(earlier.path(), "twin", "twin");
    let registries = subagent_host::Registries {
        dirs: vec![
            earlier.path().to_owned(),
            set.agents.clone(),
            set.runners.clone(),
        ],
    };
    let bundle = registries.resolve_name("twin").unwrap();
    assert_eq!(bundle.manifest.path, winner.join("subagent.toml"));
    let twins: Vec<_> = registries
        .entries()
        .into_iter()
        .filter(|e| e.name() == "twin")
        .collect();
    assert_eq!(twins.len(), 4);
    assert!(!twins[0].shadowed && twins[0].duplicates.is_empty());
    assert!(
        twins[1..]
            .iter()
            .all(|e| e.shadowed && e.duplicates.len() == 2)
    );
}
