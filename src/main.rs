//! The clustersweep binary: parse the command line, run, print, exit with a meaningful code
//! (see `clustersweep::error`).

use clap::Parser;
use std::io::Write;

fn main() {
    let cli = clustersweep::cli::Cli::parse();
    match clustersweep::app::run(&cli) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                Ok(()) => {}
                // A closed pipe (`| head`) is not an error worth a message.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                // A full disk or a failed device: the output is lost, so the run failed.
                Err(e) => {
                    eprintln!("error: writing the output to stdout: {e}");
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
