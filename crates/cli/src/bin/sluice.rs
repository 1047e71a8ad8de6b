fn main() -> std::process::ExitCode {
    sluice_cli::multicall::main()
}
