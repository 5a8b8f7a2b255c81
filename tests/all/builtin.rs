//! The subagents built into the binary (`deep-search`, `todo-report`, the
//! `prompt-agent` runner): what a user who installed only `subagent` has,
//! with no checkout and no registry.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::http_server::{Canned, TestServer};

/// A user's machine: a HOME with nothing in it, no XDG variables, the
/// command run from outside any checkout. Compiled components still come
/// from the tests' shared artifact cache (`SUBAGENT_CACHE_DIR`), so nothing
/// is compiled twice; the built-ins are written under it, from the binary.
struct Machine {
    home: tempfile::TempDir,
    workspace: tempfile::TempDir,
}

impl Machine {
    fn new() -> Machine {
        let workspace = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(workspace.path().join("src")).unwrap();
        std::fs::write(
            workspace.path().join("src/main.rs"),
            "fn main() {\n    // TODO: parse the arguments\n    run();\n}\n",
        )
        .unwrap();
        std::fs::write(workspace.path().join("notes.txt"), "nothing to do here\n").unwrap();
        Machine {
            home: tempfile::tempdir().unwrap(),
            workspace,
        }
    }

    fn ws(&self) -> &str {
        path(self.workspace.path())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_subagent-under-test"));
        cmd.args(args)
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_CACHE_HOME")
            .env("SUBAGENT_CACHE_DIR", cache_dir());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        output_within(self.command(args), std::time::Duration::from_secs(120)).unwrap()
    }

    fn list(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["list", "--workspace", self.ws(), "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn builtin_names(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .filter(|e| e["builtin"] == true)
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

#[test]
fn built_ins_are_listed_and_run_with_no_registry() {
    let machine = Machine::new();
    let entries = machine.list(&[]);
    assert_eq!(
        builtin_names(&entries),
        ["deep-search", "prompt-agent", "todo-report"],
        "{entries:#?}"
    );
    // Written from the binary into the cache directory, nowhere near a checkout.
    for entry in &entries {
        let dir = PathBuf::from(entry["path"].as_str().unwrap());
        assert!(dir.starts_with(cache_dir().join("builtin")), "{entry}");
        assert_eq!(entry["shadowed"], false);
    }
    let out = machine.run(&["list", "--workspace", machine.ws()]);
    assert!(
        stdout(&out).contains("(built-in)"),
        "the table marks them:\n{}",
        stdout(&out)
    );

    let out = machine.run(&[
        "run",
        "deep-search",
        "TODO",
        "--workspace",
        machine.ws(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["status"], "completed", "{report:#}");
    let matches = report["data"]["findings"].as_array().unwrap();
    assert_eq!(matches.len(), 1, "{report:#}");
    assert_eq!(matches[0]["path"], "src/main.rs");

    // todo-report writes its report, only inside its grant.
    let out = machine.run(&[
        "run",
        "todo-report",
        "Collect the TODOs.",
        "--workspace",
        machine.ws(),
    ]);
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let report = std::fs::read_to_string(machine.workspace.path().join("reports/todo.md")).unwrap();
    assert!(report.contains("parse the arguments"), "{report}");
}

#[test]
fn a_claude_code_definition_runs_on_the_built_in_prompt_agent() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(vec![Canned::openai_chat(
        "scripted",
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "finish", "arguments": "{\"summary\":\"One TODO, in src/main.rs.\"}"}}
        ]}),
        "tool_calls",
        (10, 5),
    )]));
    let machine = Machine::new();
    let config_dir = machine.home.path().join(".config/subagent");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        format!(
            "default_model = \"local\"\n\n[models.local]\nprovider = \"openai\"\nbase_url = \"{}/v1\"\nmodel = \"scripted\"\nmax_retries = 0\n",
            server.url()
        ),
    )
    .unwrap();
    let agents = machine.workspace.path().join(".claude/agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(
        agents.join("todo-finder.md"),
        "---\nname: todo-finder\ndescription: Finds the TODOs.\ntools: Read, Grep\n---\n\nYou find TODO comments.\n",
    )
    .unwrap();

    let out = machine.run(&[
        "run",
        "todo-finder",
        "Find the TODOs.",
        "--workspace",
        machine.ws(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["summary"], "One TODO, in src/main.rs.");
    assert_eq!(report["permissions"]["mode"], "readonly");
    let requests = server.received();
    assert_eq!(requests.len(), 1);
    let system = requests[0].json()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.ends_with("You find TODO comments."), "{system}");
}

#[test]
fn a_registry_bundle_overrides_a_built_in_and_no_builtins_turns_them_off() {
    let machine = Machine::new();
    let registry = tempfile::tempdir().unwrap();
    write_bundle(registry.path(), "deep-search", "noop", "");
    let reg = path(registry.path());

    let entries = machine.list(&["--agents", reg]);
    let deep: Vec<&Value> = entries
        .iter()
        .filter(|e| e["name"] == "deep-search")
        .collect();
    assert_eq!(deep.len(), 2, "{entries:#?}");
    assert_eq!(deep[0]["registry"], reg);
    assert_eq!(deep[0]["builtin"], false);
    assert_eq!(deep[1]["builtin"], true);
    assert_eq!(deep[1]["shadowed"], true);
    let out = machine.run(&[
        "--agents",
        reg,
        "validate",
        "deep-search",
        "--workspace",
        machine.ws(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        plan["manifest"]
            .as_str()
            .is_some_and(|m| Path::new(m).starts_with(registry.path())),
        "the registry's bundle runs, not the built-in: {plan:#}"
    );

    let entries = machine.list(&["--no-builtins"]);
    assert!(builtin_names(&entries).is_empty(), "{entries:#?}");
    let out = machine.run(&[
        "--no-builtins",
        "run",
        "deep-search",
        "x",
        "--workspace",
        machine.ws(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("deep-search"), "{}", stderr(&out));
}

#[test]
fn a_built_in_changed_on_disk_is_refused_not_run() {
    let machine = Machine::new();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = path(cache.path());
    let entries = machine.list(&["--cache-dir", cache_arg]);
    let deep = entries.iter().find(|e| e["name"] == "deep-search").unwrap();
    let dir = PathBuf::from(deep["path"].as_str().unwrap());
    assert!(dir.starts_with(cache.path()), "{deep}");
    let wasm = dir.join("deep_search.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&wasm, bytes).unwrap();

    let out = machine.run(&[
        "--cache-dir",
        cache_arg,
        "run",
        "deep-search",
        "TODO",
        "--workspace",
        machine.ws(),
    ]);
    assert_eq!(code(&out), 2, "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("but the manifest pins"),
        "{}",
        stderr(&out)
    );
}
