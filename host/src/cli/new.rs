//! `subagent new`: write a bundle that builds and runs as written.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::scaffold::{self, Lang};

/// Write a new subagent bundle (manifest, source, build command) in Rust, Python or JavaScript
#[derive(Args, Debug)]
pub struct NewArgs {
    /// The subagent's name: lowercase letters, digits and `-`
    name: String,
    /// The language of its source
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// Where to write the bundle (must not exist, or be empty) [default: ./NAME]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    if let Err(err) = scaffold::write(&dir, &args.name, args.lang) {
        errln!("error: {err}");
        return Ok(ExitCode::from(2));
    }
    let shown = dir.display();
    let (needs, edit) = match args.lang {
        Lang::Rust => ("cargo and `rustup target add wasm32-wasip2`", "src/lib.rs"),
        Lang::Python => (
            "componentize-py on PATH, the version subagent.toml names",
            "app.py",
        ),
        Lang::Js => ("node and npm: run `npm install` in it once", "app.js"),
    };
    outln!(
        "created {} subagent `{}` in {shown}",
        args.lang.name(),
        args.name
    );
    outln!("  edit      {shown}/{edit} (the work) and {shown}/subagent.toml (permissions, limits)");
    outln!("  build     subagent build {shown}        (needs {needs})");
    outln!("  run       subagent run {shown} \"your task\" --workspace .");
    Ok(ExitCode::SUCCESS)
}
