fn main() -> std::process::ExitCode {
    sluice_cli::verify_health::main()
}
