//! Find and load subagent bundles: a directory holding `subagent.toml` and the
//! component it names, found by path or by name in the registries.
//!
//! Registries are searched in order: each `--agents DIR`, then
//! `<workspace>/.subagents/`, then the user's config dir
//! (`$XDG_CONFIG_HOME/subagent/agents`, else `~/.config/subagent/agents`).
//! A bundle found earlier shadows one of the same name found later.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::manifest::{MANIFEST_FILE, Manifest, ManifestError, PromptSource};

/// A loaded bundle: its manifest and its system prompt.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub manifest: Manifest,
    /// The system prompt, read from `prompt` or `prompt_file`.
    pub system_prompt: Option<String>,
}

/// Why a bundle could not be found, loaded or built.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("no bundle at `{}`: {reason}\n  = help: pass a bundle directory (holding {MANIFEST_FILE}), its {MANIFEST_FILE}, or the name of a subagent in a registry (`subagent list`)", path.display())]
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
    pub fn open(path: &Path) -> Result<Bundle, BundleError> {
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
        })
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
    pub dir: PathBuf,
    pub bundle: Result<Bundle, BundleError>,
    /// True when a bundle of the same name in an earlier registry wins.
    pub shadowed: bool,
}

impl Entry {
    /// The subagent's name, or the directory name for a broken bundle.
    pub fn name(&self) -> String {
        match &self.bundle {
            Ok(bundle) => bundle.name().to_owned(),
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
    /// then the user config dir.
    pub fn standard(extra: &[PathBuf], workspace: &Path) -> Registries {
        let mut dirs = extra.to_vec();
        dirs.push(workspace.join(".subagents"));
        if let Some(config) = crate::paths::config_dir() {
            dirs.push(config.join("agents"));
        }
        Registries { dirs }
    }

    /// Every bundle in every registry, in precedence order.
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = Vec::new();
        for registry in &self.dirs {
            let Ok(read) = std::fs::read_dir(registry) else {
                continue;
            };
            let mut dirs: Vec<PathBuf> = read
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join(MANIFEST_FILE).is_file())
                .collect();
            dirs.sort();
            for dir in dirs {
                let bundle = Bundle::open(&dir);
                let mut entry = Entry {
                    registry: registry.clone(),
                    dir,
                    bundle,
                    shadowed: false,
                };
                let name = entry.name();
                entry.shadowed = entries.iter().any(|e| e.name() == name);
                entries.push(entry);
            }
        }
        entries
    }

    /// Resolve a subagent by name only (never a path).
    ///
    /// # Errors
    ///
    /// The bundle's own error, or [`BundleError::UnknownName`].
    pub fn resolve_name(&self, name: &str) -> Result<Bundle, BundleError> {
        let entries = self.entries();
        if let Some(entry) = entries.into_iter().find(|e| e.name() == name) {
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
    ///
    /// # Errors
    ///
    /// The bundle's own error, or [`BundleError::UnknownName`] with the
    /// closest known name.
    pub fn resolve(&self, spec: &str) -> Result<Bundle, BundleError> {
        let path = Path::new(spec);
        let looks_like_path = spec.contains('/') || spec.ends_with(".toml") || path.exists();
        if looks_like_path || !crate::manifest::valid_name(spec) {
            return Bundle::open(path);
        }
        self.resolve_name(spec)
    }
}
