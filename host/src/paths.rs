//! Where the host keeps its files: config, cache and state directories, per
//! the XDG base-directory conventions.

use std::path::PathBuf;

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn xdg(var: &str, fallback: &str) -> Option<PathBuf> {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("subagent")),
        None => home().map(|h| h.join(fallback).join("subagent")),
    }
}

/// `$XDG_CONFIG_HOME/subagent`, else `~/.config/subagent`.
pub fn config_dir() -> Option<PathBuf> {
    xdg("XDG_CONFIG_HOME", ".config")
}

/// `$SUBAGENT_CACHE_DIR`, else `$XDG_CACHE_HOME/subagent`, else `~/.cache/subagent`.
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("SUBAGENT_CACHE_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => xdg("XDG_CACHE_HOME", ".cache"),
    }
}

/// `$XDG_STATE_HOME/subagent`, else `~/.local/state/subagent`.
pub fn state_dir() -> Option<PathBuf> {
    xdg("XDG_STATE_HOME", ".local/state")
}
