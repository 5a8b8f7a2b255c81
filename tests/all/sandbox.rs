//! Hostile guests try to get out of the sandbox; every attempt fails and
//! nothing outside the allowed set changes.

use subagent_host::plan::{PlanError, PlanRequest, plan};
use subagent_host::{SandboxError, TaskStatus};

use crate::helpers::*;

const WRITES_OUT: &str = "permission_mode = \"default\"\nallowed_write_directories = [\"out\"]";

/// Run the escape guest with `attack` and return its attempts, checking that
/// nothing outside `out/` changed.
async fn attack(manifest: &str, attack: &str) -> Vec<Attempt> {
    let fixture = Fixture::new();
    let before = fixture.state_except(&["out"]);
    let b = bundle(&guest("escape"), manifest);
    let result = run(&b.bundle, &fixture.workspace, attack).await;
    assert_eq!(result.status, TaskStatus::Completed, "{result:#?}");
    assert_eq!(
        fixture.state_except(&["out"]),
        before,
        "something outside out/ changed"
    );
    attempts(&result)
}

#[tokio::test]
async fn readonly_workspace_cannot_be_written() {
    for manifest in ["", WRITES_OUT] {
        let attempts = attack(manifest, "write-readonly").await;
        assert_all_failed(&attempts);
        // Writes into a read-only preopen are refused as such.
        let write = attempts
            .iter()
            .find(|a| a.op == "write /workspace/new.txt")
            .unwrap();
        assert_eq!(write.kind, "PermissionDenied", "{write:?}");
    }
}

#[tokio::test]
async fn dotdot_traversal_fails() {
    assert_all_failed(&attack(WRITES_OUT, "dotdot").await);
}

#[tokio::test]
async fn absolute_paths_outside_the_workspace_fail() {
    let attempts = attack(WRITES_OUT, "absolute").await;
    assert_all_failed(&attempts);
    assert!(!std::path::Path::new("/tmp/pwned.txt").exists());
    let passwd = attempts
        .iter()
        .find(|a| a.op == "read /etc/passwd")
        .unwrap();
    assert_eq!(
        passwd.kind, "NotFound",
        "paths outside every preopen do not exist for the guest"
    );
}

#[tokio::test]
async fn symlinks_pointing_out_fail() {
    let fixture = Fixture::new();
    let lib_before = std::fs::read_to_string(fixture.workspace.join("src/lib.rs")).unwrap();
    let attempts = attack(WRITES_OUT, "symlinks").await;
    assert_all_failed(&attempts);
    assert_eq!(
        std::fs::read_to_string(fixture.workspace.join("src/lib.rs")).unwrap(),
        lib_before
    );
}

#[tokio::test]
async fn created_symlinks_cannot_escape() {
    let fixture = Fixture::new();
    let before = fixture.state_except(&["out"]);
    let b = bundle(&guest("escape"), WRITES_OUT);
    let result = run(&b.bundle, &fixture.workspace, "create-symlinks").await;
    assert_all_failed(&attempts(&result));
    assert_eq!(fixture.state_except(&["out"]), before);
    assert_eq!(
        std::fs::read_to_string(fixture.workspace.join("readme.txt")).unwrap(),
        "original readme\n"
    );
}

#[tokio::test]
async fn hard_links_cannot_escape() {
    assert_all_failed(&attack(WRITES_OUT, "hardlinks").await);
}

#[tokio::test]
async fn renames_across_the_boundary_fail() {
    assert_all_failed(&attack(WRITES_OUT, "rename").await);
}

#[tokio::test]
async fn guest_sees_no_environment_or_arguments() {
    let fixture = Fixture::new();
    let b = bundle(&guest("escape"), "");
    assert!(
        std::env::var_os("PATH").is_some(),
        "the host itself has an environment"
    );
    let result = run(&b.bundle, &fixture.workspace, "env").await;
    let data = result.data.clone().unwrap();
    assert_eq!(data["vars"], serde_json::json!([]), "{data}");
    assert_eq!(data["args"], serde_json::json!([]), "{data}");
    assert_all_failed(&attempts(&result));
}

#[tokio::test]
async fn guest_cannot_open_sockets() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let fixture = Fixture::new();
    let b = bundle(&guest("escape"), "");
    let result = run(&b.bundle, &fixture.workspace, &format!("network {addr}")).await;
    assert_all_failed(&attempts(&result));
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the guest reached the host: {accepted:?}"
    );
}

