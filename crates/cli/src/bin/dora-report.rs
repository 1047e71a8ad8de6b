fn main() -> std::process::ExitCode {
    sluice_cli::dora_report::main()
}
