//! `subagent validate`: check a bundle's manifest and component and print the
//! effective permissions and limits, without running it. It prepares the
//! bundle as `subagent run` does (one [`Preparer`]), up to instantiation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde::Serialize;

use super::{Global, print_json, workspace};
use crate::manifest::Limits;
use crate::runtime::CacheOutcome;
use crate::task::Permissions;
use crate::tasks::{LaunchRequest, Preparer, SubagentRef};

/// Check a bundle's manifest and component without running it
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The bundle: a directory with subagent.toml, its manifest path, or a subagent name
    bundle: String,
    /// The workspace to check write directories against [default: the current directory]
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Print the report as one JSON object
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ValidateReport<'a> {
    name: &'a str,
    description: &'a str,
    manifest: &'a std::path::Path,
    component: &'a std::path::Path,
    sha256: &'a str,
    exports: &'a [String],
    imports: &'a [String],
    permissions: &'a Permissions,
    limits: &'a Limits,
    model: Option<&'a str>,
    writable_guest_paths: Vec<String>,
    /// Things in a Markdown definition that were ignored or narrowed.
    warnings: &'a [crate::definitions::Warning],
    /// Why the model would not resolve with this host config, if it would not.
    model_problem: Option<&'a str>,
    /// The model name the manifest asks for, when it names one.
    requested_model: Option<&'a str>,
    /// Set when that name does not resolve with this host config and the
    /// default model would stand in for it.
    model_warning: Option<&'a str>,
    /// The other bundles of this name in its registry: running the name
    /// fails until all but one are renamed or removed.
    duplicates: &'a [PathBuf],
}

pub fn run(args: ValidateArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let workspace = workspace(args.workspace)?;
    let registries = crate::bundle::Registries::standard(&global.agents, &workspace);
    let preparer = Preparer::new(
        Arc::new(global.runtime()?),
        global.models(None, None)?,
        global.agents.clone(),
    );
    // Prepared as `run` prepares it, with no prompt and no launch overrides.
    let request = LaunchRequest::new(
        SubagentRef::from_spec(&args.bundle, Path::new("")),
        "",
        workspace,
    );
    let mut prepared = preparer.prepare(request)?;
    let component = prepared.load()?;
    let (bundle, plan) = (prepared.bundle(), prepared.plan());
    let manifest = &bundle.manifest;
    // `inherit` is shown as such: a nested launch takes its parent's model.
    let model = match manifest.model.as_deref() {
        Some("inherit") => Some("inherit"),
        _ => prepared.model(),
    };
    // An alias the host config lacks is this machine's problem, not the
    // bundle's: say it, as a launch would refuse it, without failing.
    let model_problem = prepared
        .model_problem()
        .map(|problem| match prepared.model() {
            Some(model) => format!("model `{model}`: {problem}; a run here would be refused"),
            None => format!("{problem}; a run here would be refused"),
        });
    let report = ValidateReport {
        name: &manifest.name,
        description: &manifest.description,
        manifest: &manifest.path,
        component: &manifest.component,
        sha256: &component.digest,
        exports: &component.exports,
        imports: &component.imports,
        permissions: &plan.permissions,
        limits: &plan.limits,
        model,
        writable_guest_paths: plan.sandbox.writes().guest_paths(),
        warnings: &bundle.warnings,
        model_problem: model_problem.as_deref(),
        requested_model: prepared.requested_model(),
        model_warning: prepared.model_warning(),
        duplicates: &registries.duplicates_of(&manifest.path),
    };
    if args.json {
        print_json(&report);
        return Ok(ExitCode::SUCCESS);
    }
    let cache = match &component.cache {
        CacheOutcome::Hit => "loaded from cache".to_owned(),
        CacheOutcome::Compiled => "compiled and cached".to_owned(),
        CacheOutcome::Uncached => "compiled (not cached)".to_owned(),
        CacheOutcome::Rebuilt { reason } => format!("recompiled: {reason}"),
    };
    let tools: Vec<&str> = manifest.tools.iter().map(|t| t.name()).collect();
    outln!("✓ subagent `{}` is valid", manifest.name);
    outln!("  description  {}", manifest.description);
    outln!("  manifest     {}", manifest.path.display());
    outln!("  component    {} ({cache})", manifest.component.display());
    outln!("  sha256       {}", component.digest);
    outln!("  exports      {}", component.exports.join(", "));
    outln!(
        "  imports      {}",
        component.imports.join("\n               ")
    );
    outln!(
        "  permissions  {}: writes {}",
        plan.permissions.mode,
        plan.permissions.writes
    );
    let access = if *plan.sandbox.writes() == crate::sandbox::WriteSet::Workspace {
        "writable"
    } else {
        "read-only"
    };
    outln!(
        "  workspace    {} ({access} at /workspace)",
        plan.sandbox.workspace().display()
    );
    outln!(
        "  tools        {}",
        if tools.is_empty() {
            "none".to_owned()
        } else {
            tools.join(", ")
        }
    );
    let source = match (manifest.model.as_deref(), model) {
        (_, None) => String::new(),
        (Some(_), Some("inherit")) => " (the parent task's, at launch)".to_owned(),
        (Some(asked), Some(_)) if prepared.model_warning().is_some() => {
            format!(" (the host config's default_model, in place of `{asked}`)")
        }
        (Some(asked), Some(model)) if asked != model => {
            format!(" (from the manifest's `{asked}`)")
        }
        (Some(_), Some(_)) => " (from the manifest)".to_owned(),
        (None, Some(_)) => " (the host config's default_model)".to_owned(),
    };
    outln!("  model        {}{source}", model.unwrap_or("none"));
    outln!("  limits       {}", plan.limits);
    outln!("  denied       network, environment variables, arguments, host stdio");
    if let Some(problem) = &model_problem {
        outln!("  warning      {}", problem.replace('\n', " "));
    }
    if let Some(warning) = prepared.model_warning() {
        outln!("  warning      {warning}");
    }
    for warning in &bundle.warnings {
        outln!("  warning      {warning}");
    }
    for other in report.duplicates {
        outln!(
            "  warning      `{}` is also defined by {} in the same registry: running `{}` by name fails until all but one are renamed or removed",
            manifest.name,
            other.display(),
            manifest.name
        );
    }
    Ok(ExitCode::SUCCESS)
}
