//! The `harness` binary: parse the command line, hand it to the library, turn the outcome into an
//! exit code. Nothing else lives here.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = harness::cli::Cli::parse();
    harness::cli::run(cli)
}
