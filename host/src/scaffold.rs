//! `subagent new`: the files of a new bundle that builds and runs as written,
//! in Rust, Python or JavaScript.
//!
//! A bundle is self-contained: next to the template it gets this binary's own
//! copy of the WIT contract (`wit/`) and of the language's SDK, so it builds
//! offline with only the language's toolchain (cargo with the wasm32-wasip2
//! target; componentize-py; componentize-js from npm). The copies are the
//! files of this repository, embedded at build time.

use std::path::{Path, PathBuf};

/// The languages a bundle can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    #[value(alias = "javascript")]
    Js,
}

impl Lang {
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

/// One file of the contract or an SDK: its path and text.
type Embedded = (&'static str, &'static str);

/// The WIT contract, `wit/` (checked against the directory by a test).
const WIT: [Embedded; 5] = [
    ("host.wit", include_str!("../../wit/host.wit")),
    ("model.wit", include_str!("../../wit/model.wit")),
    ("subagents.wit", include_str!("../../wit/subagents.wit")),
    ("types.wit", include_str!("../../wit/types.wit")),
    ("world.wit", include_str!("../../wit/world.wit")),
];

/// The Rust SDK's sources, `plugins/sdk/src/`.
const RUST_SDK: [Embedded; 3] = [
    ("lib.rs", include_str!("../../plugins/sdk/src/lib.rs")),
    (
        "testing.rs",
        include_str!("../../plugins/sdk/src/testing.rs"),
    ),
    ("walk.rs", include_str!("../../plugins/sdk/src/walk.rs")),
];
const RUST_SDK_MANIFEST: &str = include_str!("../../plugins/sdk/Cargo.toml");
const PLUGINS_MANIFEST: &str = include_str!("../../plugins/Cargo.toml");
/// Where the SDK's bindings find the contract, in this repository and in a
/// new bundle (`sdk/wit`).
const SDK_WIT_PATH: (&str, &str) = ("path: \"../../wit\"", "path: \"wit\"");

const RUST_LIB: &str = r#"//! {{name}}: counts the workspace's files and lines by extension.
//! Edit `run` to do your subagent's work; the task's prompt is `task.prompt`.
use std::collections::BTreeMap;
use std::path::Path;

use subagent_sdk::{Outcome, RunError, Subagent, Task, WORKSPACE};

struct Agent;

impl Subagent for Agent {
    fn run(task: Task) -> Result<Outcome, RunError> {
        subagent_sdk::log::info(&format!("task {}: {}", task.id, task.prompt));
        let mut lines: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        count(Path::new(WORKSPACE), &mut lines)?;
        let files: u64 = lines.values().map(|(f, _)| f).sum();
        subagent_sdk::progress::note(format!("counted {files} files"));
        let data = serde_json::json!(lines
            .iter()
            .map(|(ext, (files, lines))| (ext.clone(), serde_json::json!({"files": files, "lines": lines})))
            .collect::<serde_json::Map<_, _>>());
        Ok(Outcome::summary(format!("{files} files in {} kinds", lines.len())).with_data(data))
    }
}

/// Files and lines per extension under `dir`.
fn count(dir: &Path, out: &mut BTreeMap<String, (u64, u64)>) -> Result<(), RunError> {
    for entry in std::fs::read_dir(dir)? {
        if subagent_sdk::cancelled() {
            return Err(RunError::Cancelled);
        }
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            count(&path, out)?;
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            let ext = path.extension().map_or("(none)".into(), |e| e.to_string_lossy().into_owned());
            let slot = out.entry(ext).or_default();
            slot.0 += 1;
            slot.1 += text.lines().count() as u64;
        }
    }
    Ok(())
}

subagent_sdk::export!(Agent);
"#;

const RUST_MANIFEST: &str = r#"name = "{{name}}"
description = "Counts the workspace's files and lines by extension."
component = "target/wasm32-wasip2/release/{{crate}}.wasm"
# `readonly` writes nothing. To write, use `default` and name the directories:
#   permission_mode = "default"
#   allowed_write_directories = ["reports"]
permission_mode = "readonly"

[build]
command = "cargo build --release --target wasm32-wasip2"
"#;

const RUST_CARGO: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
subagent-sdk = { path = "sdk" }
serde_json = "1"

# Its own workspace: the bundle builds wherever it is put.
[workspace]

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = "debuginfo"
panic = "abort"
"#;

const GITIGNORE_RUST: &str = "/target\n";

