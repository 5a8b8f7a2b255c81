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
    /// Built into this binary (overridden by a registry bundle of its name).
    builtin: bool,
    shadowed: bool,
    /// The other bundles of this name in the same registry: running the
    /// name is an error until all but one are renamed or removed.
    duplicates: Vec<PathBuf>,
    error: Option<String>,
    /// Things in a Markdown definition that were ignored or narrowed.
    warnings: Vec<String>,
    /// The model it would run on with this host config, when it uses one.
    model: Option<String>,
    /// The model name its manifest asks for, when it names one.
    requested_model: Option<String>,
    /// Set when that name does not resolve with this host config: the
    /// default model would stand in, or a run would be refused.
    model_warning: Option<String>,
}

pub fn run(args: ListArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let workspace = workspace(args.workspace)?;
    let registries = Registries::standard(&global.agents, &workspace);
    let models = global
        .models(None, None)
        .map_err(|err| {
            errln!("warning: the host config cannot be used, so no model is checked: {err}");
        })
        .ok();
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
            let (model, requested_model, model_warning) = match (&entry.bundle, &models) {
                (Ok(bundle), Some(models)) => model_of(bundle, models),
                _ => (None, None, None),
            };
            ListEntry {
                name: entry.name(),
                description,
                permission_mode: mode,
                path: entry.dir,
                builtin: crate::builtin::is_registry(&entry.registry),
                registry: entry.registry,
                shadowed: entry.shadowed,
                duplicates: entry.duplicates,
                error,
                warnings: entry
                    .bundle
                    .as_ref()
                    .map(|b| b.warnings.iter().map(ToString::to_string).collect())
                    .unwrap_or_default(),
                model,
                requested_model,
                model_warning,
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
        if entry.builtin {
            line.push_str(" (built-in)");
        }
        if entry.shadowed {
            line.push_str(" (shadowed by an earlier registry)");
        }
        if !entry.duplicates.is_empty() {
            line.push_str(" (DUPLICATE name in its registry)");
        }
        outln!("{:<width$}  {mode:<8}  {line}", entry.name);
        outln!("{:<width$}  {:<8}  {}", "", "", entry.path.display());
        for other in &entry.duplicates {
            outln!(
                "{:<width$}  {:<8}  error: `{}` is also defined by {}; running `{}` by name fails until all but one are renamed or removed",
                "",
                "",
                entry.name,
                other.display(),
                entry.name
            );
        }
        for warning in &entry.warnings {
            outln!("{:<width$}  {:<8}  warning: {warning}", "", "");
        }
        if let Some(warning) = &entry.model_warning {
            outln!("{:<width$}  {:<8}  warning: {warning}", "", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The model `bundle` would run on at the top level with this host config,
/// decided as a launch decides it: (effective, requested, warning). The
/// warning says when the default would stand in, or a run be refused.
fn model_of(
    bundle: &crate::bundle::Bundle,
    models: &crate::model::Models,
) -> (Option<String>, Option<String>, Option<String>) {
    let manifest = &bundle.manifest;
    if !manifest.tools.contains(&crate::manifest::Tool::Model) {
        return (None, None, None);
    }
    match models.decide(manifest.model.as_deref(), None) {
        Ok(choice) => (Some(choice.model), choice.requested, choice.warning),
        Err(refusal) => {
            let problem = refusal.problem.replace('\n', " ");
            let warning = match &refusal.model {
                Some(model) => format!("model `{model}`: {problem}; a run here would be refused"),
                None => format!("{problem}; a run here would be refused"),
            };
            (refusal.model, manifest.model.clone(), Some(warning))
        }
    }
}
