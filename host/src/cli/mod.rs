//! The `subagent` command line: one file per subcommand. [`main`] parses the
//! arguments, runs the subcommand and returns the exit code: 0 success, 1 a
//! task failed, 2 a usage or input error.

/// `println!` for command output: a closed stdout (`subagent tasks | head`)
/// ends the process quietly with exit code 0.
/// A line of human output on stdout, control characters made visible.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_line(format_args!($($arg)*))
    };
}

/// A line on stderr, control characters made visible.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::write_err_line(format_args!($($arg)*))
    };
}

mod batch;
mod build;
mod control;
mod list;
mod logs;
mod mcp;
mod new;
mod progress;
mod prune;
mod run;
mod show;
mod tasks;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use batch::check_batch_file;

use crate::bundle::{Bundle, Registries};
use crate::model::broker::Models;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::Store;
use crate::tasks::{ManagerConfig, TaskManager};

/// Run the custom subagents of AI coding agents as sandboxed WebAssembly components.
#[derive(Parser, Debug)]
#[command(name = "subagent", version, about, max_term_width = 100)]
struct Cli {
    /// Where compiled components are cached [default: $SUBAGENT_CACHE_DIR, else $XDG_CACHE_HOME/subagent]
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Look for subagents in DIR first (repeatable); then <workspace>/.subagents, .claude/agents, .cursor/agents, .qwen/agents, then ~/.config/subagent/agents
    #[arg(long = "agents", global = true, value_name = "DIR")]
    agents: Vec<PathBuf>,
    /// Where the task store lives [default: $XDG_STATE_HOME/subagent, else ~/.local/state/subagent]
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The host config (model aliases, default model) [default: $XDG_CONFIG_HOME/subagent/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Prune finished tasks older than this from the store when a host starts [default: 168h]
    #[arg(long, global = true, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    retention: Option<std::time::Duration>,
    /// Serve none of the subagents built into this binary (deep-search, todo-report, prompt-agent)
    #[arg(long, global = true)]
    no_builtins: bool,
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
    Tasks(tasks::TasksArgs),
    Show(show::ShowArgs),
    Logs(logs::LogsArgs),
    Cancel(control::CancelArgs),
    Send(control::SendArgs),
    Prune(prune::PruneArgs),
    Mcp(mcp::McpArgs),
    New(new::NewArgs),
    /// The detached process of `run --background` (internal)
    #[command(hide = true)]
    RunDetached(run::DetachedArgs),
}

/// Options every subcommand shares.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Global {
    cache_dir: Option<PathBuf>,
    agents: Vec<PathBuf>,
    state_dir: Option<PathBuf>,
    config: Option<PathBuf>,
    retention: Option<std::time::Duration>,
    no_builtins: bool,
}

impl Global {
    /// Settings that hold for the whole process: where the built-in
    /// subagents are written, or that there are none.
    fn apply(&self) {
        if self.no_builtins {
            crate::builtin::disable();
        }
        if let Some(dir) = &self.cache_dir {
            crate::builtin::set_cache_dir(dir);
        }
    }

    fn runtime(&self) -> anyhow::Result<Runtime> {
        let mut config = RuntimeConfig::default();
        if let Some(dir) = &self.cache_dir {
            config.cache_dir = Some(dir.clone());
        }
        Ok(Runtime::new(config)?)
    }

    /// The task store in the state directory.
    fn store(&self) -> anyhow::Result<std::sync::Arc<Store>> {
        let dir = crate::store::state_dir(self.state_dir.as_deref()).ok_or_else(|| {
            anyhow::anyhow!("no state directory: set HOME or XDG_STATE_HOME, or pass --state-dir")
        })?;
        Ok(Store::open(&dir)?)
    }