/// The JavaScript SDK (`plugins/sdk-js`): its template (with `{{name}}`),
/// its module and types, its world, and the WASI packages it vendors.
const JS_TEMPLATE: [Embedded; 3] = [
    (
        "subagent.toml",
        include_str!("../../plugins/sdk-js/template/subagent.toml"),
    ),
    (
        "app.js",
        include_str!("../../plugins/sdk-js/template/app.js"),
    ),
    (
        "package.json",
        include_str!("../../plugins/sdk-js/template/package.json"),
    ),
];
const JS_SDK: [Embedded; 2] = [
    ("index.js", include_str!("../../plugins/sdk-js/index.js")),
    (
        "index.d.ts",
        include_str!("../../plugins/sdk-js/index.d.ts"),
    ),
];
const JS_WIT: [Embedded; 4] = [
    (
        "world.wit",
        include_str!("../../plugins/sdk-js/wit/world.wit"),
    ),
    (
        "deps/clocks@0.2.12/clocks.wit",
        include_str!("../../plugins/sdk-js/wit/deps/clocks@0.2.12/clocks.wit"),
    ),
    (
        "deps/filesystem@0.2.12/filesystem.wit",
        include_str!("../../plugins/sdk-js/wit/deps/filesystem@0.2.12/filesystem.wit"),
    ),
    (
        "deps/io@0.2.12/io.wit",
        include_str!("../../plugins/sdk-js/wit/deps/io@0.2.12/io.wit"),
    ),
];
/// The Python SDK (`plugins/sdk-python`): its template (with `{{name}}`) and
/// the `subagent_sdk` package.
const PYTHON_TEMPLATE: [Embedded; 3] = [
    (
        "subagent.toml",
        include_str!("../../plugins/sdk-python/template/subagent.toml"),
    ),
    (
        "app.py",
        include_str!("../../plugins/sdk-python/template/app.py"),
    ),
    (
        ".gitignore",
        include_str!("../../plugins/sdk-python/template/.gitignore"),
    ),
];
const PYTHON_SDK: [Embedded; 8] = [
    (
        "__init__.py",
        include_str!("../../plugins/sdk-python/subagent_sdk/__init__.py"),
    ),
    (
        "_bindings.py",
        include_str!("../../plugins/sdk-python/subagent_sdk/_bindings.py"),
    ),
    (
        "_run.py",
        include_str!("../../plugins/sdk-python/subagent_sdk/_run.py"),
    ),
    (
        "children.py",
        include_str!("../../plugins/sdk-python/subagent_sdk/children.py"),
    ),
    (
        "log.py",
        include_str!("../../plugins/sdk-python/subagent_sdk/log.py"),
    ),
    (
        "messages.py",
        include_str!("../../plugins/sdk-python/subagent_sdk/messages.py"),
    ),
    (
        "model.py",
        include_str!("../../plugins/sdk-python/subagent_sdk/model.py"),
    ),
    (
        "progress.py",
        include_str!("../../plugins/sdk-python/subagent_sdk/progress.py"),
    ),
];

/// Where the JS world finds the subagent package.
const JS_PLUGIN_DEP: &str = "wit/deps/subagent-plugin@0.1.0";
const GITIGNORE_JS: &str = "/node_modules\n/target\n";

/// The files of a new `lang` bundle named `name`, as (relative path, text).
///
/// # Panics
///
/// When the embedded SDK files are not as this module expects (a test
/// checks that they are).
pub fn files(name: &str, lang: Lang) -> Vec<(PathBuf, String)> {
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
    };
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    match lang {
        Lang::Rust => {
            files.push(("subagent.toml".into(), fill(RUST_MANIFEST)));
            files.push(("Cargo.toml".into(), fill(RUST_CARGO)));
            files.push(("src/lib.rs".into(), fill(RUST_LIB)));
            files.push((".gitignore".into(), GITIGNORE_RUST.to_owned()));
            files.push(("sdk/Cargo.toml".into(), rust_sdk_manifest()));
            for (file, text) in RUST_SDK {
                let text = if file == "lib.rs" {
                    assert!(text.contains(SDK_WIT_PATH.0), "the SDK names its WIT path");
                    text.replace(SDK_WIT_PATH.0, SDK_WIT_PATH.1)
                } else {
                    text.to_owned()
                };
                files.push((Path::new("sdk/src").join(file), text));
            }
            for (file, text) in WIT {
                files.push((Path::new("sdk/wit").join(file), text.to_owned()));
            }
        }
        Lang::Js => {
            for (file, text) in JS_TEMPLATE {
                files.push((file.into(), fill(text)));
            }
            files.push((".gitignore".into(), GITIGNORE_JS.to_owned()));
            for (file, text) in JS_SDK {
                files.push((Path::new("subagent-sdk").join(file), text.to_owned()));
            }
            for (file, text) in JS_WIT {
                files.push((Path::new("wit").join(file), text.to_owned()));
            }
            for (file, text) in WIT {
                files.push((Path::new(JS_PLUGIN_DEP).join(file), text.to_owned()));
            }
        }
        Lang::Python => {
            for (file, text) in PYTHON_TEMPLATE {
                files.push((file.into(), fill(text)));
            }
            for (file, text) in PYTHON_SDK {
                files.push((Path::new("subagent_sdk").join(file), text.to_owned()));
            }
            for (file, text) in WIT {
                files.push((Path::new("wit").join(file), text.to_owned()));
            }
        }
    }
    files
}

