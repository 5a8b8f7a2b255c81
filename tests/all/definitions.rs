//! Markdown subagent definitions (Claude Code, Cursor, qwen-code): what each
//! maps to, permissions narrowed rather than widened, located and
//! snapshot-tested errors (tests/fixtures/definitions/bad/<case>.expected;
//! UPDATE_SNAPSHOTS=1 rewrites them), the registries finding `.md` files and
//! the `prompt-agent` that runs them, and `subagent validate` on a definition.

use std::path::{Path, PathBuf};

use serde_json::json;
use subagent_host::bundle::BundleError;
use subagent_host::definitions::{Definition, Warning};
use subagent_host::{Bundle, Manifest, PermissionMode, Registries, Tool};

use crate::helpers::*;
use crate::http_server::{Canned, TestServer};
use crate::manifest::assert_snapshot;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("definitions")
}

fn load(rel: &str) -> Definition {
    Definition::load(&fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}:\n{e}"))
}

/// The real prompt-agent manifest (its component built by tests/build.rs).
fn prompt_agent() -> Manifest {
    Manifest::load(&plugin("prompt-agent").join("subagent.toml")).unwrap()
}

/// Assert exactly one warning mentions all of `words`; return it.
fn warning<'w>(warnings: &'w [Warning], words: &[&str]) -> &'w Warning {
    let hits: Vec<&Warning> = warnings
        .iter()
        .filter(|w| words.iter().all(|word| w.message.contains(word)))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one warning with {words:?}, got: {warnings:#?}"
    );
    hits[0]
}

#[test]
fn claude_code_reviewer_runs_readonly_on_prompt_agent() {
    let d = load("claude/code-reviewer.md");
    assert_eq!(d.name, "code-reviewer");
    assert!(d.description.starts_with("Expert code review specialist."));
    assert_eq!(d.model.as_deref(), Some("sonnet"));
    assert_eq!(d.permission_mode, PermissionMode::Readonly);
    assert_eq!(d.allowed_write_directories, None);
    let prompt = d.prompt.clone().unwrap();
    assert!(
        prompt.starts_with("You are a senior code reviewer"),
        "{prompt}"
    );
    assert!(
        prompt.ends_with("- Suggestions (consider improving)"),
        "{prompt}"
    );

    let bash = warning(&d.warnings, &["`Bash`", "no sandboxed equivalent"]);
    assert_eq!(bash.line, 4);
    let color = warning(&d.warnings, &["`color` is ignored"]);
    assert_eq!(color.line, 6);
    assert_eq!(d.warnings.len(), 2, "{:#?}", d.warnings);
    assert!(
        color.to_string().ends_with(
            "code-reviewer.md:6: `color` is ignored: it has no effect on a sandboxed run"
        )
    );

    let runner = prompt_agent();
    let m = d.to_manifest(&runner);
    assert_eq!(m.name, "code-reviewer");
    assert_eq!(m.path, fixtures().join("claude/code-reviewer.md"));
    assert_eq!(m.component, runner.component);
    assert_eq!(m.limits, runner.limits);
    assert_eq!(m.tools, [Tool::Model]);
    assert_eq!(m.permission_mode, PermissionMode::Readonly);
    assert_eq!(m.build_command, None);
    let bundle = Bundle::from_definition(d, &runner);
    assert_eq!(bundle.system_prompt, Some(prompt));
    assert_eq!(bundle.warnings.len(), 2);
}

#[test]
fn write_tools_with_write_dirs_grant_exactly_those_dirs() {
    let d = load("claude/doc-writer.md");
    assert_eq!(d.permission_mode, PermissionMode::Default);
    assert_eq!(
        d.allowed_write_directories.as_deref(),
        Some(&["docs/generated".to_owned(), "docs/generated/api".to_owned()][..])
    );
    assert_eq!(d.model.as_deref(), Some("inherit"));
    assert_eq!(
        d.description,
        "Writes reference documentation for a module: use when a public API changed and docs/generated needs updating."
    );
    // acceptEdits widens nothing; it is said so.
    warning(
        &d.warnings,
        &["`permissionMode: acceptEdits` grants nothing"],
    );
    assert_eq!(d.warnings.len(), 1, "{:#?}", d.warnings);
}

