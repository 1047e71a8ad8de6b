fn main() -> std::process::ExitCode {
    sluice_demo::loadgen::main()
}
