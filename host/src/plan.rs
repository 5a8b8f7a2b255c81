//! Decide what one task may do: its effective write set, tools and limits,
//! from the manifest, the launch request and (for nested tasks) the parent.
//! `subagent validate`, `subagent run` and the task manager all go through
//! here, so what `validate` prints is what a run gets.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::bundle::Bundle;
use crate::manifest::{Limits, MAX_TIMEOUT, PermissionMode, Tool};
use crate::sandbox::{Grant, Sandbox, SandboxError, WriteSet};
use crate::task::Permissions;
use crate::units::format_duration;

/// What a launch asks for, beyond the manifest.
#[derive(Clone, Debug, Default)]
pub struct PlanRequest {
    /// Narrow the writable directories to these (each must be allowed).
    pub write: Option<Vec<String>>,
    /// Write nothing, whatever the manifest allows.
    pub readonly: bool,
    /// Replace the manifest's timeout.
    pub timeout: Option<Duration>,
    /// For a nested task: what its parent has. The child gets at most this.
    pub parent: Option<ParentLimits>,
}

/// The ceiling a parent task puts on its children.
#[derive(Clone, Debug)]
pub struct ParentLimits {
    pub id: String,
    pub writes: WriteSet,
    pub tools: Vec<Tool>,
    /// Time left before the parent's deadline.
    pub remaining: Duration,
    /// The parent's own limits: a child gets at most its memory and
    /// filesystem limits.
    pub limits: Limits,
    /// The parent's opened grant (once it has started): the child's
    /// directories are opened beneath these handles, not by path.
    pub grant: Option<Arc<Grant>>,
}

/// The checked, effective setup of one task.
#[derive(Clone, Debug)]
pub struct Plan {
    pub permissions: Permissions,
    pub limits: Limits,
    pub sandbox: Sandbox,
}

/// Why a task cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("invalid timeout {}: it must be between 1ms and {}", format_duration(*.0), format_duration(MAX_TIMEOUT))]
    Timeout(Duration),
}

impl PlanError {
    /// Whether this is a refusal of more than was granted.
    pub fn is_denied(&self) -> bool {
        matches!(self, PlanError::Sandbox(err) if err.is_denied())
    }
}

/// Work out the effective permissions and limits of running `bundle` on
/// `workspace`. With `create`, missing write directories are created;
/// without, nothing on disk changes.
///
/// # Errors
///
/// [`PlanError`] when the request asks for more than the manifest (or the
/// parent) grants, a write directory leads outside the workspace, or the
/// workspace is unusable.
pub fn plan(
    bundle: &Bundle,
    workspace: &Path,
    request: &PlanRequest,
    create: bool,
) -> Result<Plan, PlanError> {
    let manifest = &bundle.manifest;
    let name = &manifest.name;
    let granted = WriteSet::from_manifest(
        manifest.permission_mode,
        manifest.allowed_write_directories.as_deref(),
    );
    let mut writes = if request.readonly {
        WriteSet::None
    } else if let Some(requested) = &request.write {
        let grant = match (&granted, manifest.permission_mode) {
            (_, PermissionMode::Readonly) => "permission_mode = \"readonly\"",
            (WriteSet::Workspace, _) => "permission_mode = \"default\"",
            _ => "allowed_write_directories",
        };
        granted.narrow(name, requested, grant)?
    } else {
        granted
    };
    let mut tools = manifest.tools.clone();
    let mut limits = manifest.limits.clone();
    if let Some(timeout) = request.timeout {
        if timeout.is_zero() || timeout > MAX_TIMEOUT {
            return Err(PlanError::Timeout(timeout));
        }
        limits.timeout = timeout;
    }
    if let Some(parent) = &request.parent {
        let grant = format!("the write set of its parent task {}", parent.id);
        if request.write.is_some() {
            // An explicit ask beyond the parent is refused, naming the limit.
            if let WriteSet::Dirs(dirs) = &writes {
                parent.writes.narrow(name, dirs, &grant)?;
            } else if writes == WriteSet::Workspace && parent.writes != WriteSet::Workspace {
                return Err(SandboxError::Denied {
                    subagent: name.clone(),
                    dir: ".".into(),
                    allowed: parent.writes.clone(),
                    grant,
                }
                .into());
            }
        }
        writes = writes.intersect(&parent.writes);
        tools.retain(|tool| parent.tools.contains(tool));
        limits.timeout = limits.timeout.min(parent.remaining);
        limits.memory = limits.memory.min(parent.limits.memory);
        limits.disk = limits.disk.min(parent.limits.disk);
        limits.files = limits.files.min(parent.limits.files);
        limits.open_files = limits.open_files.min(parent.limits.open_files);
        limits.result = limits.result.min(parent.limits.result);
    }
    let within = request.parent.as_ref().and_then(|p| p.grant.clone());
    let sandbox = match within {
        Some(parent) => Sandbox::within(parent, workspace, writes, create)?,
        None if create => Sandbox::new(workspace, writes)?,
        None => Sandbox::check(workspace, writes)?,
    };
    let permissions = Permissions {
        mode: manifest.permission_mode,
        writes: sandbox.writes().clone(),
        tools,
    };
    Ok(Plan {
        permissions,
        limits,
        sandbox,
    })
}
