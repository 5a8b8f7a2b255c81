//! Find and load subagent bundles: a directory holding `subagent.toml` and the
//! component it names, or a Markdown definition (`name.md`, see
//! [`crate::definitions`]) run by the `prompt-agent` component; found by path
//! or by name in the registries.
//!
//! Registries are searched in order: each `--agents DIR`, then
//! `<workspace>/.subagents/`, then the project directories of the coding
//! agents whose definitions we read — `<workspace>/.claude/agents/` (Claude
//! Code), `<workspace>/.cursor/agents/` (Cursor), `<workspace>/.qwen/agents/`
//! (qwen-code) — then the user's config dir
//! (`$XDG_CONFIG_HOME/subagent/agents`, else `~/.config/subagent/agents`).
//! In each, a bundle is a subdirectory holding `subagent.toml`, or a `*.md`
//! file directly inside it. A bundle found in an earlier registry shadows
//! one of the same name found later; within one registry a name is unique,
//! and resolving a name two of its bundles share is an error naming both.
//!
//! A Markdown definition runs with the component, digest pin and limits of
//! the bundle named `prompt-agent` found in the same registries (the first
//! one, in the order above; for a definition opened by path, the directory
//! holding it is searched last).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::definitions::{self, Definition, RUNNER, Warning};
use crate::manifest::{MANIFEST_FILE, Manifest, ManifestError, PromptSource};

/// The help of an error about a missing `prompt-agent`.
const RUNNER_HELP: &str = "the built-in one is off (`--no-builtins`) or its cache directory cannot be written (`--cache-dir DIR`); or build plugins/prompt-agent (`subagent build plugins/prompt-agent`) and put it in a registry, e.g. --agents plugins";

/// A loaded bundle: its manifest and its system prompt.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub manifest: Manifest,
    /// The system prompt, read from `prompt` or `prompt_file`.
    pub system_prompt: Option<String>,
    /// What a Markdown definition ignored or narrowed (see
    /// [`crate::definitions`]); empty for a `subagent.toml` bundle.
    pub warnings: Vec<Warning>,
}

/// Why a bundle could not be found, loaded or built.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("no bundle at `{}`: {reason}\n  = help: pass a bundle directory (holding {MANIFEST_FILE}), its {MANIFEST_FILE}, a Markdown definition (.md), or the name of a subagent in a registry (`subagent list`)", path.display())]
    NotFound { path: PathBuf, reason: String },
    #[error("no subagent named `{name}` in the registries ({searched})\n  = help: {help}")]
    UnknownName {
        name: String,
        searched: String,
        help: String,
    },
    #[error("cannot read prompt_file `{}` of subagent `{name}`: {source}\n  = help: create the file, or fix `prompt_file` in {}", path.display(), manifest.display())]
    Prompt {
        name: String,
        path: PathBuf,
        manifest: PathBuf,
        source: std::io::Error,
    },
    /// A Markdown definition, but no usable `prompt-agent` to run it.
    #[error("subagent `{name}` ({}) is a Markdown definition, run by the `{RUNNER}` component, but {reason}\n  = help: {help}", path.display())]
    NoRunner {
        name: String,
        path: PathBuf,
        reason: String,
        help: String,
    },
    /// Two or more bundles or definitions of one registry have this name.
    #[error("subagent `{name}` is defined {} times in the registry {}: {}\n  = help: a name is unique per registry: rename all but one (`name:` in a definition's frontmatter, `name` in a bundle's {MANIFEST_FILE}) or remove them; or run one by its path", paths.len(), registry.display(), paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    Duplicate {
        name: String,
        registry: PathBuf,
        /// Every bundle directory or `.md` file of that name, sorted.
        paths: Vec<PathBuf>,
    },
    #[error("build of subagent `{name}` failed: `{command}` {status}\n  = help: fix the build, or run it by hand in {}", dir.display())]
    Build {
        name: String,
        command: String,
        status: String,
        dir: PathBuf,
    },
}

