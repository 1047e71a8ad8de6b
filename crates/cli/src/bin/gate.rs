fn main() -> std::process::ExitCode {
    sluice_cli::gate::main()
}
