//! The command line as the user typed it (clap derive). Nothing here checks or resolves
//! anything: [`crate::app`] turns these values into a resolved configuration.

use crate::analysis::validate::Assume;
use crate::engine::search::Objective;
use crate::engine::sweep::bench::BenchSpace;
use crate::engine::sweep::driver::{Adapters, Backend};
use crate::report::emit::Framework;
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

    /// Write what the command prints (table, JSON, CSV, launch arguments) to FILE instead of
    /// stdout; `-` is stdout. The path is checked before the work starts.
    #[arg(short = 'o', long = "output", global = true, value_name = "FILE")]
    pub output_file: Option<PathBuf>,

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
    /// Evaluate every layout of a scenario's [search] space and print the best.
    Sweep(SweepArgs),
    /// Merge the JSON reports of sharded sweeps (`sweep --shard K/N --json`) into one.
    Merge(MergeArgs),
    /// List the wgpu adapters seen, their backend and limits.
    Adapters(AdaptersArgs),
    /// Layouts per second on a fixed built-in space of about 11 million layouts.
    Bench(BenchArgs),
    /// Design the cluster: accelerator, count and layout under a budget, a power envelope and a
    /// deadline.
    Plan(PlanArgs),
    /// Print an example scenario to start from: stargate (the default plan), estimate, sweep.
    Init(InitArgs),
    /// Print a shell completion script (bash: `clustersweep completions bash >
    /// ~/.local/share/bash-completion/completions/clustersweep`).
    Completions(CompletionsArgs),
    /// Print the manual page in roff (`clustersweep man > clustersweep.1; man ./clustersweep.1`).
    Man,
    /// Print the JSON Schema of a command's `--json` output (draft 2020-12), e.g. `clustersweep
    /// schema plan > plan.schema.json`.
    Schema(SchemaArgs),
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The command whose JSON the schema describes (`catalog-stacks`: `catalog --stacks`;
    /// `plan-shard`: `plan --shard K/N`).
    #[arg(value_enum)]
    pub command: crate::report::schema::JsonCommand,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
    /// Tables keep every column (otherwise they fit the terminal, or 100 columns in a pipe,
    /// moving columns with one value under the table and hiding the least needed).
    #[arg(long, conflicts_with_all = ["json", "csv"])]
    pub wide: bool,
}

