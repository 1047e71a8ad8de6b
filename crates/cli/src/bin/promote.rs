fn main() -> std::process::ExitCode {
    sluice_cli::promote::main()
}
