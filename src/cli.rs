//! The command line as the user typed it (clap derive). Nothing here checks or resolves
//! anything: [`crate::app`] turns these values into a resolved configuration.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "clustersweep",
    version,
    about = "Which accelerator, how many, on what network and with which parallel layout trains \
             this model fastest, cheapest or within this power envelope.",
    after_help = "Exit codes: 0 success, 1 the run failed, 2 invalid input, 3 a requested check failed."
)]
pub struct Cli {
    /// Extra catalog file(s) of accelerators, efficiency families or model presets; entries
    /// replace built-in ones of the same id.
    #[arg(long, global = true, value_name = "FILE")]
    pub catalog: Vec<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Estimate one layout: step time, breakdown, memory, MFU, time to train, energy, cost.
    Estimate(EstimateArgs),
    /// Predict every measured run in a CSV file and report the error.
    Validate(ValidateArgs),
    /// List the accelerators, efficiency families and model presets, with their sources.
    Catalog(CatalogArgs),
    /// Refit the efficiency families to measured runs (how the catalog's constants were made).
    Fit(FitArgs),
}

/// How to print a result.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print JSON instead of a table.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// Scenario file (TOML). Without it, the built-in default scenario runs
    /// (see `clustersweep estimate --print-default`).
    pub scenario: Option<PathBuf>,
    /// Print the built-in default scenario file and exit.
    #[arg(long, conflicts_with = "scenario")]
    pub print_default: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Runs file in the format of tests/data/measured-runs.csv.
    pub runs: PathBuf,
    /// Exit with code 3 when the mean absolute percentage error over the rows with a measured
    /// step time exceeds this many percent.
    #[arg(long, value_name = "PCT")]
    pub max_mape: Option<f64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    /// Runs file in the format of tests/data/measured-runs.csv.
    pub runs: PathBuf,
    /// Nelder-Mead iterations per round (three rounds per family).
    #[arg(long, default_value_t = 400)]
    pub iterations: usize,
    /// Also report leave-one-group-out cross-validation (refit without each group, price it).
    #[arg(long)]
    pub cross_validate: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}
