//! The `subagent` command line: one file per subcommand. [`main`] parses the
//! arguments, runs the subcommand and returns the exit code: 0 success, 1 a
//! task failed, 2 a usage or input error.

mod batch;
mod build;
mod list;
mod progress;
mod run;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::bundle::{Bundle, Registries};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::tasks::{ManagerConfig, TaskManager};

/// Run the custom subagents of AI coding agents as sandboxed WebAssembly components.
#[derive(Parser, Debug)]
#[command(name = "subagent", version, about, max_term_width = 100)]
struct Cli {
    /// Where compiled components are cached [default: $SUBAGENT_CACHE_DIR, else $XDG_CACHE_HOME/subagent]
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Look for subagents in DIR first (repeatable); then <workspace>/.subagents, then ~/.config/subagent/agents
    #[arg(long = "agents", global = true, value_name = "DIR")]
    agents: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Run(run::RunArgs),
    Batch(batch::BatchArgs),
    Validate(validate::ValidateArgs),
    List(list::ListArgs),
    Build(build::BuildArgs),
}

/// Options every subcommand shares.
struct Global {
    cache_dir: Option<PathBuf>,
    agents: Vec<PathBuf>,
}

impl Global {
    fn runtime(&self) -> anyhow::Result<Runtime> {
        let mut config = RuntimeConfig::default();
        if let Some(dir) = &self.cache_dir {
            config.cache_dir = Some(dir.clone());
        }
        Ok(Runtime::new(config)?)
    }

    /// A task manager over a fresh runtime; call inside a tokio runtime.
    fn manager(&self) -> anyhow::Result<TaskManager> {
        let config = ManagerConfig {
            agents: self.agents.clone(),
            ..ManagerConfig::default()
        };
        Ok(TaskManager::new(
            std::sync::Arc::new(self.runtime()?),
            config,
        ))
    }

    /// A bundle by path, or by name in the registries of `workspace`.
    fn bundle(&self, spec: &str, workspace: &std::path::Path) -> anyhow::Result<Bundle> {
        Ok(Registries::standard(&self.agents, workspace).resolve(spec)?)
    }
}

/// Run the CLI with the process's arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    let global = Global {
        cache_dir: cli.cache_dir,
        agents: cli.agents,
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args, &global),
        Command::Batch(args) => batch::run(args, &global),
        Command::Validate(args) => validate::run(args, &global),
        Command::List(args) => list::run(args, &global),
        Command::Build(args) => build::run(args, &global),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            ExitCode::from(2)
        }
    }
}

/// Print an error and its causes to stderr.
fn report(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// Print `value` as one line of JSON on stdout.
fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string(value).expect("report types serialize")
    );
}

/// The workspace to use: `--workspace`, else the current directory.
fn workspace(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match arg {
        Some(dir) => Ok(dir),
        None => Ok(std::env::current_dir()?),
    }
}
