fn main() -> std::process::ExitCode {
    beckon_gateway::cli::main()
}
