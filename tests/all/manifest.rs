//! Bad manifests fail with messages that name the file, line and column and
//! say how to fix it. The messages are part of the interface: each is
//! snapshot-tested against tests/fixtures/manifests/<case>.expected
//! (set UPDATE_SNAPSHOTS=1 to rewrite them after an intended change).

use std::path::{Path, PathBuf};

use subagent_host::Manifest;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("manifests")
}

/// Compare `actual` with the snapshot `name`, or write it when asked to.
pub fn assert_snapshot(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1 to create it, then review it",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "snapshot {} differs (UPDATE_SNAPSHOTS=1 rewrites it)",
        path.display()
    );
}

#[test]
fn bad_manifests_have_located_snapshot_tested_errors() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "expected at least 10 bad manifests, found {}",
        cases.len()
    );
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        // A stable, relative path in the messages.
        let shown = Path::new("fixtures/manifests").join(&name);
        let text = std::fs::read_to_string(&case).unwrap();
        let err = Manifest::parse(&shown, &text).expect_err(&format!("{name} should be rejected"));
        let rendered = format!("{err}\n");
        assert!(
            rendered.contains(&format!("--> fixtures/manifests/{name}")),
            "{name}: the message does not name the file:\n{rendered}"
        );
        assert!(
            rendered.contains("= help:"),
            "{name}: the message does not say how to fix it:\n{rendered}"
        );
        assert_snapshot(&case.with_extension("expected"), &rendered);
    }
}

#[test]
fn unknown_field_points_at_its_line_and_suggests_the_field() {
    let text =
        "name = \"x\"\ndescription = \"d\"\ncomponent = \"x.wasm\"\npermision_mode = \"default\"\n";
    let err = Manifest::parse(Path::new("subagent.toml"), text).unwrap_err();
    assert_eq!((err.line, err.column), (4, 1));
    assert_eq!(err.help.as_deref(), Some("did you mean `permission_mode`?"));
}

#[test]
fn every_example_plugin_manifest_is_valid() {
    let plugins = crate::helpers::repo_root().join("plugins");
    let mut count = 0;
    for entry in std::fs::read_dir(plugins).unwrap().flatten() {
        let manifest = entry.path().join("subagent.toml");
        if manifest.is_file() {
            Manifest::load(&manifest).unwrap_or_else(|e| panic!("{e}"));
            count += 1;
        }
    }
    assert!(count >= 2, "found {count} plugin bundles");
}
