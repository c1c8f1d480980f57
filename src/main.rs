//! The clustersweep binary: parse the command line, run, print, exit with a meaningful code
//! (see `clustersweep::error`).

use clap::Parser;
use std::io::Write;

fn main() {
    let cli = clustersweep::cli::Cli::parse();
    match clustersweep::app::run(&cli) {
        Ok(text) => {
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
