//! The clustersweep binary: parse the command line, run, print, exit with a meaningful code
//! (see `clustersweep::error`).

use clap::Parser;

fn main() {
    let cli = clustersweep::cli::Cli::parse();
    let result = clustersweep::app::run(&cli)
        .and_then(|text| clustersweep::app::write_output(cli.output_file.as_deref(), &text));
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