impl Bundle {
    /// Load the bundle at `path`: a directory holding `subagent.toml`, or the
    /// manifest file itself.
    ///
    /// # Errors
    ///
    /// [`BundleError::NotFound`] when nothing is there, [`BundleError::Manifest`]
    /// for an invalid manifest, [`BundleError::Prompt`] for a missing prompt file.
    ///
    /// A Markdown definition (`*.md`) runs with a `prompt-agent` bundle found
    /// in its own directory; [`Registries::open_definition`] searches the
    /// registries too.
    pub fn open(path: &Path) -> Result<Bundle, BundleError> {
        if definitions::is_definition_file(path) && path.is_file() {
            return Registries::default().open_definition(path);
        }
        let manifest_path = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else {
            path.to_owned()
        };
        if !manifest_path.is_file() {
            let reason = if path.is_dir() {
                format!("the directory has no {MANIFEST_FILE}")
            } else if path.exists() {
                "it is not a file or directory".to_owned()
            } else {
                "it does not exist".to_owned()
            };
            return Err(BundleError::NotFound {
                path: path.to_owned(),
                reason,
            });
        }
        let manifest = Manifest::load(&manifest_path)?;
        Bundle::from_manifest(manifest)
    }

    /// Complete a parsed manifest into a bundle by reading its prompt file.
    ///
    /// # Errors
    ///
    /// [`BundleError::Prompt`] when the prompt file cannot be read.
    pub fn from_manifest(manifest: Manifest) -> Result<Bundle, BundleError> {
        let system_prompt = match &manifest.prompt {
            None => None,
            Some(PromptSource::Inline(text)) => Some(text.clone()),
            Some(PromptSource::File(path)) => Some(std::fs::read_to_string(path).map_err(
                |source| BundleError::Prompt {
                    name: manifest.name.clone(),
                    path: path.clone(),
                    manifest: manifest.path.clone(),
                    source,
                },
            )?),
        };
        Ok(Bundle {
            manifest,
            system_prompt,
            warnings: Vec::new(),
        })
    }

