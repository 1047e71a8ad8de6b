fn main() -> std::process::ExitCode {
    sluice_demo::app::main()
}
