//! The `closer` binary: parse the command line, run the command, report errors plainly.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = closer::cli::Cli::parse();
    match closer::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