    /// The bundle that runs `definition` with `runner`, the manifest of the
    /// `prompt-agent` bundle.
    pub fn from_definition(definition: Definition, runner: &Manifest) -> Bundle {
        let manifest = definition.to_manifest(runner);
        Bundle {
            system_prompt: definition.prompt,
            warnings: definition.warnings,
            manifest,
        }
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Run the manifest's `[build] command` in the manifest's directory.
    /// Does nothing when there is none. Its output goes to our stderr.
    ///
    /// # Errors
    ///
    /// [`BundleError::Build`] when the command cannot start or fails.
    pub fn build(&self) -> Result<(), BundleError> {
        let Some(command) = &self.manifest.build_command else {
            return Ok(());
        };
        let dir = self.manifest.dir();
        let fail = |status: String| BundleError::Build {
            name: self.manifest.name.clone(),
            command: command.clone(),
            status,
            dir: dir.to_owned(),
        };
        let status = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
            .stdout(std::process::Stdio::from(std::io::stderr()))
            .status()
            .map_err(|err| fail(format!("could not start: {err}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(fail(format!("exited with {status}")))
        }
    }
}

/// Where bundles are looked up by name, in order of precedence.
#[derive(Clone, Debug, Default)]
pub struct Registries {
    pub dirs: Vec<PathBuf>,
}

/// One bundle found in a registry (or a broken one, with its error).
#[derive(Debug)]
pub struct Entry {
    pub registry: PathBuf,
    /// The bundle directory, or the `.md` file of a Markdown definition.
    pub dir: PathBuf,
    pub bundle: Result<Bundle, BundleError>,
    /// True when a bundle of the same name in an earlier registry wins.
    pub shadowed: bool,
    /// The other bundles of the same name in the same registry (sorted).
    /// A name is unique per registry: resolving it is then an error
    /// ([`BundleError::Duplicate`]) naming them all.
    pub duplicates: Vec<PathBuf>,
}

impl Entry {
    /// The subagent's name, or the directory name (the file name without
    /// `.md`) for a broken bundle.
    pub fn name(&self) -> String {
        match &self.bundle {
            Ok(bundle) => bundle.name().to_owned(),
            Err(BundleError::NoRunner { name, .. }) => name.clone(),
            Err(_) if definitions::is_definition_file(&self.dir) => self
                .dir
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Err(_) => self
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

impl Registries {
    /// The standard search order: `extra` dirs, then `<workspace>/.subagents`,
    /// then `<workspace>/.claude/agents`, `<workspace>/.cursor/agents` and
    /// `<workspace>/.qwen/agents`, then the user config dir, then the
    /// subagents built into the binary ([`crate::builtin`]), so any
    /// registry's bundle of the same name overrides a built-in.
    pub fn standard(extra: &[PathBuf], workspace: &Path) -> Registries {
        let mut dirs = extra.to_vec();
        dirs.push(workspace.join(".subagents"));
        for agent in [".claude", ".cursor", ".qwen"] {
            dirs.push(workspace.join(agent).join("agents"));
        }
        if let Some(config) = crate::paths::config_dir() {
            dirs.push(config.join("agents"));
        }
        dirs.extend(crate::builtin::registry());
        Registries { dirs }
    }

    /// Every bundle in every registry, in precedence order: in each
    /// registry, its bundle directories and `.md` definitions sorted by path.
    pub fn entries(&self) -> Vec<Entry> {
        // Bundle directories first, so the definitions can find prompt-agent.
        // (registry, its position, path, the bundle when it is a directory)
        let mut found: Vec<(PathBuf, usize, PathBuf, Option<Loaded>)> = Vec::new();
        for (position, registry) in self.dirs.iter().enumerate() {
            for (path, bundle) in read_registry(registry, true) {
                found.push((registry.clone(), position, path, bundle));
            }
        }
        let runner = first_runner(
            found
                .iter()
                .filter_map(|(_, _, dir, bundle)| Some((dir.as_path(), bundle.as_ref()?))),
            &self.dirs,
        );
        // (entry, its registry's position, its name)
        let mut entries: Vec<(Entry, usize, String)> = Vec::with_capacity(found.len());
        for (registry, position, dir, bundle) in found {
            let bundle = match bundle {
                Some(bundle) => bundle,
                None => Definition::load(&dir)
                    .map_err(BundleError::from)
                    .and_then(|definition| with_runner(definition, &runner)),
            };
            let entry = Entry {
                registry,
                dir,
                bundle,
                shadowed: false,
                duplicates: Vec::new(),
            };
            let name = entry.name();
            entries.push((entry, position, name));
        }
        // An earlier registry shadows; within one registry, a name is unique.
        let keys: Vec<(usize, String, PathBuf)> = entries
            .iter()
            .map(|(entry, position, name)| (*position, name.clone(), entry.dir.clone()))
            .collect();
        for (entry, position, name) in &mut entries {
            entry.shadowed = keys.iter().any(|(p, n, _)| p < position && n == name);
            entry.duplicates = keys
                .iter()
                .filter(|(p, n, dir)| p == position && n == name && *dir != entry.dir)
                .map(|(_, _, dir)| dir.clone())
                .collect();
        }
        entries.into_iter().map(|(entry, _, _)| entry).collect()
    }

    /// The other bundles that share the name of the bundle at `path` (its
    /// directory, its manifest or its `.md` file) in its registry: empty
    /// when the name is unique there, or `path` is in no registry.
    pub fn duplicates_of(&self, path: &Path) -> Vec<PathBuf> {
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
        let target = canonical(path);
        self.entries()
            .into_iter()
            .find(|entry| {
                let dir = canonical(&entry.dir);
                dir == target || dir.join(MANIFEST_FILE) == target
            })
            .map(|entry| entry.duplicates)
            .unwrap_or_default()
    }

    /// Load the Markdown definition at `path`, to run with the first
    /// `prompt-agent` bundle in the registries, else in the directory
    /// holding the definition.
    ///
    /// # Errors
    ///
    /// [`BundleError::NotFound`] when there is no file, [`BundleError::Manifest`]
    /// for an invalid definition, [`BundleError::NoRunner`] when no usable
    /// `prompt-agent` bundle is found.
    pub fn open_definition(&self, path: &Path) -> Result<Bundle, BundleError> {
        if !path.is_file() {
            return Err(BundleError::NotFound {
                path: path.to_owned(),
                reason: if path.exists() {
                    "it is not a file".to_owned()
                } else {
                    "it does not exist".to_owned()
                },
            });
        }
        let definition = Definition::load(path)?;
        let own_dir = match path.parent() {
            Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
            Some(dir) => dir,
            None => Path::new("."),
        };
        with_runner(definition, &self.find_runner(Some(own_dir)))
    }

    /// The manifest of the first bundle named `prompt-agent` in the
    /// registries (then in `also`), or why there is none to use.
    fn find_runner(&self, also: Option<&Path>) -> Result<Manifest, RunnerProblem> {
        let mut dirs = self.dirs.clone();
        if let Some(dir) = also
            && !dirs.iter().any(|d| d == dir)
        {
            dirs.push(dir.to_owned());
        }
        let mut bundles: Vec<(PathBuf, Result<Bundle, BundleError>)> = Vec::new();
        'registries: for registry in &dirs {
            for (dir, bundle) in read_registry(registry, false) {
                let Some(bundle) = bundle else { continue };
                let hit = match &bundle {
                    Ok(bundle) => bundle.name() == RUNNER,
                    Err(_) => dir.file_name().is_some_and(|n| n == RUNNER),
                };
                bundles.push((dir, bundle));
                if hit {
                    break 'registries;
                }
            }
        }
        first_runner(bundles.iter().map(|(dir, b)| (dir.as_path(), b)), &dirs)
    }

    /// Resolve a subagent by name only (never a path).
    ///
    /// # Errors
    ///
    /// The bundle's own error, [`BundleError::Duplicate`] when the first
    /// registry that has the name has it more than once, or
    /// [`BundleError::UnknownName`].
    pub fn resolve_name(&self, name: &str) -> Result<Bundle, BundleError> {
        let entries = self.entries();
        if let Some(entry) = entries.into_iter().find(|e| e.name() == name) {
            if !entry.duplicates.is_empty() {
                let mut paths = entry.duplicates;
                paths.push(entry.dir);
                paths.sort();
                return Err(BundleError::Duplicate {
                    name: name.to_owned(),
                    registry: entry.registry,
                    paths,
                });
            }
            return entry.bundle;
        }
        Err(self.unknown(name))
    }

    fn unknown(&self, name: &str) -> BundleError {
        let known: Vec<String> = self
            .entries()
            .iter()
            .filter(|e| e.bundle.is_ok())
            .map(Entry::name)
            .collect();
        let known_refs: Vec<&str> = known.iter().map(String::as_str).collect();
        let help = match crate::manifest::did_you_mean(name, &known_refs) {
            Some(best) => format!("did you mean `{best}`?"),
            None if known.is_empty() => {
                "no subagents are installed; pass a bundle path, or add one with --agents DIR"
                    .to_owned()
            }
            None => format!("known subagents: {}", known.join(", ")),
        };
        let searched = self
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        BundleError::UnknownName {
            name: name.to_owned(),
            searched,
            help,
        }
    }

    /// Resolve `spec`: a path to a bundle, else a name in the registries.
    /// The one rule every face uses (`run`, `validate`, `batch`, the task
    /// manager): [`Registries::resolve_in`] with paths relative to the
    /// current directory.
    ///
    /// # Errors
    ///
    /// The bundle's own error, or [`BundleError::UnknownName`] with the
    /// closest known name.
    pub fn resolve(&self, spec: &str) -> Result<Bundle, BundleError> {
        self.resolve_in(spec, Path::new(""))
    }

    /// Resolve `spec`, with a path taken relative to `base`. It is a path
    /// when it looks like one (it has a `/`, ends in `.toml` or is a Markdown
    /// definition's file name), when something exists there, or when it
    /// cannot be a name; else it is a name in the registries.
    ///
    /// # Errors
    ///
    /// As [`Registries::resolve`].
    pub fn resolve_in(&self, spec: &str, base: &Path) -> Result<Bundle, BundleError> {
        match spec_path(spec, base) {
            Some(path) => self.open_path(&path),
            None => self.resolve_name(spec),
        }
    }

    /// Open the bundle, manifest or Markdown definition at `path`.
    ///
    /// # Errors
    ///
    /// The bundle's or the definition's own error.
    pub fn open_path(&self, path: &Path) -> Result<Bundle, BundleError> {
        if definitions::is_definition_file(path) && path.is_file() {
            self.open_definition(path)
        } else {
            Bundle::open(path)
        }
    }
}

/// The path `spec` names (relative to `base`), or `None` when it is a name:
/// the one rule of every face. It is a path when it looks like one (it has a
/// `/`, ends in `.toml` or is a Markdown definition's file name), when
/// something exists there, or when it cannot be a name.
pub fn spec_path(spec: &str, base: &Path) -> Option<PathBuf> {
    let path = base.join(spec);
    let looks_like_path = spec.contains('/')
        || spec.ends_with(".toml")
        || definitions::is_definition_file(Path::new(spec))
        || path.exists();
    (looks_like_path || !crate::manifest::valid_name(spec)).then_some(path)
}

type Loaded = Result<Bundle, BundleError>;

/// The bundle directories of `registry` (opened) and, with `definitions`,
/// its Markdown definitions (`None`: loaded by the caller, which finds
/// their runner), sorted by path. The built-in registry comes from memory:
/// its bundles are parsed once per process from the text the binary
/// carries, not read again for every lookup.
fn read_registry(registry: &Path, definitions: bool) -> Vec<(PathBuf, Option<Loaded>)> {
    if crate::builtin::is_registry(registry) {
        return crate::builtin::bundles()
            .iter()
            .map(|(dir, bundle)| (dir.clone(), Some(Ok(bundle.clone()))))
            .collect();
    }
    let Ok(read) = std::fs::read_dir(registry) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.join(MANIFEST_FILE).is_file()
                || (definitions && definitions::is_definition_file(p) && p.is_file())
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bundle = (!definitions::is_definition_file(&path)).then(|| Bundle::open(&path));
            (path, bundle)
        })
        .collect()
}

/// Why no `prompt-agent` can run a definition.
#[derive(Clone, Debug)]
struct RunnerProblem {
    reason: String,
    help: String,
}

/// The manifest of the first of `bundles` named `prompt-agent` (a broken
/// bundle by its directory name), or why there is none to use.
fn first_runner<'b>(
    bundles: impl IntoIterator<Item = (&'b Path, &'b Result<Bundle, BundleError>)>,
    searched: &[PathBuf],
) -> Result<Manifest, RunnerProblem> {
    for (dir, bundle) in bundles {
        match bundle {
            Ok(bundle) if bundle.name() == RUNNER => return Ok(bundle.manifest.clone()),
            Err(err) if dir.file_name().is_some_and(|n| n == RUNNER) => {
                let text = err.to_string();
                let first = text.lines().next().unwrap_or_default();
                return Err(RunnerProblem {
                    reason: format!(
                        "the `{RUNNER}` bundle at {} is broken: {first}",
                        dir.display()
                    ),
                    help: format!(
                        "fix it (`subagent validate {}` shows the whole error), or {RUNNER_HELP}",
                        dir.display()
                    ),
                });
            }
            _ => {}
        }
    }
    let searched: Vec<String> = searched.iter().map(|d| d.display().to_string()).collect();
    Err(RunnerProblem {
        reason: format!(
            "no registry has a `{RUNNER}` bundle (searched: {})",
            if searched.is_empty() {
                "none".to_owned()
            } else {
                searched.join(", ")
            }
        ),
        help: RUNNER_HELP.to_owned(),
    })
}

fn with_runner(
    definition: Definition,
    runner: &Result<Manifest, RunnerProblem>,
) -> Result<Bundle, BundleError> {
    match runner {
        Ok(runner) => Ok(Bundle::from_definition(definition, runner)),
        Err(problem) => Err(BundleError::NoRunner {
            name: definition.name,
            path: definition.path,
            reason: problem.reason.clone(),
            help: problem.help.clone(),
        }),
    }
}