#[test]
fn write_tools_without_write_dirs_run_readonly_and_say_how_to_allow_writes() {
    let d = load("claude/test-writer.md");
    assert_eq!(d.permission_mode, PermissionMode::Readonly);
    assert_eq!(d.allowed_write_directories, None);
    let w = warning(&d.warnings, &["`Write`, `Edit` may write nowhere"]);
    assert!(
        w.message
            .contains("add `allowed_write_directories: [reports]`"),
        "{w}"
    );
    // `Bash(cargo test:*)` is one tool, split outside its parentheses.
    warning(&d.warnings, &["tool `Bash(cargo test:*)` is ignored"]);
    assert_eq!(
        d.prompt,
        Some("You write focused unit tests for the code the task names.".into())
    );
}

#[test]
fn plan_mode_is_readonly_whatever_the_tools_and_dirs() {
    let d = load("claude/planner.md");
    assert_eq!(d.permission_mode, PermissionMode::Readonly);
    assert_eq!(d.allowed_write_directories, None);
    let w = warning(
        &d.warnings,
        &["`permissionMode: plan` makes the subagent readonly"],
    );
    assert_eq!(w.line, 7);
    // A `>` block folds into one line.
    assert_eq!(
        d.description,
        "Plans a change before anyone writes code: reads the relevant modules and proposes the steps, the files to touch and the risks."
    );
}

#[test]
fn cursor_readonly_definition() {
    let d = load("cursor/verifier.md");
    assert_eq!(d.name, "verifier");
    assert_eq!(d.model.as_deref(), Some("fast"));
    assert_eq!(d.permission_mode, PermissionMode::Readonly);
    warning(&d.warnings, &["`is_background` is ignored"]);
    assert_eq!(d.warnings.len(), 1, "{:#?}", d.warnings);
    assert!(d.prompt.unwrap().contains("skeptical validator"));
}

#[test]
fn qwen_code_block_lists_and_model_config() {
    let d = load("qwen/testing-expert.md");
    assert_eq!(d.permission_mode, PermissionMode::Default);
    assert_eq!(
        d.allowed_write_directories,
        Some(vec!["tests/generated".to_owned()])
    );
    assert_eq!(d.model.as_deref(), Some("qwen3-coder-plus"));
    warning(&d.warnings, &["tool `run_shell_command` is ignored"]);
    warning(&d.warnings, &["`modelConfig.temperature` is ignored"]);
    warning(&d.warnings, &["`runConfig` is ignored"]);
    assert_eq!(d.warnings.len(), 3, "{:#?}", d.warnings);

    let d = load("qwen/no-body.md");
    assert_eq!(d.prompt, None);
    assert_eq!(d.permission_mode, PermissionMode::Readonly);
    assert_eq!(
        d.description,
        "A definition with no system prompt: the prompt-agent preamble is all it gets."
    );
    warning(&d.warnings, &["`permission_mode: yolo` grants nothing"]);
}

