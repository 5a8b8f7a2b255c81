//! The example plugins, run from their real bundles in plugins/.

use subagent_host::plan::PlanRequest;
use subagent_host::{Bundle, ErrorKind, TaskStatus};

use crate::helpers::*;

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "src/main.rs",
            "fn main() {\n    // TODO: parse arguments\n    run();\n}\n",
        ),
        (
            "src/lib.rs",
            "pub fn run() {}\n// FIXME(ana): handle errors\n// HACK: temporary\n",
        ),
        (
            "docs/notes.md",
            "Nothing to do here.\nTODO: write the guide\n",
        ),
        ("target/debug/build.log", "TODO in build output\n"),
    ];
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[tokio::test]
async fn deep_search_finds_plain_queries_with_context() {
    let ws = workspace();
    let bundle = Bundle::open(&plugin("deep-search")).unwrap();
    let result = run(&bundle, ws.path(), "TODO").await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    let summary = result.summary.unwrap();
    assert!(
        summary.starts_with("2 matches in 2 files for `TODO`"),
        "{summary}"
    );
    assert!(
        summary.contains("docs/notes.md:2: TODO: write the guide"),
        "{summary}"
    );
    assert!(
        summary.contains("src/main.rs:2: // TODO: parse arguments"),
        "{summary}"
    );
    assert!(
        !summary.contains("target/"),
        "target/ is skipped by default: {summary}"
    );
    let findings = &result.data.unwrap()["findings"];
    assert_eq!(findings[1]["path"], "src/main.rs");
    assert_eq!(findings[1]["before"], serde_json::json!(["fn main() {"]));
    assert_eq!(findings[1]["after"], serde_json::json!(["    run();"]));
    assert!(result.files.is_empty());
}

#[tokio::test]
async fn deep_search_takes_regex_and_globs() {
    let ws = workspace();
    let bundle = Bundle::open(&plugin("deep-search")).unwrap();
    let query =
        r#"{"query": "(FIXME|HACK)\\b", "regex": true, "include": ["src/**"], "context": 0}"#;
    let result = run(&bundle, ws.path(), query).await;
    let data = result.data.unwrap();
    assert_eq!(data["total_matches"], 2, "{data}");
    assert_eq!(data["findings"][0]["line"], 2);

    let slashes = run(&bundle, ws.path(), "/fn (main|run)/").await;
    assert_eq!(slashes.data.unwrap()["total_matches"], 2);

    let bad = run(&bundle, ws.path(), r#"{"query": "(", "regex": true}"#).await;
    assert_eq!(bad.status, TaskStatus::Failed);
    assert_eq!(bad.error.unwrap().kind, ErrorKind::InvalidInput);
}

#[tokio::test]
async fn todo_report_writes_only_its_report() {
    let ws = workspace();
    let bundle = Bundle::open(&plugin("todo-report")).unwrap();
    let result = run(&bundle, ws.path(), "report the markers").await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    assert!(
        result
            .summary
            .as_deref()
            .unwrap()
            .starts_with("Wrote reports/todo.md: 4 markers"),
        "{:?}",
        result.summary
    );
    let created: Vec<&str> = result
        .files
        .created
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(
        created,
        ["reports/todo.md"],
        "the report is the only change, observed by the host"
    );
    let report = std::fs::read_to_string(ws.path().join("reports/todo.md")).unwrap();
    assert!(
        report.contains("**FIXME** handle errors") || report.contains("**FIXME**"),
        "{report}"
    );
    assert!(report.contains("src/lib.rs"), "{report}");

    // Run again: the report is modified, not created.
    std::fs::write(ws.path().join("src/extra.rs"), "// XXX: more\n").unwrap();
    let again = run(&bundle, ws.path(), "report the markers").await;
    let modified: Vec<&str> = again
        .files
        .modified
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(modified, ["reports/todo.md"]);
}

#[tokio::test]
async fn todo_report_refuses_a_readonly_run() {
    let ws = workspace();
    let bundle = Bundle::open(&plugin("todo-report")).unwrap();
    let request = PlanRequest {
        readonly: true,
        ..PlanRequest::default()
    };
    let result = run_with(&bundle, ws.path(), "report", &request).await;
    assert_eq!(result.status, TaskStatus::Failed);
    assert!(
        result
            .error
            .unwrap()
            .message
            .contains("may not write reports/todo.md")
    );
    assert!(!ws.path().join("reports").exists());
}

#[tokio::test]
async fn orchestrator_fans_out_deep_search_and_merges() {
    use subagent_host::tasks::{
        LaunchRequest, ManagerConfig, SubagentRef, TaskFilter, TaskManager,
    };
    let ws = workspace();
    // The plugins directory doubles as a registry: children are found by name.
    let config = ManagerConfig {
        agents: vec![repo_root().join("plugins")],
        ..ManagerConfig::default()
    };
    let manager = TaskManager::new(
        std::sync::Arc::new(
            subagent_host::Runtime::new(subagent_host::RuntimeConfig {
                cache_dir: Some(cache_dir()),
                ..Default::default()
            })
            .unwrap(),
        ),
        config,
    )
    .unwrap();
    let prompt = r#"{"queries": ["TODO", {"query": "FIXME|HACK", "regex": true}, {"query": "(", "regex": true}]}"#;
    let request = LaunchRequest::new(SubagentRef::Name("orchestrator".into()), prompt, ws.path());
    let (id, result) = manager.run(request).await.unwrap();
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    let data = result.data.unwrap();
    let statuses: Vec<&str> = data["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "completed", "failed"], "{data}");
    assert_eq!(data["total_matches"], 4, "{data}");
    assert_eq!(
        data["files"],
        serde_json::json!(["docs/notes.md", "src/lib.rs", "src/main.rs"])
    );
    let summary = result.summary.unwrap();
    assert!(
        summary.starts_with("3 searches, 4 matches in 3 files; 1 did not complete"),
        "{summary}"
    );
    let children = manager.list(&TaskFilter {
        parent: Some(id),
        ..TaskFilter::default()
    });
    assert_eq!(children.len(), 3);
    assert!(
        children.iter().all(|c| c.subagent == "deep-search"
            && c.permissions.writes == subagent_host::WriteSet::None)
    );
}