#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// Scenario file (TOML). Without it, the built-in default scenario runs
    /// (see `clustersweep estimate --print-default`).
    pub scenario: Option<PathBuf>,
    /// Print the built-in default scenario file and exit.
    #[arg(long, conflicts_with = "scenario")]
    pub print_default: bool,
    /// A Hugging Face config.json whose model replaces the scenario's [model] (a local file;
    /// nothing is downloaded). To override some of its keys, write `[model] hf_config = "FILE"`
    /// and the keys in a scenario instead.
    #[arg(long, value_name = "FILE", conflicts_with = "print_default")]
    pub hf_config: Option<PathBuf>,
    /// Print the layout as this framework's launch arguments instead of the report.
    #[arg(long, value_enum, value_name = "FRAMEWORK", conflicts_with_all = ["json", "csv"])]
    pub emit: Option<Framework>,
    /// Confidence of the step-time and time-to-train intervals (the model's error on measured
    /// runs it was not fitted on; catalog/model-error.csv), strictly between 0 and 1.
    #[arg(long, value_name = "LEVEL", default_value_t = crate::analysis::uncertainty::DEFAULT_CONFIDENCE)]
    pub confidence: f64,
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
    /// What fills the knobs a row leaves empty: its stack's defaults (what the run's framework
    /// did), or the fastest value its stack can run that fits (exploration only).
    #[arg(long, value_enum, default_value_t = Assume::Stack)]
    pub assume: Assume,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// List the software stacks: what each can do and overlap, its defaults, its sources.
    #[arg(long)]
    pub stacks: bool,
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
    /// What fills the knobs a row leaves empty (as for `validate`).
    #[arg(long, value_enum, default_value_t = Assume::Stack)]
    pub assume: Assume,
    /// CSV of `run_id,reason`: rows the fit does not learn from (they are still priced by
    /// `validate` and by the held-out side of `--cross-validate`).
    #[arg(long, value_name = "FILE")]
    pub skip_runs: Option<PathBuf>,
    /// Write the fitted families as a catalog file that `--catalog FILE` loads (the report is
    /// still printed; `-o` sends it elsewhere).
    #[arg(long, value_name = "FILE")]
    pub write_catalog: Option<PathBuf>,
    /// Write each priced row's step time in sample and held out (refitted without its group) as
    /// a model-error file: what estimate's intervals are learned from (`catalog/model-error.csv`
    /// is this file for tests/data/measured-runs.csv). Implies --cross-validate.
    #[arg(long, value_name = "FILE")]
    pub write_model_error: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Scenario file (TOML) with a [search] section (every key optional).
    pub scenario: PathBuf,
    /// Where to evaluate: gpu, cpu, or auto (a hardware GPU if found, else the CPU).
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// With a GPU backend: the best adapter, or all of them splitting the space [default: best].
    /// Refused with `--backend cpu`, which uses none.
    #[arg(long, value_enum)]
    pub adapters: Option<Adapters>,
    /// How many layouts to report (1 to 100,000).
    #[arg(long, default_value_t = 20, value_parser = parse_top)]
    pub top: usize,
    /// What to rank by.
    #[arg(long, value_enum, default_value_t = Objective::Time)]
    pub objective: Objective,
    /// Evaluate the K-th of N equal slices of the index space (1 <= K <= N); merge the parts'
    /// JSON with `clustersweep merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// No progress bar (it is drawn only when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// Evaluate every layout. By default a sweep skips layouts whose block's bound on the
    /// objective cannot enter the top (the same top; they are counted as pruned, not as
    /// evaluated or valid).
    #[arg(long)]
    pub exhaustive: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Print the best layout (or the --emit-rank-th) as this framework's launch arguments
    /// instead of the table.
    #[arg(long, value_enum, value_name = "FRAMEWORK", conflicts_with_all = ["json", "csv"])]
    pub emit: Option<Framework>,
    /// Which ranked layout --emit writes (1 is the best).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "emit")]
    pub emit_rank: usize,
    #[command(flatten)]
    pub draws: DrawArgs,
}

/// How sure a ranking is: `--uncertainty` and what its draws are.
#[derive(Debug, Args)]
pub struct DrawArgs {
    /// Re-price the ranked entries under draws of the catalog's assumptions (catalog/assumptions.toml,
    /// the model's error included), every entry in the same draws, and report how often each is
    /// best (p_best) and which are statistically tied with the first.
    #[arg(long)]
    pub uncertainty: bool,
    /// How many draws --uncertainty takes (1 to 100,000).
    #[arg(long, value_name = "N", default_value_t = crate::analysis::uncertainty::DEFAULT_DRAWS, value_parser = parse_draws)]
    pub draws: usize,
    /// The draws' random seed: the same seed gives the same draws.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Confidence of the entries' intervals and of the ties (an entry is tied with the first
    /// when it beats it in at least (1 - LEVEL) / 2 of the draws), strictly between 0 and 1.
    #[arg(long, value_name = "LEVEL", default_value_t = crate::analysis::uncertainty::DEFAULT_CONFIDENCE)]
    pub confidence: f64,
}

