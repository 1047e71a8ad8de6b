fn main() -> std::process::ExitCode {
    sluice_test_support::faultproxy::cli::main()
}
