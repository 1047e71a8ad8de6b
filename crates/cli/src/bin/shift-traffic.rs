fn main() -> std::process::ExitCode {
    sluice_cli::shift_traffic::main()
}