#[test]
fn narrowing_rules_one_by_one() {
    let parse = |front: &str| {
        Definition::parse(
            Path::new("x.md"),
            &format!("---\nname: x\ndescription: d\n{front}---\nPrompt.\n"),
        )
        .unwrap_or_else(|e| panic!("{front}:\n{e}"))
    };
    let mode = |front: &str| parse(front).permission_mode;
    use PermissionMode::{Default, Readonly};

    assert_eq!(mode(""), Readonly, "no tools: readonly");
    assert_eq!(
        mode("allowed_write_directories: [out]\n"),
        Readonly,
        "dirs, no write tool"
    );
    assert_eq!(
        mode("tools: Write\nallowed_write_directories: [out]\n"),
        Default
    );
    assert_eq!(
        mode("tools: write_file\nallowed_write_directories: [out]\n"),
        Default
    );
    assert_eq!(
        mode("tools: MULTIEDIT\nallowedWriteDirectories: [out]\n"),
        Default
    );
    assert_eq!(
        mode("tools: Write\nallowed_write_directories: [out]\nreadonly: true\n"),
        Readonly
    );
    assert_eq!(
        mode("tools: Write\nallowed_write_directories: [out]\nreadonly: false\n"),
        Default
    );
    assert_eq!(
        mode("tools: Write\nallowed_write_directories: [out]\nPermissionMode: bypassPermissions\n"),
        Default,
        "bypassPermissions grants nothing beyond the dirs"
    );
    assert_eq!(
        mode("tools: Write\nallowed_write_directories: [out]\ndisallowedTools: Write\n"),
        Readonly
    );
    assert_eq!(
        mode("tools: Write\nallowed_write_directories: []\n"),
        Readonly,
        "an empty list writes nothing"
    );
    // A typo in the mode narrows instead of widening.
    let typo = parse("tools: Write\nallowed_write_directories: [out]\npermissionMode: paln\n");
    assert_eq!(typo.permission_mode, Readonly);
    warning(
        &typo.warnings,
        &["unknown permissionMode `paln`", "did you mean `plan`?"],
    );
    // A typo in a key is ignored, with a suggestion.
    let key = parse("tool: Read\n");
    warning(
        &key.warnings,
        &["`tool` is ignored", "did you mean `tools`?"],
    );
    // Never the whole workspace.
    let dirs = parse("tools: Edit\nallowed_write_directories:\n  - out\n  - ./reports/\n");
    assert_eq!(
        dirs.allowed_write_directories,
        Some(vec!["out".to_owned(), "reports".to_owned()])
    );
}

#[test]
fn bad_definitions_have_located_snapshot_tested_errors() {
    let dir = fixtures().join("bad");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "expected at least 10 bad definitions, found {}",
        cases.len()
    );
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let shown = Path::new("fixtures/definitions/bad").join(&name);
        let text = std::fs::read_to_string(&case).unwrap();
        let err =
            Definition::parse(&shown, &text).expect_err(&format!("{name} should be rejected"));
        let rendered = format!("{err}\n");
        assert!(
            rendered.contains(&format!("--> fixtures/definitions/bad/{name}")),
            "{name}: the message does not name the file:\n{rendered}"
        );
        assert!(
            rendered.contains("= help:"),
            "{name}: the message does not say how to fix it:\n{rendered}"
        );
        if name != "empty.md" {
            assert!(err.line > 0, "{name}: no line in\n{rendered}");
        }
        assert_snapshot(&case.with_extension("expected"), &rendered);
    }
}

/// A registry holding a copy of the prompt-agent bundle (pointing at the
/// real component) and some definitions.
struct Registry {
    dir: tempfile::TempDir,
}