/// `--draws`: a count from 1 to 100,000.
fn parse_draws(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => Err("expected a whole number from 1 to 100000".into()),
    }
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The parts' JSON reports.
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// How many layouts to keep (default: as many as the shallowest part kept; 1 to 100,000).
    #[arg(long, value_parser = parse_top)]
    pub top: Option<usize>,
    /// Merge parts that leave slices of the space unswept (a note names them).
    #[arg(long)]
    pub allow_partial: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct AdaptersArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Measure one backend (default: the CPU, and the GPU when an adapter is found, software
    /// adapters included).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// The fixed space to sweep: `default` (11.6 million layouts, the figures the README
    /// compares) or `large` (1.45e10 layouts with the network axes, for fast GPUs).
    #[arg(long, value_enum, default_value_t = BenchSpace::Default)]
    pub space: BenchSpace,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Scenario file (TOML) with [constraints]; without it, the built-in question: a 2T-parameter
    /// model on 100T tokens under $100B and 5 GW (`clustersweep init stargate` prints it).
    pub scenario: Option<PathBuf>,
    /// What to rank the feasible plans by.
    #[arg(long, value_enum, default_value_t = Objective::Time)]
    pub objective: Objective,
    /// Where to evaluate layouts.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Also report the Pareto set over time to train, cost and energy.
    #[arg(long)]
    pub pareto: bool,
    /// Draw the Pareto set (days against cost, energy and facility power, with the constraints)
    /// to this SVG file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Draw time to train and MFU against cluster size to this SVG file.
    #[arg(long, value_name = "FILE")]
    pub plot_scaling: Option<PathBuf>,
    /// Draw the step time of the ranked plans, stacked from its terms (compute, each exposed
    /// communication, bubble, overheads), to this SVG file.
    #[arg(long, value_name = "FILE")]
    pub plot_breakdown: Option<PathBuf>,
    /// How many ranked plans to report (1 to 100,000).
    #[arg(long, default_value_t = 10, value_parser = parse_top)]
    pub top: usize,
    /// Print the best plan's layout (or the --emit-rank-th) as this framework's launch
    /// arguments instead of the report.
    #[arg(long, value_enum, value_name = "FRAMEWORK", conflicts_with_all = ["json", "csv"])]
    pub emit: Option<Framework>,
    /// Which ranked plan --emit writes (1 is the best).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "emit")]
    pub emit_rank: usize,
    /// For each assumption of the catalog (catalog/assumptions.toml), the best plan and its time
    /// to train at the low and the high end of its range, the others at their central values,
    /// sorted by swing.
    #[arg(long)]
    pub sensitivity: bool,
    /// Draw the sensitivity as a tornado plot to this SVG file (implies --sensitivity).
    #[arg(long, value_name = "FILE")]
    pub plot_sensitivity: Option<PathBuf>,
    /// Plan the K-th of N slices of the (accelerator, count) pairs (1 <= K <= N), as one
    /// machine of N does, and print the part as JSON for `plan --merge`.
    #[arg(long, value_name = "K/N", conflicts_with_all = [
        "merge", "csv", "wide", "emit", "pareto", "plot", "plot_scaling", "plot_breakdown", "sensitivity",
        "plot_sensitivity", "uncertainty",
    ])]
    pub shard: Option<String>,
    /// Finish a sharded plan from the parts' JSON (`plan --shard K/N`), with the scenario and
    /// --catalog the shards ran; every other flag then works as without shards. Put the scenario
    /// before --merge.
    #[arg(long, value_name = "PART", num_args = 1.., conflicts_with_all = ["sensitivity", "plot_sensitivity"])]
    pub merge: Vec<PathBuf>,
    /// With --merge: finish the plan although some shards' parts are missing (a note names
    /// them, and the plans are of the pairs planned only).
    #[arg(long, requires = "merge")]
    pub allow_partial: bool,
    #[command(flatten)]
    pub draws: DrawArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// stargate, estimate or sweep.
    pub name: String,
}

/// Most entries `--top` may ask for: a top-k lives in memory, per engine thread.
pub const MAX_TOP: usize = 100_000;

/// `--top`: a count from 1 to [`MAX_TOP`].
fn parse_top(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_TOP).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {MAX_TOP}")),
    }
}
