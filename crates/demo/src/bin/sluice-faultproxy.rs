fn main() -> std::process::ExitCode {
    sluice_demo::faultproxy::main()
}