impl Registry {
    fn new() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry { dir };
        registry.add_prompt_agent();
        registry
    }

    fn empty() -> Registry {
        Registry {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn add_prompt_agent(&self) {
        let source = plugin("prompt-agent").join("subagent.toml");
        let component = plugin("prompt-agent")
            .join("../target/wasm32-wasip2/release/prompt_agent.wasm")
            .canonicalize()
            .expect("tests/build.rs builds plugins/prompt-agent");
        let text: String = std::fs::read_to_string(source)
            .unwrap()
            .lines()
            .map(|line| {
                if line.starts_with("component =") {
                    format!("component = {:?}\n", component.display().to_string())
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        std::fs::create_dir_all(self.path().join("prompt-agent")).unwrap();
        std::fs::write(self.path().join("prompt-agent/subagent.toml"), text).unwrap();
    }

    fn add(&self, file: &str, text: &str) -> PathBuf {
        let path = self.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn copy(&self, fixture: &str) -> PathBuf {
        let name = Path::new(fixture).file_name().unwrap().to_str().unwrap();
        self.add(
            name,
            &std::fs::read_to_string(fixtures().join(fixture)).unwrap(),
        )
    }

    fn registries(&self) -> Registries {
        Registries {
            dirs: vec![self.path().to_owned()],
        }
    }
}

#[test]
fn registries_list_and_resolve_markdown_definitions() {
    let registry = Registry::new();
    registry.copy("claude/code-reviewer.md");
    registry.copy("claude/doc-writer.md");
    registry.add("broken.md", "no frontmatter here\n");
    registry.add("notes.txt", "not a definition\n");
    let registries = registry.registries();

    let entries = registries.entries();
    let names: Vec<String> = entries.iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        ["broken", "code-reviewer", "doc-writer", "prompt-agent"]
    );
    let broken = entries[0].bundle.as_ref().unwrap_err().to_string();
    assert!(broken.contains("no frontmatter"), "{broken}");
    assert_eq!(entries[1].dir, registry.path().join("code-reviewer.md"));

    let reviewer = registries.resolve_name("code-reviewer").unwrap();
    let runner = registries.resolve_name("prompt-agent").unwrap();
    assert_eq!(reviewer.manifest.component, runner.manifest.component);
    assert!(reviewer.manifest.component.ends_with("prompt_agent.wasm"));
    assert_eq!(reviewer.manifest.limits, runner.manifest.limits);
    assert_eq!(reviewer.manifest.tools, [Tool::Model]);
    assert_eq!(reviewer.warnings.len(), 2);
    assert!(
        reviewer
            .system_prompt
            .as_deref()
            .unwrap()
            .starts_with("You are a senior code reviewer")
    );

    // By path, too: `resolve` and `Bundle::open` (which finds prompt-agent
    // beside the definition).
    let path = registry.path().join("doc-writer.md");
    let by_path = registries.resolve(path.to_str().unwrap()).unwrap();
    assert_eq!(by_path.name(), "doc-writer");
    assert_eq!(by_path.manifest.permission_mode, PermissionMode::Default);
    assert_eq!(Bundle::open(&path).unwrap().name(), "doc-writer");

    // A typo gets a suggestion that includes the definitions.
    let err = registries
        .resolve_name("code-reviwer")
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `code-reviewer`?"), "{err}");
}

#[test]
fn a_definition_outside_the_registries_uses_the_registries_prompt_agent() {
    let registry = Registry::new();
    let elsewhere = Registry::empty();
    let path = elsewhere.add(
        "verifier.md",
        &std::fs::read_to_string(fixtures().join("cursor/verifier.md")).unwrap(),
    );
    let bundle = registry
        .registries()
        .resolve(path.to_str().unwrap())
        .unwrap();
    assert_eq!(bundle.name(), "verifier");
    assert!(bundle.manifest.component.ends_with("prompt_agent.wasm"));
}

#[test]
fn standard_registries_include_the_coding_agents_project_dirs() {
    let workspace = tempfile::tempdir().unwrap();
    let registries = Registries::standard(&[PathBuf::from("/extra")], workspace.path());
    let ws = workspace.path();
    assert_eq!(
        registries.dirs[..5],
        [
            PathBuf::from("/extra"),
            ws.join(".subagents"),
            ws.join(".claude/agents"),
            ws.join(".cursor/agents"),
            ws.join(".qwen/agents"),
        ]
    );

    // A Claude Code project definition, run by the prompt-agent of --agents.
    let runner = Registry::new();
    let claude = ws.join(".claude/agents");
    std::fs::create_dir_all(&claude).unwrap();
    std::fs::copy(
        fixtures().join("claude/planner.md"),
        claude.join("planner.md"),
    )
    .unwrap();
    let qwen = ws.join(".qwen/agents");
    std::fs::create_dir_all(&qwen).unwrap();
    // Shadowed by the Claude Code one of the same name.
    std::fs::write(
        qwen.join("planner.md"),
        "---\nname: planner\ndescription: the qwen one\n---\n",
    )
    .unwrap();
    let registries = Registries::standard(&[runner.path().to_owned()], ws);
    let planner = registries.resolve_name("planner").unwrap();
    assert!(planner.manifest.description.starts_with("Plans a change"));
    let shadowed: Vec<bool> = registries
        .entries()
        .iter()
        .filter(|e| e.name() == "planner")
        .map(|e| e.shadowed)
        .collect();
    assert_eq!(shadowed, [false, true]);
}

#[test]
fn without_prompt_agent_a_definition_says_how_to_get_one() {
    let registry = Registry::empty();
    let path = registry.copy("claude/code-reviewer.md");
    let registries = registry.registries();

    let err = registries.resolve_name("code-reviewer").unwrap_err();
    assert!(matches!(err, BundleError::NoRunner { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "subagent `code-reviewer` ({}) is a Markdown definition, run by the `prompt-agent` component, but no registry has a `prompt-agent` bundle (searched: {})",
            path.display(),
            registry.path().display()
        )),
        "{text}"
    );
    assert!(
        text.ends_with(
            "= help: the built-in one is off (`--no-builtins`) or its cache directory cannot be written (`--cache-dir DIR`); or build plugins/prompt-agent (`subagent build plugins/prompt-agent`) and put it in a registry, e.g. --agents plugins"
        ),
        "{text}"
    );
    // Listed under its own name, broken.
    let entries = registries.entries();
    assert_eq!(entries[0].name(), "code-reviewer");
    assert!(entries[0].bundle.is_err());

    // A broken prompt-agent is named as such.
    registry.add("prompt-agent/subagent.toml", "name = \"prompt-agent\"\n");
    let text = registries
        .resolve_name("code-reviewer")
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("but the `prompt-agent` bundle at ")
            && text.contains("is broken: missing field `description`")
            && text.contains("= help: fix it (`subagent validate "),
        "{text}"
    );
}

#[test]
fn example_definitions_load_cleanly_with_the_plugins_prompt_agent() {
    let examples = repo_root().join("examples").join("agents");
    let registries = Registries {
        dirs: vec![examples.clone(), repo_root().join("plugins")],
    };
    let entries: Vec<_> = registries
        .entries()
        .into_iter()
        .filter(|e| e.registry == examples)
        .collect();
    assert!(
        (2..=3).contains(&entries.len()),
        "{} example definitions",
        entries.len()
    );
    for entry in entries {
        let bundle = entry
            .bundle
            .unwrap_or_else(|e| panic!("{}: {e}", entry.dir.display()));
        assert!(
            bundle.warnings.is_empty(),
            "{}: {:#?}",
            entry.dir.display(),
            bundle.warnings
        );
        assert!(bundle.system_prompt.is_some(), "{}", entry.dir.display());
    }
}

#[test]
fn validate_a_definition_shows_its_effective_permissions() {
    let registry = Registry::new();
    let fixture = Fixture::new();
    let ws = path(&fixture.workspace);
    let writer = registry.copy("claude/doc-writer.md");
    let reviewer = registry.copy("claude/code-reviewer.md");
    let agents = path(registry.path());

    let out = subagent(&[
        "validate",
        path(&writer),
        "--agents",
        agents,
        "--workspace",
        ws,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("✓ subagent `doc-writer` is valid\n"),
        "{text}"
    );
    assert!(
        text.contains("  permissions  default: writes docs/generated/\n"),
        "{text}"
    );
    assert!(text.contains("  tools        model\n"), "{text}");
    assert!(
        text.contains("  model        inherit (the parent task's, at launch)\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("  manifest     {}\n", writer.display())),
        "{text}"
    );
    assert!(text.contains("prompt_agent.wasm ("), "{text}");
    assert!(text.contains("subagent:plugin/model@"), "{text}");

    // By name, as JSON.
    let json = subagent(&[
        "validate",
        "code-reviewer",
        "--agents",
        agents,
        "--workspace",
        ws,
        "--json",
    ]);
    assert_eq!(code(&json), 0, "{}", stderr(&json));
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(report["name"], "code-reviewer");
    assert_eq!(report["permissions"]["mode"], "readonly");
    assert_eq!(report["permissions"]["writes"]["kind"], "none");
    assert_eq!(report["permissions"]["tools"], serde_json::json!(["model"]));
    assert_eq!(report["model"], "sonnet");
    assert_eq!(report["manifest"], reviewer.to_str().unwrap());

    // No prompt-agent anywhere (built-ins off): exit 2, saying how to get one.
    let lonely = Registry::empty();
    let def = lonely.copy("claude/code-reviewer.md");
    let out = subagent(&["--no-builtins", "validate", path(&def), "--workspace", ws]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("subagent build plugins/prompt-agent")
            && stderr(&out).contains("--agents plugins"),
        "{}",
        stderr(&out)
    );

    // A malformed definition: the located error.
    let bad = lonely.add(
        "bad.md",
        "---\nname: bad\ndescription: x\nmodel:sonnet\n---\n",
    );
    let out = subagent(&[
        "validate",
        path(&bad),
        "--agents",
        agents,
        "--workspace",
        ws,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("expected a space after `:`")
            && stderr(&out).contains(&format!("--> {}:4:7", bad.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn list_shows_markdown_definitions() {
    let registry = Registry::new();
    registry.copy("claude/doc-writer.md");
    registry.copy("cursor/verifier.md");
    let fixture = Fixture::new();
    let out = subagent(&[
        "list",
        "--agents",
        path(registry.path()),
        "--workspace",
        path(&fixture.workspace),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {rows:#?}"))
    };
    assert_eq!(row("doc-writer")["permission_mode"], "default");
    assert_eq!(row("verifier")["permission_mode"], "readonly");
    assert_eq!(
        row("verifier")["path"],
        registry.path().join("verifier.md").to_str().unwrap()
    );
}

/// An OpenAI chat-completions answer calling `calls`.
fn reply(calls: &[(&str, serde_json::Value)]) -> Canned {
    let tool_calls: Vec<serde_json::Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| json!({"id": format!("call_{i}"), "type": "function", "function": {"name": name, "arguments": args.to_string()}}))
        .collect();
    Canned::openai_chat(
        "scripted",
        json!({"role": "assistant", "content": "", "tool_calls": tool_calls}),
        "tool_calls",
        (10, 5),
    )
}

#[test]
fn a_definition_runs_with_its_prompt_model_and_write_dirs() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(vec![
        reply(&[(
            "write_file",
            json!({"path": "src/lib.rs", "content": "pwned"}),
        )]),
        reply(&[(
            "write_file",
            json!({"path": "docs/generated/lib.md", "content": "# lib\n"}),
        )]),
        reply(&[("finish", json!({"summary": "Documented src/lib.rs."}))]),
        // The readonly reviewer.
        reply(&[("finish", json!({"summary": "Nothing to fix."}))]),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "default_model = \"other\"\n\n[models.other]\nprovider = \"openai\"\nbase_url = \"{url}/v1\"\nmodel = \"scripted-default\"\nmax_retries = 0\n\n[models.sonnet]\nprovider = \"openai\"\nbase_url = \"{url}/v1\"\nmodel = \"scripted-sonnet\"\nmax_retries = 0\n",
            url = server.url()
        ),
    )
    .unwrap();
    let registry = Registry::new();
    let writer = registry.add(
        "lib-documenter.md",
        "---\nname: lib-documenter\ndescription: Documents a module.\ntools: Read, Grep, Write\nmodel: sonnet\nallowed_write_directories: [docs/generated]\n---\n\nYou document Rust modules in docs/generated/.\n",
    );
    let fixture = Fixture::new();
    let run = |def: &Path, task: &str| {
        subagent(&[
            "--config",
            path(&config),
            "--agents",
            path(registry.path()),
            "run",
            path(def),
            task,
            "--workspace",
            path(&fixture.workspace),
            "--json",
        ])
    };

    let out = run(&writer, "Document src/lib.rs.");
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["summary"], "Documented src/lib.rs.");
    assert_eq!(report["model"], "sonnet");
    assert_eq!(report["permissions"]["mode"], "default");
    let created: Vec<&str> = report["files"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["docs/generated/lib.md"]);
    assert_eq!(
        std::fs::read_to_string(fixture.workspace.join("src/lib.rs")).unwrap(),
        "// TODO: write the library\nfn main() {}\n"
    );

    let reviewer = registry.copy("claude/code-reviewer.md");
    let out = run(&reviewer, "Review src/lib.rs.");
    assert_eq!(code(&out), 0, "{}\n{}", stdout(&out), stderr(&out));

    let requests = server.received();
    assert_eq!(requests.len(), 4);
    let first = requests[0].json();
    assert_eq!(first["model"], "scripted-sonnet");
    let system = first["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.ends_with("You document Rust modules in docs/generated/."),
        "{system}"
    );
    let tools = |request: &serde_json::Value| -> Vec<String> {
        request["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        tools(&first),
        ["list_dir", "read_file", "search", "write_file", "finish"]
    );
    let refusal = requests[1].json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(refusal.starts_with("permission denied"), "{refusal}");
    // The readonly reviewer is not offered write_file at all.
    let review = requests[3].json();
    assert_eq!(review["model"], "scripted-sonnet");
    assert_eq!(
        tools(&review),
        ["list_dir", "read_file", "search", "finish"]
    );
}

/// Real-world definition shapes (tests/fixtures/definitions/real-world/,
/// each saying in a `# shape:` comment what it stands for), loaded as a run
/// loads them: from a registry that holds prompt-agent, then planned as
/// `validate` plans them. What each becomes is compared with
/// tests/fixtures/definitions/real-world.snapshot; UPDATE_SNAPSHOTS=1
/// rewrites it (review the diff: a wrong mapping recorded there is a bug).
#[test]
fn real_world_definition_shapes_load_as_snapshotted() {
    use std::fmt::Write as _;

    let dir = fixtures().join("real-world");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 25,
        "expected at least 25 real-world shapes, found {}",
        files.len()
    );
    let registry = Registry::new();
    for file in &files {
        // Byte for byte: CRLF and BOM included.
        std::fs::copy(file, registry.path().join(file.file_name().unwrap())).unwrap();
    }
    let entries = registry.registries().entries();
    let workspace = tempfile::tempdir().unwrap();
    let mut snapshot = String::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        let shape = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("# shape: "))
            .unwrap_or_else(|| panic!("{name}: no `# shape:` comment saying what it stands for"));
        let entry = entries
            .iter()
            .find(|e| e.dir == registry.path().join(&name))
            .unwrap_or_else(|| panic!("{name} is not listed"));
        assert!(entry.duplicates.is_empty() && !entry.shadowed, "{name}");
        let bundle = entry
            .bundle
            .as_ref()
            .unwrap_or_else(|e| panic!("{name} is refused:\n{e}"));
        let definition = Definition::load(&entry.dir).unwrap();
        let plan = subagent_host::plan::plan(
            bundle,
            workspace.path(),
            &subagent_host::plan::PlanRequest::default(),
            false,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let m = &bundle.manifest;
        assert!(m.component.ends_with("prompt_agent.wasm"), "{name}");
        assert_eq!(m.tools, [Tool::Model], "{name}");

        writeln!(snapshot, "== {name}").unwrap();
        writeln!(snapshot, "shape        {shape}").unwrap();
        writeln!(snapshot, "name         {}", m.name).unwrap();
        writeln!(snapshot, "description  {}", m.description).unwrap();
        writeln!(
            snapshot,
            "model        {}",
            m.model.as_deref().unwrap_or("-")
        )
        .unwrap();
        let listed = match &definition.tools {
            None => "- (no `tools`)".to_owned(),
            Some(tools) if tools.is_empty() => "[] (none)".to_owned(),
            Some(tools) => tools.join(" | "),
        };
        writeln!(snapshot, "listed tools {listed}").unwrap();
        let tools: Vec<&str> = plan.permissions.tools.iter().map(|t| t.name()).collect();
        writeln!(snapshot, "tools        {}", tools.join(", ")).unwrap();
        writeln!(
            snapshot,
            "permissions  {}: writes {}",
            plan.permissions.mode, plan.permissions.writes
        )
        .unwrap();
        for warning in &bundle.warnings {
            writeln!(
                snapshot,
                "warning      line {}: {}",
                warning.line, warning.message
            )
            .unwrap();
        }
        let prompt = bundle.system_prompt.as_deref().unwrap_or("-");
        writeln!(
            snapshot,
            "prompt       {}",
            prompt.lines().next().unwrap_or("")
        )
        .unwrap();
        writeln!(snapshot).unwrap();
    }
    assert_snapshot(&fixtures().join("real-world.snapshot"), &snapshot);
}
