//! Decide what one task may do: its effective write set, tools and limits,
//! from the manifest, the launch request and (for nested tasks) the parent.
//! `subagent validate`, `subagent run` and the task manager all go through
//! here, so what `validate` prints is what a run gets.

use std::path::Path;
use std::time::Duration;

use crate::bundle::Bundle;
use crate::manifest::{Limits, MAX_TIMEOUT};
use crate::sandbox::{Sandbox, SandboxError, WriteSet};
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

/// Work out the effective permissions and limits of running `bundle` on
/// `workspace`. With `create`, missing write directories are created;
/// without, nothing on disk changes.
///
/// # Errors
///
/// [`PlanError`] when the request asks for more than the manifest grants, a
/// write directory leads outside the workspace, or the workspace is unusable.
pub fn plan(
    bundle: &Bundle,
    workspace: &Path,
    request: &PlanRequest,
    create: bool,
) -> Result<Plan, PlanError> {
    let manifest = &bundle.manifest;
    let granted = WriteSet::from_manifest(
        manifest.permission_mode,
        manifest.allowed_write_directories.as_deref(),
    );
    let writes = if request.readonly {
        WriteSet::None
    } else if let Some(requested) = &request.write {
        let grant = match (&granted, manifest.permission_mode) {
            (_, crate::PermissionMode::Readonly) => "permission_mode = \"readonly\"",
            (WriteSet::Workspace, _) => "permission_mode = \"default\"",
            _ => "allowed_write_directories",
        };
        granted.narrow(&manifest.name, requested, grant)?
    } else {
        granted
    };
    let sandbox = if create {
        Sandbox::new(workspace, writes)?
    } else {
        Sandbox::check(workspace, writes)?
    };
    let mut limits = manifest.limits.clone();
    if let Some(timeout) = request.timeout {
        if timeout.is_zero() || timeout > MAX_TIMEOUT {
            return Err(PlanError::Timeout(timeout));
        }
        limits.timeout = timeout;
    }
    let permissions = Permissions {
        mode: manifest.permission_mode,
        writes: sandbox.writes().clone(),
        tools: manifest.tools.clone(),
    };
    Ok(Plan {
        permissions,
        limits,
        sandbox,
    })
}