/// The SDK's Cargo.toml with what it takes from the plugins' workspace
/// written out: it builds as a member of the bundle's own workspace.
fn rust_sdk_manifest() -> String {
    let plugins: toml::Table = PLUGINS_MANIFEST
        .parse()
        .expect("plugins/Cargo.toml is TOML");
    let workspace = &plugins["workspace"];
    let package_defaults = workspace["package"]
        .as_table()
        .expect("[workspace.package]");
    let dependencies = workspace["dependencies"]
        .as_table()
        .expect("[workspace.dependencies]");
    let mut sdk: toml::Table = RUST_SDK_MANIFEST
        .parse()
        .expect("plugins/sdk/Cargo.toml is TOML");
    let package = sdk["package"].as_table_mut().expect("[package]");
    for (key, value) in package.iter_mut() {
        if value.get("workspace").is_some() {
            *value = package_defaults[key].clone();
        }
    }
    for section in ["dependencies", "dev-dependencies"] {
        let Some(table) = sdk.get_mut(section).and_then(toml::Value::as_table_mut) else {
            continue;
        };
        for (key, value) in table.iter_mut() {
            let Some(spec) = value.as_table() else {
                continue;
            };
            if spec.get("workspace").and_then(toml::Value::as_bool) != Some(true) {
                continue;
            }
            let mut resolved = match &dependencies[key] {
                toml::Value::String(version) => {
                    let mut t = toml::Table::new();
                    t.insert("version".into(), version.clone().into());
                    t
                }
                other => other.as_table().expect("a dependency table").clone(),
            };
            for (k, v) in spec {
                if k != "workspace" {
                    resolved.insert(k.clone(), v.clone());
                }
            }
            *value = resolved.into();
        }
    }
    toml::to_string(&sdk).expect("a TOML table serializes")
}

/// Why a bundle cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error(
        "`{0}` is not a valid subagent name\n  = help: use 1 to 64 lowercase letters, digits and `-`, not starting with `-` (e.g. `line-counter`)"
    )]
    Name(String),
    #[error("{} already exists and is not empty\n  = help: choose another name or `--dir`, or remove it", .0.display())]
    Exists(PathBuf),
    #[error("cannot write the bundle in {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Write a new bundle into `dir` (which must not exist, or be empty): all
/// files or none, as they are staged beside it and moved into place.
///
/// # Errors
///
/// [`NewError`] for a bad name, a directory in use, or an I/O failure.
pub fn write(dir: &Path, name: &str, lang: Lang) -> Result<(), NewError> {
    if !crate::manifest::valid_name(name) {
        return Err(NewError::Name(name.to_owned()));
    }
    let io = |source| NewError::Io {
        dir: dir.to_owned(),
        source,
    };
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            if entries.count() > 0 {
                return Err(NewError::Exists(dir.to_owned()));
            }
            std::fs::remove_dir(dir).map_err(io)?;
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io(err)),
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io)?;
    let staging = tempfile::Builder::new()
        .prefix(".subagent-new-")
        .tempdir_in(&parent)
        .map_err(io)?;
    for (path, text) in files(name, lang) {
        let path = staging.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, text).map_err(io)?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dir).map_err(|err| {
        let _ = std::fs::remove_dir_all(&staged);
        io(err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of the files in `dir` of this repository with `ext`.
    fn listing(dir: &str, ext: &str) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
        let mut names: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(ext))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_contract_and_sdk_file_is_embedded() {
        let names =
            |files: &[Embedded]| files.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&WIT), listing("wit", ".wit"));
        assert_eq!(names(&RUST_SDK), listing("plugins/sdk/src", ".rs"));
        assert_eq!(
            names(&JS_TEMPLATE).len(),
            listing("plugins/sdk-js/template", "").len()
        );
        // The JS world and the WASI packages it vendors; the subagent package
        // is a link to wit/, which WIT covers.
        let mut wit = Vec::new();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk-js/wit");
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_symlink() {
                    continue;
                } else if path.is_dir() {
                    dirs.push(path);
                } else {
                    wit.push(path.strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
        wit.sort();
        let mut embedded = names(&JS_WIT);
        embedded.sort();
        assert_eq!(embedded, wit);
    }

    #[test]
    fn the_rust_sdk_manifest_stands_alone() {
        let text = rust_sdk_manifest();
        assert!(!text.contains("workspace = true"), "{text}");
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["package"]["name"].as_str(), Some("subagent-sdk"));
        assert!(
            table["dependencies"]["wit-bindgen"]["version"].is_str(),
            "{text}"
        );
    }

    #[test]
    fn a_bad_name_or_a_used_directory_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("x"), "Bad_Name", Lang::Rust).unwrap_err();
        assert!(err.to_string().contains("lowercase"), "{err}");
        let used = dir.path().join("used");
        std::fs::create_dir(&used).unwrap();
        std::fs::write(used.join("keep.txt"), "mine").unwrap();
        let err = write(&used, "used", Lang::Rust).unwrap_err();
        assert!(matches!(err, NewError::Exists(_)), "{err}");
        assert_eq!(
            std::fs::read_to_string(used.join("keep.txt")).unwrap(),
            "mine"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing staged is left"
        );
    }
}