    /// The host's models from the host config; `record` saves every model
    /// exchange to a file, `replay` serves a recording back instead.
    fn models(
        &self,
        record: Option<PathBuf>,
        replay: Option<&std::path::Path>,
    ) -> anyhow::Result<std::sync::Arc<Models>> {
        let config = crate::model::config::load(self.config.as_deref())?;
        let models = match replay {
            Some(file) => Models::replaying(config, file).map_err(anyhow::Error::msg)?,
            None => Models::new(config, record)?,
        };
        Ok(std::sync::Arc::new(models))
    }

    /// A task manager over a fresh runtime, recording into the store and
    /// serving `models` (else the host config's); call inside a tokio
    /// runtime. `tune` adjusts the configuration.
    fn manager(
        &self,
        models: Option<std::sync::Arc<Models>>,
        tune: impl FnOnce(&mut ManagerConfig),
    ) -> anyhow::Result<TaskManager> {
        let mut config = self.manager_config();
        tune(&mut config);
        let models = match models {
            Some(models) => models,
            None => self.models(None, None)?,
        };
        Ok(TaskManager::builder(std::sync::Arc::new(self.runtime()?))
            .config(config)
            .store(self.store()?)
            .models(models)
            .build()?)
    }

    /// The task store, for a command that only reads it: opened read-only
    /// when this process may not write it.
    fn store_for_reading(&self) -> anyhow::Result<std::sync::Arc<Store>> {
        let dir = crate::store::state_dir(self.state_dir.as_deref()).ok_or_else(|| {
            anyhow::anyhow!("no state directory: set HOME or XDG_STATE_HOME, or pass --state-dir")
        })?;
        use crate::store::StoreError;
        match Store::open(&dir) {
            Ok(store) => Ok(store),
            // Not a store this build can use at all: said as it is.
            Err(err @ (StoreError::Newer { .. } | StoreError::Corrupt { .. })) => Err(err.into()),
            Err(err @ StoreError::NotAFile { .. }) => Err(err.into()),
            // Most likely it may not be written (migrated, recovered) by this
            // process: read it as it is, else say why it could not be opened.
            Err(err) => Store::open_read_only(&dir).map_err(|_| err.into()),
        }
    }

    /// The task manager's policy from these options.
    fn manager_config(&self) -> ManagerConfig {
        ManagerConfig {
            agents: self.agents.clone(),
            retention: self.retention.unwrap_or(crate::store::DEFAULT_RETENTION),
            ..ManagerConfig::default()
        }
    }

    /// A bundle by path, or by name in the registries of `workspace`.
    fn bundle(&self, spec: &str, workspace: &std::path::Path) -> anyhow::Result<Bundle> {
        Ok(Registries::standard(&self.agents, workspace).resolve(spec)?)
    }
}

/// `model`, and the name asked for when it was another (`local (requested
/// `sonnet`)`), as `run` and `show` print it.
fn model_line(model: &str, requested: Option<&str>) -> String {
    match requested {
        Some(requested) if requested != model => format!("{model} (requested `{requested}`)"),
        _ => model.to_owned(),
    }
}

/// How many tasks run at once: the flags of `batch` and `mcp`.
#[derive(clap::Args, Debug, Default)]
struct ConcurrencyArgs {
    /// Running tasks in all (0 = unlimited)
    #[arg(long, value_name = "N")]
    max_running: Option<usize>,
    /// Running tasks per concurrency key unless overridden (0 = unlimited) [default: 5]
    #[arg(long, value_name = "N")]
    per_key_default: Option<usize>,
    /// Limit one key (a model, or a subagent name): KEY=N (repeatable)
    #[arg(long = "per-key", value_name = "KEY=N", value_parser = parse_key_limit)]
    per_key: Vec<(String, usize)>,
}

impl ConcurrencyArgs {
    /// Set what was given on the command line.
    fn apply(&self, config: &mut ManagerConfig) {
        if let Some(n) = self.max_running {
            config.max_running = n;
        }
        if let Some(n) = self.per_key_default {
            config.per_key_default = n;
        }
        config.per_key.extend(self.per_key.iter().cloned());
    }
}

