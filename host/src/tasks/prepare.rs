//! Preparing a launch: the one path from a [`LaunchRequest`] to a task ready
//! to queue. It resolves the subagent (a name or a path, by one rule), plans
//! its permissions and limits, loads its component, and chooses its model and
//! its concurrency key. `run`, `run --background`, `batch`, `validate` and the
//! task manager all prepare here, so what one accepts the others accept.
//!
//! Preparing changes nothing on disk: a missing write directory is created
//! when the task starts and opens its grant.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bundle::{Bundle, BundleError, Registries};
use crate::manifest::Tool;
use crate::model::broker::Models;
use crate::plan::{ParentLimits, Plan, PlanRequest, plan};
use crate::runtime::{LoadError, LoadedComponent, Runtime};

use super::{LaunchRequest, ManagerError, SubagentRef};

/// What a parent task passes down to a child being prepared, read under the
/// manager's lock.
#[derive(Clone, Debug)]
pub(super) struct Parent {
    pub limits: ParentLimits,
    pub workspace: PathBuf,
    pub model: Option<String>,
    pub depth: u32,
}

/// Turns launch requests into [`Prepared`] tasks. It holds only the services
/// preparing reads: the runtime that loads components, the host's models,
/// and the extra registries searched for subagents by name.
#[derive(Clone)]
pub struct Preparer {
    runtime: Arc<Runtime>,
    models: Arc<Models>,
    agents: Vec<PathBuf>,
}

/// A launch request, checked and resolved: what the task will run, with
/// what permissions, limits and model, queued under which key. Nothing in it
/// can be changed before it is launched.
pub struct Prepared {
    pub(super) request: LaunchRequest,
    pub(super) bundle: Bundle,
    pub(super) plan: Plan,
    pub(super) model: Option<String>,
    /// The name the launch or the manifest gave, for a task that uses a model.
    pub(super) requested_model: Option<String>,
    /// Set when that name does not resolve here and the default stands in.
    pub(super) model_warning: Option<String>,
    pub(super) model_problem: Option<String>,
    pub(super) uses_model: bool,
    pub(super) key: String,
    pub(super) depth: u32,
    pub(super) component: Option<Arc<LoadedComponent>>,
    runtime: Arc<Runtime>,
}

impl Preparer {
    /// A preparer loading components with `runtime`, checking models against
    /// `models`, and searching `agents` first for subagents by name.
    pub fn new(runtime: Arc<Runtime>, models: Arc<Models>, agents: Vec<PathBuf>) -> Preparer {
        Preparer {
            runtime,
            models,
            agents,
        }
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    pub fn models(&self) -> &Arc<Models> {
        &self.models
    }

    /// Find the bundle `subagent` refers to, in the registries of `workspace`.
    ///
    /// # Errors
    ///
    /// The bundle's own error, or an unknown name with the closest known one.
    pub fn resolve(&self, subagent: SubagentRef, workspace: &Path) -> Result<Bundle, BundleError> {
        let registries = || Registries::standard(&self.agents, workspace);
        match subagent {
            SubagentRef::Bundle(bundle) => Ok(*bundle),
            SubagentRef::Path(path) => registries().open_path(&path),
            SubagentRef::Name(name) => registries().resolve_name(&name),
        }
    }

    /// Prepare `request` as a top-level task, loading its component. Loading
    /// may compile: call it off the async threads (the task manager's own
    /// [`super::TaskManager::prepare`] does that for you).
    ///
    /// # Errors
    ///
    /// [`ManagerError`]: an unknown subagent, permissions beyond the grant,
    /// a bad timeout, or a component that does not load. What
    /// [`Prepared::launchable`] checks is left to the launch.
    pub fn prepare(&self, request: LaunchRequest) -> Result<Prepared, ManagerError> {
        if request.parent.is_some() {
            return Err(ManagerError::InvalidRequest(
                "a nested task is prepared by the task manager that runs its parent".into(),
            ));
        }
        let mut prepared = self.stage(request, None)?;
        prepared.load()?;
        // It may wait long before it is launched: it holds no descriptor.
        prepared.plan.sandbox.park();
        Ok(prepared)
    }

    /// Everything but a compile: the component is set when it is already
    /// loaded, else left to [`Prepared::load`].
    pub(super) fn stage(
        &self,
        mut request: LaunchRequest,
        parent: Option<&Parent>,
    ) -> Result<Prepared, ManagerError> {
        // A child always works in its parent's workspace.
        if let Some(parent) = parent {
            request.workspace = parent.workspace.clone();
        }
        let subagent = std::mem::replace(&mut request.subagent, SubagentRef::Name(String::new()));
        let bundle = self.resolve(subagent, &request.workspace)?;
        let plan_request = PlanRequest {
            write: request.write.clone(),
            readonly: request.readonly,
            timeout: request.timeout,
            parent: parent.map(|p| p.limits.clone()),
        };
        let plan = plan(&bundle, &request.workspace, &plan_request, false)?;
        if plan.sandbox.workspace() == Path::new("/")
            && *plan.sandbox.writes() != crate::sandbox::WriteSet::None
        {
            return Err(ManagerError::InvalidRequest(format!(
                "the workspace is `/`: subagent `{}` could write anywhere on this machine; pass a project directory with --workspace, or run it --readonly",
                bundle.manifest.name
            )));
        }
        let manifest = &bundle.manifest;

        // Launch override > manifest > host default; `inherit` takes the
        // parent's (a top-level task has none, so it gets the default). The
        // host's models decide what the name resolves to.
        let uses_model = plan.permissions.tools.contains(&Tool::Model);
        let requested = request.model.clone().or_else(|| manifest.model.clone());
        let parent_model = parent.and_then(|p| p.model.clone());
        let mut model = effective_model(requested.clone(), parent_model.clone());
        let (mut requested_model, mut model_warning, mut model_problem) = (None, None, None);
        if uses_model {
            match self
                .models
                .decide(requested.as_deref(), parent_model.as_deref())
            {
                Ok(choice) => {
                    model_problem = self.models.check(&choice.model).err();
                    model = Some(choice.model);
                    requested_model = choice.requested;
                    model_warning = choice.warning;
                }
                // It would fail at its first model call: refuse it now.
                Err(refusal) => {
                    model = refusal.model;
                    model_problem = Some(refusal.problem);
                    requested_model = requested;
                }
            }
        }
        // The effective model is the concurrency key of a task that uses one.
        let key = match (&model, uses_model) {
            (Some(model), true) => model.clone(),
            _ => manifest.name.clone(),
        };
        // The request as it resolved: by the bundle's path and the canonical
        // workspace, so another process (`run --background`) resolves it the
        // same way from anywhere.
        let manifest_path = if manifest.path.is_absolute() {
            manifest.path.clone()
        } else {
            std::path::absolute(&manifest.path).unwrap_or_else(|_| manifest.path.clone())
        };
        request.subagent = SubagentRef::Path(manifest_path);
        request.workspace = plan.sandbox.workspace().to_owned();
        let component = self
            .runtime
            .loaded(&manifest.component, manifest.sha256.as_deref());
        Ok(Prepared {
            request,
            plan,
            model,
            requested_model,
            model_warning,
            model_problem,
            uses_model,
            key,
            depth: parent.map_or(0, |p| p.depth + 1),
            component,
            bundle,
            runtime: self.runtime.clone(),
        })
    }
}

impl Prepared {
    /// Whether it can be launched as it is: its prompt says something and
    /// the host config can serve its model. [`Preparer::prepare`] leaves
    /// these to the launch so `validate` can report on a bundle with no
    /// prompt and on a model this host lacks.
    ///
    /// # Errors
    ///
    /// [`ManagerError::InvalidRequest`] naming the problem.
    pub fn launchable(&self) -> Result<(), ManagerError> {
        if self.request.prompt.trim().is_empty() {
            return Err(ManagerError::InvalidRequest(
                "the prompt is empty: say what the subagent should do".into(),
            ));
        }
        if let Some(problem) = &self.model_problem {
            return Err(ManagerError::InvalidRequest(match &self.model {
                Some(model) => format!(
                    "subagent `{}` uses model `{model}`: {problem}",
                    self.bundle.manifest.name
                ),
                None => format!("subagent `{}` has {problem}", self.bundle.manifest.name),
            }));
        }
        Ok(())
    }

