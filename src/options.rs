//! What the user typed ([`crate::cli`]), resolved and cross-checked before any work starts:
//! each command's options as the engines and analyses take them. An error names the flag and
//! the fix (exit code 2), so that a flag the command would ignore or a rank it cannot report is
//! refused up front instead of after a sweep, or silently.

use crate::analysis::draws::DrawOptions;
use crate::analysis::plan::PlanOptions;
use crate::analysis::uncertainty::check_confidence;
use crate::cli::{Cli, DrawArgs, FitArgs, PlanArgs, SweepArgs, ValidateArgs};
use crate::engine::sweep::driver::{parse_shard, Adapters, Backend, SweepOptions};
use crate::error::Error;
use std::path::Path;

/// Checks that every command shares: `--output` names a file that can be written.
pub fn check_global(cli: &Cli) -> Result<(), Error> {
    match &cli.output_file {
        Some(path) => check_output_path("--output", path, None),
        None => Ok(()),
    }
}

/// Refuse, before any work, an output path whose directory does not exist or (with
/// `extension`) whose name asks for a format that is not written.
pub fn check_output_path(flag: &str, path: &Path, extension: Option<&str>) -> Result<(), Error> {
    if path == Path::new("-") {
        return Ok(());
    }
    if let Some(want) = extension {
        let given = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !given.eq_ignore_ascii_case(want) {
            return Err(Error::Usage(format!(
                "{flag} {}: plots are written as SVG; name the file *.{want} (convert it with e.g. `rsvg-convert -o plot.png plot.svg`)",
                path.display()
            )));
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "{flag} {}: the directory {} does not exist",
                path.display(),
                dir.display()
            )));
        }
    }
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "{flag} {}: is a directory; give a file name",
            path.display()
        )));
    }
    Ok(())
}

/// `--emit-rank N` must name a layout the command reports: 1 to `--top`.
fn check_emit_rank(emit_rank: usize, top: usize, emitting: bool) -> Result<(), Error> {
    if emitting && (emit_rank == 0 || emit_rank > top) {
        return Err(Error::Usage(format!(
            "--emit-rank {emit_rank}: the command reports layouts 1 to {top} (--top {top}); ask for one of those, or raise --top"
        )));
    }
    Ok(())
}

/// `--adapters` chooses among GPU adapters: with `--backend cpu` there are none to choose.
fn adapters(backend: Backend, given: Option<Adapters>) -> Result<Adapters, Error> {
    match (backend, given) {
        (Backend::Cpu, Some(a)) => Err(Error::Usage(format!(
            "--adapters {}: the CPU backend uses no GPU adapter; drop --adapters, or run on a GPU with --backend gpu (or auto)",
            clap::ValueEnum::to_possible_value(&a).map_or_else(String::new, |v| v.get_name().to_string())
        ))),
        (_, a) => Ok(a.unwrap_or(Adapters::Best)),
    }
}

/// `--shard K/N`, if given.
fn shard(text: Option<&str>) -> Result<Option<(u64, u64)>, Error> {
    text.map(parse_shard).transpose().map_err(Error::Usage)
}

/// `--draws`, `--seed` and `--confidence`.
fn draw_options(args: &DrawArgs) -> Result<DrawOptions, Error> {
    Ok(DrawOptions {
        draws: args.draws,
        seed: args.seed,
        confidence: confidence(args.confidence)?,
    })
}

/// `sweep`, resolved.
#[derive(Debug)]
pub struct SweepRun {
    pub sweep: SweepOptions,
    pub draws: DrawOptions,
}

pub fn sweep_run(args: &SweepArgs) -> Result<SweepRun, Error> {
    check_emit_rank(args.emit_rank, args.top, args.emit.is_some())?;
    Ok(SweepRun {
        sweep: SweepOptions {
            backend: args.backend,
            adapters: adapters(args.backend, args.adapters)?,
            top: args.top,
            shard: shard(args.shard.as_deref())?,
            progress: !args.no_progress,
            prune: !args.exhaustive,
        },
        draws: draw_options(&args.draws)?,
    })
}

/// `plan`, resolved.
#[derive(Debug)]
pub struct PlanRun {
    pub plan: PlanOptions,
    pub draws: DrawOptions,
    /// `--shard K/N`: compute this part only.
    pub shard: Option<(u64, u64)>,
}

pub fn plan_run(args: &PlanArgs) -> Result<PlanRun, Error> {
    for (flag, path) in [
        ("--plot", &args.plot),
        ("--plot-scaling", &args.plot_scaling),
        ("--plot-breakdown", &args.plot_breakdown),
        ("--plot-sensitivity", &args.plot_sensitivity),
    ] {
        if let Some(path) = path {
            check_output_path(flag, path, Some("svg"))?;
        }
    }
    check_emit_rank(args.emit_rank, args.top, args.emit.is_some())?;
    Ok(PlanRun {
        plan: PlanOptions {
            objective: args.objective,
            backend: args.backend,
            // The plot draws the Pareto set, so asking for it computes the set.
            pareto: args.pareto || args.plot.is_some(),
            top: args.top,
        },
        draws: draw_options(&args.draws)?,
        shard: shard(args.shard.as_deref())?,
    })
}

/// `validate --max-mape`: a percentage of at least 0, if given.
pub fn max_mape(args: &ValidateArgs) -> Result<Option<f64>, Error> {
    match args.max_mape {
        Some(limit) if !limit.is_finite() || limit < 0.0 => Err(Error::Usage(format!(
            "--max-mape {limit}: expected a percentage of at least 0"
        ))),
        limit => Ok(limit),
    }
}

/// `fit`'s output files can be written.
pub fn check_fit(args: &FitArgs) -> Result<(), Error> {
    for (flag, path) in [
        ("--write-catalog", &args.write_catalog),
        ("--write-model-error", &args.write_model_error),
    ] {
        if let Some(path) = path {
            check_output_path(flag, path, None)?;
        }
    }
    Ok(())
}

/// `--confidence` (of `estimate`, and of the draws of `sweep` and `plan`).
pub fn confidence(flag_value: f64) -> Result<f64, Error> {
    check_confidence("--confidence", flag_value).map_err(Error::Usage)
}
