//! `subagent validate`: check a bundle's manifest and component and print the
//! effective permissions and limits, without running it. Shares every step
//! with `subagent run` up to instantiation.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{Global, print_json, workspace};
use crate::manifest::Limits;
use crate::plan::{PlanRequest, plan};
use crate::runtime::CacheOutcome;
use crate::task::Permissions;

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
}

pub fn run(args: ValidateArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let workspace = workspace(args.workspace)?;
    let bundle = global.bundle(&args.bundle, &workspace)?;
    let plan = plan(&bundle, &workspace, &PlanRequest::default(), false)?;
    let runtime = global.runtime()?;
    let manifest = &bundle.manifest;
    let component = runtime.load(
        &manifest.name,
        &manifest.component,
        manifest.sha256.as_deref(),
        &manifest.path,
    )?;
    // The model a run would use, resolved as a launch resolves it (minus a
    // launch override or a parent to inherit from).
    let mut model_problem = None;
    let model = if manifest.tools.contains(&crate::manifest::Tool::Model) {
        let models = global.models(None, None)?;
        let model = manifest
            .model
            .clone()
            .or_else(|| models.default_model().map(str::to_owned));
        // An alias the host config lacks is this machine's problem, not the
        // bundle's: say it, as launch would refuse it, without failing.
        if let Some(name) = model.as_deref().filter(|m| *m != "inherit") {
            model_problem = models
                .check(name)
                .err()
                .map(|problem| format!("model `{name}`: {problem}; a run here would be refused"));
        }
        model
    } else {
        manifest.model.clone()
    };
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
        model: model.as_deref(),
        writable_guest_paths: plan.sandbox.writes().guest_paths(),
        warnings: &bundle.warnings,
        model_problem: model_problem.as_deref(),
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
    outln!(
        "  workspace    {} (read-only at /workspace)",
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
    let source = match (&manifest.model, &model) {
        (_, None) => "",
        (Some(_), Some(m)) if m == "inherit" => " (the parent task's, at launch)",
        (Some(_), Some(_)) => " (from the manifest)",
        (None, Some(_)) => " (the host config's default_model)",
    };
    outln!(
        "  model        {}{source}",
        model.as_deref().unwrap_or("none")
    );
    outln!("  limits       {}", plan.limits);
    outln!("  denied       network, environment variables, arguments, host stdio");
    if let Some(problem) = &model_problem {
        outln!("  warning      {}", problem.replace('\n', " "));
    }
    for warning in &bundle.warnings {
        outln!("  warning      {warning}");
    }
    Ok(ExitCode::SUCCESS)
}
