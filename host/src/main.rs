fn main() -> std::process::ExitCode {
    subagent_host::cli::main()
}