#[tokio::test]
async fn allowed_writes_succeed_and_file_results_are_observed() {
    let fixture = Fixture::new();
    let before = fixture.state_except(&["out"]);
    let b = bundle(&guest("escape"), WRITES_OUT);
    let result = run(&b.bundle, &fixture.workspace, "allowed").await;
    let attempts = attempts(&result);
    let failed: Vec<&Attempt> = attempts.iter().filter(|a| !a.ok).collect();
    assert!(failed.is_empty(), "allowed operations failed: {failed:#?}");
    assert_eq!(fixture.state_except(&["out"]), before);

    let paths = |changes: &[subagent_host::sandbox::FileChange]| {
        changes.iter().map(|c| c.path.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        paths(&result.files.created),
        ["out/created.txt", "out/sub", "out/sub/deep.txt"]
    );
    assert_eq!(paths(&result.files.modified), ["out/existing.txt"]);
    assert_eq!(paths(&result.files.deleted), ["out/gone.txt"]);
    assert_eq!(
        std::fs::read_to_string(fixture.workspace.join("out/existing.txt")).unwrap(),
        "pwneding\n"
    );
}

#[tokio::test]
async fn readonly_run_reports_no_file_results() {
    let fixture = Fixture::new();
    let b = bundle(&guest("escape"), "");
    let result = run(&b.bundle, &fixture.workspace, "write-readonly").await;
    assert!(result.files.is_empty(), "{:?}", result.files);
}

#[tokio::test]
async fn task_sees_its_writable_dirs_and_prompt() {
    let fixture = Fixture::new();
    let b = bundle(
        &guest("echo"),
        "permission_mode = \"default\"\nallowed_write_directories = [\"out\", \"docs/gen\"]\nprompt = \"be brief\"",
    );
    let result = run(&b.bundle, &fixture.workspace, "task").await;
    let data = result.data.unwrap();
    assert_eq!(
        data["writable_dirs"],
        serde_json::json!(["/workspace/docs/gen", "/workspace/out"])
    );
    assert_eq!(data["workspace"], "/workspace");
    assert_eq!(data["prompt"], "task");
    assert_eq!(data["system_prompt"], "be brief");
    assert!(
        fixture.workspace.join("docs/gen").is_dir(),
        "declared write dirs are created"
    );
}

#[test]
fn write_dir_through_a_symlink_out_is_refused_before_the_run() {
    let fixture = Fixture::new();
    // `link_rel` is a symlink to ../outside.
    let b = bundle(
        &guest("escape"),
        "permission_mode = \"default\"\nallowed_write_directories = [\"link_rel\"]",
    );
    let err = plan(&b.bundle, &fixture.workspace, &PlanRequest::default(), true).unwrap_err();
    assert!(
        matches!(err, PlanError::Sandbox(SandboxError::Symlink { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("`link_rel` is a symlink"), "{err}");
    let nested = bundle(
        &guest("escape"),
        "permission_mode = \"default\"\nallowed_write_directories = [\"link_abs/sub\"]",
    );
    assert!(
        plan(
            &nested.bundle,
            &fixture.workspace,
            &PlanRequest::default(),
            true
        )
        .is_err()
    );
    assert!(
        !fixture.outside.join("sub").exists(),
        "nothing was created outside"
    );
}

#[test]
fn launch_may_narrow_but_never_widen_write_dirs() {
    let fixture = Fixture::new();
    let b = bundle(&guest("escape"), WRITES_OUT);
    let narrow = PlanRequest {
        write: Some(vec!["out/sub".into()]),
        ..PlanRequest::default()
    };
    let plan_ok = plan(&b.bundle, &fixture.workspace, &narrow, false).unwrap();
    assert_eq!(
        plan_ok.sandbox.writes().guest_paths(),
        ["/workspace/out/sub"]
    );

    let wide = PlanRequest {
        write: Some(vec!["src".into()]),
        ..PlanRequest::default()
    };
    let err = plan(&b.bundle, &fixture.workspace, &wide, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "subagent `test-guest` may not write `src/`: it may write only out/ (allowed_write_directories)"
    );

    let readonly = bundle(&guest("escape"), "");
    let err = plan(&readonly.bundle, &fixture.workspace, &narrow, false).unwrap_err();
    assert!(
        err.to_string().contains("permission_mode = \"readonly\""),
        "{err}"
    );
}