fn parse_key_limit(text: &str) -> Result<(String, usize), String> {
    let (key, n) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=N"))?;
    let n = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` in `{text}` is not a number"))?;
    Ok((key.trim().to_owned(), n))
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
        state_dir: cli.state_dir,
        config: cli.config,
        retention: cli.retention,
        no_builtins: cli.no_builtins,
    };
    global.apply();
    let result = match cli.command {
        Command::Run(args) => run::run(args, &global),
        Command::RunDetached(args) => run::run_detached(args),
        Command::Batch(args) => batch::run(args, &global),
        Command::Validate(args) => validate::run(args, &global),
        Command::List(args) => list::run(args, &global),
        Command::Build(args) => build::run(args, &global),
        Command::Tasks(args) => tasks::run(args, &global),
        Command::Show(args) => show::run(args, &global),
        Command::Logs(args) => logs::run(args, &global),
        Command::Cancel(args) => control::cancel(args, &global),
        Command::Send(args) => control::send(args, &global),
        Command::Prune(args) => prune::run(args, &global),
        Command::Mcp(args) => mcp::run(args, &global),
        Command::New(args) => new::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            ExitCode::from(2)
        }
    }
}

/// Print an error and its causes to stderr, each once: a cause whose text
/// the message already shows (an error that displays its source and also
/// returns it from `source()`) adds nothing.
fn report(err: &anyhow::Error) {
    let mut shown = err.to_string();
    errln!("error: {shown}");
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !shown.contains(&text) {
            errln!("  caused by: {text}");
            shown.push_str(&text);
        }
    }
}

/// Print `value` as one line of JSON on stdout, exactly (JSON escapes the
/// control characters a terminal would act on).
fn print_json(value: &impl serde::Serialize) {
    let json = serde_json::to_string(value).expect("report types serialize");
    write_raw(&mut std::io::stdout().lock(), json.as_bytes(), true);
}

/// Write one line of human output to stdout. Text from guests and
/// manifests is shown, never obeyed: control characters are made visible
/// (see [`visible`]). A broken pipe ends the process with exit code 0.
pub(crate) fn write_line(args: std::fmt::Arguments<'_>) {
    let text = args.to_string();
    write_raw(
        &mut std::io::stdout().lock(),
        visible(&text).as_bytes(),
        true,
    );
}

/// [`write_line`] for stderr.
pub(crate) fn write_err_line(args: std::fmt::Arguments<'_>) {
    let text = args.to_string();
    let mut line = visible(&text).into_owned();
    line.push('\n');
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}

/// Write `bytes` (and a newline) to `out` as they are; a broken pipe ends
/// the process with exit code 0.
pub(crate) fn write_raw(out: &mut impl std::io::Write, bytes: &[u8], newline: bool) {
    let written = out.write_all(bytes).and_then(|()| {
        if newline {
            out.write_all(b"\n")?;
        }
        out.flush()
    });
    if let Err(err) = written {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        errln!("error: cannot write to stdout: {err}");
        std::process::exit(2);
    }
}

/// `text` with every character a terminal would act on made visible: C0
/// controls but newline and tab (`\r`, `\x1b`, ...), DEL, C1 controls and
/// the bidirectional overrides (`\u{9b}`, `\u{202e}`, ...). A guest or a
/// manifest can then neither retitle the window, clear the screen, set the
/// clipboard (OSC 52) nor overwrite a line with a bare carriage return.
pub(crate) fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    fn acts(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }
    if !text.chars().any(acts) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\r' => shown.push_str("\\r"),
            c if acts(c) && (c as u32) < 0x80 => {
                shown.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if acts(c) => shown.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => shown.push(c),
        }
    }
    std::borrow::Cow::Owned(shown)
}

/// The workspace to use: `--workspace`, else the current directory.
fn workspace(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match arg {
        Some(dir) => Ok(dir),
        None => Ok(std::env::current_dir()?),
    }
}
