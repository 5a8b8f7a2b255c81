//! `subagent list`: the subagents found in the registries.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{Global, print_json, workspace};
use crate::bundle::Registries;

/// List the subagents found in the registries
#[derive(Args, Debug)]
pub struct ListArgs {
    /// The workspace whose .subagents/ registry to include [default: the current directory]
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Print one JSON object per subagent, one per line
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ListEntry {
    name: String,
    description: Option<String>,
    permission_mode: Option<String>,
    path: PathBuf,
    registry: PathBuf,
    shadowed: bool,
    error: Option<String>,
    /// Things in a Markdown definition that were ignored or narrowed.
    warnings: Vec<String>,
}

pub fn run(args: ListArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let workspace = workspace(args.workspace)?;
    let registries = Registries::standard(&global.agents, &workspace);
    let entries: Vec<ListEntry> = registries
        .entries()
        .into_iter()
        .map(|entry| {
            let (description, mode, error) = match &entry.bundle {
                Ok(bundle) => (
                    Some(bundle.manifest.description.clone()),
                    Some(bundle.manifest.permission_mode.to_string()),
                    None,
                ),
                Err(err) => (None, None, Some(err.to_string())),
            };
            ListEntry {
                name: entry.name(),
                description,
                permission_mode: mode,
                path: entry.dir,
                registry: entry.registry,
                shadowed: entry.shadowed,
                error,
                warnings: entry
                    .bundle
                    .as_ref()
                    .map(|b| b.warnings.iter().map(ToString::to_string).collect())
                    .unwrap_or_default(),
            }
        })
        .collect();
    if args.json {
        for entry in &entries {
            print_json(entry);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        let searched: Vec<String> = registries
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        outln!("no subagents found (searched: {})", searched.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let width = entries
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    outln!("{:<width$}  {:<8}  DESCRIPTION", "NAME", "MODE");
    for entry in &entries {
        let mode = entry.permission_mode.as_deref().unwrap_or("-");
        let mut line = match (&entry.description, &entry.error) {
            (Some(description), _) => description.clone(),
            (None, Some(error)) => format!("BROKEN: {}", error.lines().next().unwrap_or_default()),
            (None, None) => String::new(),
        };
        if entry.shadowed {
            line.push_str(" (shadowed by an earlier registry)");
        }
        outln!("{:<width$}  {mode:<8}  {line}", entry.name);
        outln!("{:<width$}  {:<8}  {}", "", "", entry.path.display());
        for warning in &entry.warnings {
            outln!("{:<width$}  {:<8}  warning: {warning}", "", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}
