//! Run a subagent bundle from Rust, the way the `subagent` CLI does.
//!
//! ```text
//! cargo run -p subagent-embed-example -- plugins/deep-search . "TODO"
//! ```

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use subagent_host::plan::{PlanRequest, plan};
use subagent_host::sandbox::OutputLog;
use subagent_host::task::Ignore;
use subagent_host::{Bundle, RunSpec, Runtime, RuntimeConfig, TaskControl, TaskInfo};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: subagent-embed-example BUNDLE WORKSPACE PROMPT";
    let (bundle, workspace, prompt) = (args.next().context(usage)?, args.next().context(usage)?, args.next().context(usage)?);

    // 1. Load and validate the bundle; decide its effective permissions.
    let bundle = Bundle::open(Path::new(&bundle))?;
    let plan = plan(&bundle, Path::new(&workspace), &PlanRequest::default(), true)?;

    // 2. One runtime serves many tasks: it compiles (or loads from the
    //    artifact cache) each component once.
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let m = &bundle.manifest;
    let component = runtime.load(&m.name, &m.component, m.sha256.as_deref(), &m.path)?;

    // 3. Run it. `TaskControl` cancels it or sends it follow-up messages.
    let spec = RunSpec {
        task: TaskInfo { id: "embedded-1".into(), prompt, system_prompt: bundle.system_prompt.clone(), ..TaskInfo::default() },
        output: OutputLog::new(plan.limits.output, None),
        sandbox: plan.sandbox,
        limits: plan.limits,
    };
    let result = runtime.run(&component, spec, TaskControl::new(), Arc::new(Ignore)).await;

    println!("{} {}", m.name, result.status);
    if let Some(summary) = &result.summary {
        println!("{summary}");
    }
    if let Some(error) = &result.error {
        println!("error: {error}");
    }
    Ok(())
}
