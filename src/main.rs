//! `s6-edge` command-line entry point: parses arguments and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = s6_edge::cli::Cli::parse();
    s6_edge::run(cli)
}