    /// The request as resolved: the subagent by its bundle's absolute path,
    /// the workspace canonical.
    pub fn request(&self) -> &LaunchRequest {
        &self.request
    }

    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// The effective permissions, limits and sandbox.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The effective model, when the subagent has or inherits one.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The model name the launch or the manifest gave (`inherit`
    /// included), for a task that uses a model; `None` when neither gave
    /// one and the host default applies.
    pub fn requested_model(&self) -> Option<&str> {
        self.requested_model.as_deref()
    }

    /// Set when [`Prepared::requested_model`] does not resolve on this host
    /// and the default model stands in for it: says so, and how to choose.
    pub fn model_warning(&self) -> Option<&str> {
        self.model_warning.as_deref()
    }

    /// Why the host config cannot serve [`Prepared::model`], if it cannot.
    pub fn model_problem(&self) -> Option<&str> {
        self.model_problem.as_deref()
    }

    /// Whether the task may call the model (it has the `model` tool).
    pub fn uses_model(&self) -> bool {
        self.uses_model
    }

    /// The concurrency key: the effective model of a task that uses one,
    /// else the subagent's name.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How deep below a top-level task it runs.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The component, once loaded.
    pub fn component(&self) -> Option<&Arc<LoadedComponent>> {
        self.component.as_ref()
    }

    /// The runtime it was prepared for, which loads and runs it.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Load the component (a stat when it is already loaded; otherwise
    /// blocking work that may compile).
    ///
    /// # Errors
    ///
    /// [`LoadError`] saying what is wrong with the component.
    pub fn load(&mut self) -> Result<Arc<LoadedComponent>, LoadError> {
        if let Some(component) = &self.component {
            return Ok(component.clone());
        }
        let m = &self.bundle.manifest;
        let component = self
            .runtime
            .load(&m.name, &m.component, m.sha256.as_deref(), &m.path)?;
        self.component = Some(component.clone());
        Ok(component)
    }
}

/// `inherit` takes the parent's model; no model asked for is none.
fn effective_model(requested: Option<String>, parent: Option<String>) -> Option<String> {
    match requested {
        Some(model) if model == "inherit" => parent,
        Some(model) => Some(model),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::effective_model;

    #[test]
    fn inherit_takes_the_parents_model_and_an_explicit_one_wins() {
        let s = |m: &str| Some(m.to_owned());
        assert_eq!(effective_model(s("inherit"), s("opus")), s("opus"));
        assert_eq!(effective_model(s("inherit"), None), None);
        assert_eq!(effective_model(s("haiku"), s("opus")), s("haiku"));
        assert_eq!(effective_model(None, s("opus")), None);
    }
}
