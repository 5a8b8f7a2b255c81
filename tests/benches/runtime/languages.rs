//! What a subagent's language costs (issue 12): the Python and JavaScript
//! examples (`plugins/py-line-stats`, componentize-py; `plugins/js-loc`,
//! componentize-js) next to the Rust `hello`, in one run:
//!
//! - **cold compile**: `Runtime::load` with an empty artifact cache (read,
//!   check imports, hash, compile, store);
//! - **cached run**: a whole `subagent run` process over a warm cache, on a
//!   small workspace (start, load the compiled artifact, instantiate, run,
//!   record), as a user runs it the second time.
//!
//! The Python and JavaScript components are built first, with the tools the
//! tests install (tests/sdks/{python,js}/setup.sh) and `subagent build`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use subagent_host::Bundle;

use super::{Row, Samples, cold_compile, print_table};

/// One language's example: its bundle and the tool directory its build needs.
struct Example {
    language: &'static str,
    bundle: PathBuf,
    /// Put first on PATH for the build (None: nothing to build here).
    tools: Option<PathBuf>,
    prompt: &'static str,
}

pub struct Languages {
    /// (language, component size, cold compile, cached run)
    rows: Vec<(&'static str, u64, Samples, Samples)>,
}

fn examples() -> Vec<Example> {
    let root = subagent_tests::repo_root();
    vec![
        Example {
            language: "Rust (hello)",
            bundle: subagent_tests::plugin("hello"),
            tools: None,
            prompt: "bench",
        },
        Example {
            language: "Python (py-line-stats)",
            bundle: root.join("plugins/py-line-stats"),
            tools: Some(root.join("target/sdk-python/venv/bin")),
            prompt: ".",
        },
        Example {
            language: "JavaScript (js-loc)",
            bundle: root.join("plugins/js-loc"),
            tools: Some(root.join("target/sdk-js/node_modules/.bin")),
            prompt: ".",
        },
    ]
}

fn setup(script: &str) {
    let script = subagent_tests::repo_root().join(script);
    let status = Command::new("sh")
        .arg(&script)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(status.success(), "{} failed", script.display());
}

fn subagent(args: &[&std::ffi::OsStr], tools: Option<&Path>, cache: &Path) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_subagent-under-test"));
    cmd.args(args)
        .env("SUBAGENT_CACHE_DIR", cache)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env("XDG_STATE_HOME", cache.join("state"));
    if let Some(dir) = tools {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_owned()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    cmd.output().expect("subagent runs")
}

pub fn measure(scratch: &Path, cold: usize, runs: usize) -> Languages {
    setup("tests/sdks/python/setup.sh");
    setup("tests/sdks/js/setup.sh");
    let workspace = scratch.join("languages-ws");
    std::fs::create_dir_all(workspace.join("src")).unwrap();
    std::fs::write(
        workspace.join("src/main.rs"),
        "fn main() {\n    // TODO\n}\n",
    )
    .unwrap();
    std::fs::write(workspace.join("README.md"), "# demo\n").unwrap();
    let mut rows = Vec::new();
    for example in examples() {
        let cache = scratch.join(format!("languages-cache-{}", rows.len()));
        std::fs::create_dir_all(&cache).unwrap();
        if let Some(tools) = &example.tools {
            let out = subagent(
                &["build".as_ref(), example.bundle.as_os_str()],
                Some(tools),
                &cache,
            );
            assert!(
                out.status.success(),
                "subagent build {} failed:\n{}",
                example.bundle.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let bundle = Bundle::open(&example.bundle)
            .unwrap_or_else(|e| panic!("{}: {e}", example.bundle.display()));
        // A copy, so nothing rebuilds the file between samples.
        let component = scratch.join(format!("{}.wasm", bundle.manifest.name));
        std::fs::copy(&bundle.manifest.component, &component).unwrap();
        let size = std::fs::metadata(&component).unwrap().len();
        let compiled = cold_compile(&component, scratch, cold);

        // Warm the cache `subagent run` uses, then time whole runs.
        let args = [
            "run".as_ref(),
            example.bundle.as_os_str(),
            example.prompt.as_ref(),
            "--workspace".as_ref(),
            workspace.as_os_str(),
        ];
        let mut cached = Samples::default();
        for i in 0..=runs {
            let start = Instant::now();
            let out = subagent(&args, None, &cache);
            let took = start.elapsed();
            assert!(
                out.status.success(),
                "{} did not complete:\n{}",
                example.language,
                String::from_utf8_lossy(&out.stderr)
            );
            if i > 0 {
                cached.push(took);
            }
        }
        rows.push((example.language, size, compiled, cached));
    }
    Languages { rows }
}

pub fn print(languages: &Languages) {
    let (_, _, rust_cold, rust_run) = &languages.rows[0];
    let mut cold_rows = Vec::new();
    let mut run_rows = Vec::new();
    for (i, (language, size, cold, run)) in languages.rows.iter().enumerate() {
        let name = format!("{language}, {}", subagent_host::units::format_size(*size));
        let (c, r) = (Row::new(&name, cold), Row::new(&name, run));
        if i == 0 {
            cold_rows.push(c.baseline());
            run_rows.push(r.baseline());
        } else {
            cold_rows.push(c.ratio(cold, rust_cold, "Rust"));
            run_rows.push(r.ratio(run, rust_run, "Rust"));
        }
    }
    print_table(&[
        ("cold compile (Runtime::load, empty cache)", &cold_rows),
        (
            "cached run (whole `subagent run` process, warm cache)",
            &run_rows,
        ),
    ]);
}
