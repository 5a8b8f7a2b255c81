//! The `subagent` CLI, built inside the test crate so tests can run it.
fn main() -> std::process::ExitCode {
    subagent_host::cli::main()
}
