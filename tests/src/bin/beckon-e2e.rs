//! `beckon` itself, under another name so cargo builds it for the end-to-end tests.
fn main() -> std::process::ExitCode {
    beckon_gateway::cli::main()
}
