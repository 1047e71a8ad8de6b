fn main() -> std::process::ExitCode {
    sluice_router::cli::main()
}
