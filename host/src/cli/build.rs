//! `subagent build`: run a bundle's `[build] command`, then check and compile
//! what it produced.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{Global, workspace};

/// Run a bundle's [build] command, then check and compile the component
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The bundle: a directory with subagent.toml, its manifest path, or a subagent name
    bundle: String,
    /// Where to look for subagents by name [default: the current directory]
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

pub fn run(args: BuildArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let workspace = workspace(args.workspace)?;
    let bundle = global.bundle(&args.bundle, &workspace)?;
    let manifest = &bundle.manifest;
    if manifest.build_command.is_none() {
        errln!(
            "subagent `{}` has no [build] command; checking its component as it is",
            manifest.name
        );
    }
    bundle.build()?;
    let runtime = global.runtime()?;
    let component = runtime.load(
        &manifest.name,
        &manifest.component,
        manifest.sha256.as_deref(),
        &manifest.path,
    )?;
    outln!(
        "built {} ({}, sha256 {})",
        manifest.name,
        manifest.component.display(),
        component.digest
    );
    Ok(ExitCode::SUCCESS)
}
