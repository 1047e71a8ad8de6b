fn main() -> std::process::ExitCode {
    sluice_cli::rollback::main()
}
