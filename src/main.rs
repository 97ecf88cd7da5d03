use std::process::ExitCode;

use clap::Parser;
use hainit::cli::{self, Cli, LogFormat};
use tracing::Level;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if cli.global.verbose { Level::DEBUG } else { Level::INFO };
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(level).with_target(false);
    match cli.global.log_format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(exit_code = e.kind.exit_code(), "{e}");
            ExitCode::from(e.kind.exit_code())
        }
    }
}
