//! Running the commands: from what the user typed ([`crate::cli`]) to a resolved configuration,
//! to the model, to an exporter. Returns the text to print, or an [`Error`] that knows its exit
//! code.

use crate::analysis::draws::{bench_draws, mark_plans, mark_sweep, plan_ranking, sensitivity, sweep_ranking};
use crate::analysis::fit::{cross_validate, fit_catalog, fitted_catalog_toml};
use crate::analysis::plan::{example, plan, plan_merge, plan_shard, PlanPart, DEFAULT_PLAN, EXAMPLES};
use crate::analysis::uncertainty::{
    coverage, Interval, ModelError, Regime, DEFAULT_CONFIDENCE, DEFAULT_DRAWS,
};
use crate::analysis::validate::{read_runs, validate};
use crate::cli::{Cli, Command, EstimateArgs, FitArgs, MergeArgs, PlanArgs, SweepArgs, ValidateArgs};
use crate::engine::search::SearchSpace;
use crate::engine::sweep::bench::run_bench;
use crate::engine::sweep::driver::{
    merge_reports, open_engines, run_sweep, Adapters, Backend, GpuEngine, SweepReport,
};
use crate::engine::sweep::gpu::adapter_reports;
use crate::engine::sweep::SweepLayout;
use crate::error::Error;
use crate::input::catalog::Catalog;
use crate::input::scenario::{ScenarioFile, DEFAULT_SCENARIO};
use crate::model::flops::{active_params, total_params};
use crate::model::run::estimate;
use crate::options;
use crate::report::emit::{emit, Job};
use crate::report::export::{exporter, EstimateReport, FitReport};
use crate::report::plot::{breakdown_svg, pareto_svg, scaling_svg, tornado_svg};
use clap::CommandFactory;

fn internal(e: anyhow::Error) -> Error {
    Error::Internal(e.to_string())
}

/// Run one command and return what it prints on stdout.
pub fn run(cli: &Cli) -> Result<String, Error> {
    options::check_global(cli)?;
    let catalog = Catalog::load(&cli.catalog)?;
    match &cli.command {
        Command::Estimate(args) => run_estimate(args, &catalog),
        Command::Validate(args) => run_validate(args, &catalog, cli.output_file.as_deref()),
        Command::Catalog(args) if args.stacks => {
            exporter(args.output.json, args.output.csv, args.output.wide)
                .stacks(&catalog.stacks)
                .map_err(internal)
        }
        Command::Catalog(args) => exporter(args.output.json, args.output.csv, args.output.wide)
            .catalog(&catalog)
            .map_err(internal),
        Command::Fit(args) => run_fit(args, &catalog),
        Command::Sweep(args) => run_sweep_command(args, &catalog),
        Command::Merge(args) => run_merge(args),
        Command::Adapters(args) => exporter(args.json, false, false)
            .adapters(&adapter_reports())
            .map_err(internal),
        Command::Bench(args) => {
            let mut report = run_bench(args.backend, args.space)?;
            // The draws are timed on the backends the layouts were (a software adapter too,
            // as run_bench does); a GPU that does not open is already in run_bench's notes.
            let gpu = match args.backend {
                Some(Backend::Cpu) => vec![],
                _ => open_engines(Backend::Gpu, Adapters::Best, &std::sync::Mutex::new(vec![]))
                    .unwrap_or_default(),
            };
            let cpu = matches!(args.backend, None | Some(Backend::Cpu));
            report.draws = bench_draws(cpu, gpu.first(), DEFAULT_DRAWS)?;
            exporter(args.json, false, false).bench(&report).map_err(internal)
        }
        Command::Plan(args) => run_plan(args, &catalog),
        Command::Completions(args) => {
            let mut script = vec![];
            clap_complete::generate(args.shell, &mut Cli::command(), "clustersweep", &mut script);
            String::from_utf8(script).map_err(|e| Error::Internal(e.to_string()))
        }
        Command::Man => {
            let mut page = vec![];
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| Error::Internal(e.to_string()))?;
            String::from_utf8(page).map_err(|e| Error::Internal(e.to_string()))
        }
        Command::Schema(args) => {
            serde_json::to_string_pretty(&crate::report::schema::json_schema(args.command))
                .map(|text| text + "\n")
                .map_err(|e| Error::Internal(e.to_string()))
        }
        Command::Init(args) => example(&args.name).map(str::to_string).ok_or_else(|| {
            Error::Usage(format!(
                "init {}: no such example{}; known: {}",
                args.name,
                crate::error::did_you_mean(&args.name, EXAMPLES),
                EXAMPLES.join(", ")
            ))
        }),
    }
}

/// Write a command's output where `--output` says (`None` or `-`: stdout).
pub fn write_output(path: Option<&std::path::Path>, text: &str) -> Result<(), Error> {
    match path.filter(|p| *p != std::path::Path::new("-")) {
        Some(path) => std::fs::write(path, text).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        }),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                // A closed pipe (`| head`) is not an error worth a message.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(Error::Io {
                    path: "stdout".into(),
                    source: e,
                }),
                Ok(()) => Ok(()),
            }
        }
    }
}

/// The engines `--uncertainty`'s draws are priced on: where the sweep or plan ran (`backend`, as
/// its report names it), a GPU when it ran on one; and what opening them noted.
fn draw_engines(backend: &str) -> Result<(Vec<GpuEngine>, Vec<String>), Error> {
    let notes = std::sync::Mutex::new(vec![]);
    let engines = if backend.starts_with("gpu") {
        open_engines(Backend::Gpu, Adapters::Best, &notes)?
    } else {
        vec![]
    };
    Ok((engines, notes.into_inner().expect("notes lock")))
}

/// The default-confidence interval of a ranked layout (see `uncertainty::ModelError`).
fn entry_interval(catalog: &Catalog, layout: &SweepLayout, moe: bool, confidence: f64) -> Option<Interval> {
    let accelerator = catalog.accelerator(&layout.accelerator)?;
    let regime = Regime {
        family: accelerator.efficiency.clone(),
        moe,
        accelerators: layout.count,
        stack: layout.stack.clone(),
        accelerator: layout.accelerator.clone(),
    };
    Some(ModelError::builtin().interval(&regime, confidence, None))
}

fn run_plan(args: &PlanArgs, catalog: &Catalog) -> Result<String, Error> {
    let options::PlanRun {
        plan: plan_options,
        draws,
        shard,
    } = options::plan_run(args)?;
    let confidence = draws.confidence;
    let (file, origin) = match &args.scenario {
        Some(path) => (ScenarioFile::read(path)?, path.display().to_string()),
        None => (
            ScenarioFile::parse(DEFAULT_PLAN, "(built-in plan)")?,
            "(built-in plan)".to_string(),
        ),
    };
    if let Some(shard) = shard {
        let part = plan_shard(&file, catalog, args.backend, shard, &origin)?;
        return crate::report::export::plan_part_json(&part).map_err(internal);
    }
    let mut report = if args.merge.is_empty() {
        plan(&file, catalog, &plan_options, &origin)?
    } else {
        let parts = args
            .merge
            .iter()
            .map(|path| {
                let part: PlanPart = read_json(path, "--merge ", "`plan --shard K/N` part")?;
                Ok((path.display().to_string(), part))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        plan_merge(&file, catalog, &plan_options, parts, args.allow_partial, &origin)?
    };
    let moe = report.model_shape.is_moe();
    report.interval_confidence = Some(confidence);
    let plans = report.plans.iter_mut().chain(&mut report.per_accelerator);
    let plans = plans
        .chain(report.pareto.iter_mut().flatten())
        .chain(&mut report.scaling);
    for p in plans {
        if let Some(i) = entry_interval(catalog, &p.layout, moe, confidence) {
            p.step_time_s_interval = Some(i.around(p.estimate.step_time_s));
            p.time_to_train_s_interval = Some(i.around(p.estimate.time_to_train_s));
        }
    }
    if args.draws.uncertainty && !report.plans.is_empty() {
        let (engines, notes) = draw_engines(&report.backend)?;
        let engine = engines.first();
        let ranking = plan_ranking(&file, catalog, &report, args.objective, engine, &draws, &origin)?;
        mark_plans(&mut report, ranking);
        report.notes.extend(notes);
    }
    if args.sensitivity || args.plot_sensitivity.is_some() {
        report.sensitivity = Some(sensitivity(&file, catalog, &plan_options, &report, &origin)?);
    }
    if let Some(path) = &args.plot_sensitivity {
        tornado_svg(&report, path).map_err(Error::Internal)?;
    }
    if let Some(path) = &args.plot {
        pareto_svg(&report, path).map_err(Error::Internal)?;
    }
    if let Some(path) = &args.plot_scaling {
        scaling_svg(&report, path).map_err(Error::Internal)?;
    }
    if let Some(path) = &args.plot_breakdown {
        breakdown_svg(&report, path).map_err(Error::Internal)?;
    }
    if let Some(framework) = args.emit {
        let plan = report
            .plans
            .get(args.emit_rank.saturating_sub(1))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--emit-rank {}: {} plans meet the constraints",
                    args.emit_rank,
                    report.plans.len()
                ))
            })?;
        let Some(launch) = plan.launch else {
            return Err(Error::Internal("the plan kept no layout to emit".into()));
        };
        return Ok(emit(
            framework,
            &Job {
                model_name: &report.model,
                model: &report.model_shape,
                training: &launch.training,
                layout: &launch.layout,
                accelerator: &plan.layout.accelerator,
                scale_up_domain: launch.scale_up_domain,
            },
        ));
    }
    exporter(args.output.json, args.output.csv, args.output.wide)
        .plan(&report)
        .map_err(internal)
}

fn run_sweep_command(args: &SweepArgs, catalog: &Catalog) -> Result<String, Error> {
    let options::SweepRun {
        sweep: sweep_options,
        draws,
    } = options::sweep_run(args)?;
    let origin = args.scenario.display().to_string();
    let file = ScenarioFile::read(&args.scenario)?;
    let space = SearchSpace::resolve(&file, catalog, args.objective, &origin)?;
    // Every ranked layout reports its cost: an accelerator without a price under the
    // scenario's pricing would print a cost it does not have.
    let unpriced: Vec<&str> = space
        .accelerators
        .iter()
        .filter(|a| !a.priced)
        .map(|a| a.spec.id.as_str())
        .collect();
    if !unpriced.is_empty() {
        let pricing = file.cluster.pricing.unwrap_or_default();
        return Err(Error::Scenario {
            origin,
            message: format!(
                "the catalog has no {} price for {}: set [cluster] {}, switch [cluster] pricing, or leave {} out of [search] accelerators",
                pricing.price_kind(),
                unpriced.join(", "),
                pricing.price_key(),
                if unpriced.len() == 1 { "it" } else { "them" }
            ),
        });
    }
    let mut report = run_sweep(&space, &sweep_options)?;
    let confidence = draws.confidence;
    report.interval_confidence = Some(confidence);
    for entry in &mut report.top {
        let interval = entry_interval(catalog, &entry.layout, space.model.is_moe(), confidence);
        if let Some(i) = interval {
            entry.step_time_s_interval = Some(i.around(entry.estimate.step_time_s));
            entry.time_to_train_s_interval = Some(i.around(entry.estimate.time_to_train_s));
        }
    }
    if args.draws.uncertainty && !report.top.is_empty() {
        let (engines, notes) = draw_engines(&report.backend)?;
        let engine = engines.first();
        let ranking = sweep_ranking(&file, catalog, &report, args.objective, engine, &draws, &origin)?;
        mark_sweep(&mut report, ranking);
        report.notes.extend(notes);
    }
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    if let Some(framework) = args.emit {
        let entry = report.top.get(args.emit_rank.saturating_sub(1)).ok_or_else(|| {
            Error::Usage(format!(
                "--emit-rank {}: the sweep ranked {} layouts",
                args.emit_rank,
                report.top.len()
            ))
        })?;
        let c = space
            .candidate(entry.index)
            .map_err(|e| Error::Internal(format!("ranked layout {} is invalid: {e:?}", entry.index)))?;
        let training = space.training_for(&c);
        let accelerator = &space.accelerators[c.accelerator];
        return Ok(emit(
            framework,
            &Job {
                model_name: &space.model_name,
                model: &space.model,
                training: &training,
                layout: &c.layout,
                accelerator: &accelerator.spec.id,
                scale_up_domain: accelerator.hardware.scale_up_domain,
            },
        ));
    }
    exporter(args.output.json, args.output.csv, args.output.wide)
        .sweep(&report)
        .map_err(internal)
}

/// A JSON report another run wrote (a shard's part): a read error names `path` (exit 1),
/// anything else that is not `what` names `flag` and `path` (exit 2).
fn read_json<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    flag: &str,
    what: &str,
) -> Result<T, Error> {
    let name = format!("{flag}{}", path.display());
    let text = crate::error::read_text(path, |m| Error::Usage(format!("{name}: {m}")))?;
    serde_json::from_str(&text).map_err(|e| Error::Usage(format!("{name}: not a {what}: {e}")))
}

fn run_merge(args: &MergeArgs) -> Result<String, Error> {
    let parts = args
        .parts
        .iter()
        .map(|path| read_json::<SweepReport>(path, "", "`sweep --json` report"))
        .collect::<Result<Vec<_>, Error>>()?;
    let report = merge_reports(parts, args.top, args.allow_partial).map_err(Error::Usage)?;
    exporter(args.output.json, args.output.csv, args.output.wide)
        .sweep(&report)
        .map_err(internal)
}

fn run_estimate(args: &EstimateArgs, catalog: &Catalog) -> Result<String, Error> {
    if args.print_default {
        return Ok(DEFAULT_SCENARIO.to_string());
    }
    let confidence = options::confidence(args.confidence)?;
    let (mut file, origin) = match &args.scenario {
        Some(path) => (ScenarioFile::read(path)?, path.display().to_string()),
        None => (
            ScenarioFile::parse(DEFAULT_SCENARIO, "(built-in default)")?,
            "(built-in default)".to_string(),
        ),
    };
    if let Some(config) = &args.hf_config {
        file.model = crate::input::scenario::ModelSection {
            hf_config: Some(config.display().to_string()),
            ..Default::default()
        };
    }
    let s = file.resolve(catalog, &origin)?;
    let e = estimate(&s.model, &s.training, &s.hardware, &s.economics, &s.layout);
    if let Some(term) = e.non_finite_term() {
        return Err(Error::Scenario {
            origin,
            message: format!(
                "the estimate's {term} is not a finite number: an input is beyond what f64 arithmetic holds (an override near 1e308 or 1e-300?); bring it to a physical value"
            ),
        });
    }
    if let Some(framework) = args.emit {
        return Ok(emit(framework, &Job::of_scenario(&s)));
    }
    let interval = ModelError::builtin().interval(&Regime::of_scenario(&s), confidence, None);
    let report = EstimateReport {
        step_time_s_interval: interval.around(e.step_time_s),
        time_to_train_s_interval: interval.around(e.time_to_train_s),
        interval,
        model: s.model_name.clone(),
        parameters: total_params(&s.model),
        active_parameters: active_params(&s.model),
        accelerator: s.accelerator.id.clone(),
        network: s.network,
        count: s.layout.accelerators(),
        stack: s.stack.id.clone(),
        attention_kernel: s.training.attention,
        layout: s.layout,
        global_batch: s.training.global_batch,
        seq_len: s.model.seq_len,
        tokens: s.training.tokens,
        dtype: s.training.dtype,
        pricing: s.economics.pricing,
        estimate: e,
    };
    exporter(args.output.json, args.output.csv, args.output.wide)
        .estimate(&report)
        .map_err(internal)
}

fn run_validate(
    args: &ValidateArgs,
    catalog: &Catalog,
    output_file: Option<&std::path::Path>,
) -> Result<String, Error> {
    let max_mape = options::max_mape(args)?;
    let rows = read_runs(&args.runs)?;
    let report = validate(&rows, catalog, args.assume);
    let text = exporter(args.output.json, args.output.csv, args.output.wide)
        .validation(&report)
        .map_err(internal)?;
    if let Some(limit) = max_mape {
        let failure = match &report.overall {
            // Nothing priced is not a pass.
            None => Some(format!(
                "--max-mape {limit} %: no row has a measured step time the model could price"
            )),
            Some(overall) if overall.mape_pct > limit => Some(format!(
                "MAPE {:.2} % over {} rows exceeds --max-mape {limit} %",
                overall.mape_pct, overall.rows
            )),
            Some(_) => None,
        };
        if let Some(failure) = failure {
            // The report still goes out, so the failing rows can be read.
            write_output(output_file, &text)?;
            return Err(Error::CheckFailed(failure));
        }
    }
    Ok(text)
}

/// The run ids of a `--skip-runs` file (`run_id,reason`, a reason for every row), each of which
/// must be a row of the runs file.
fn read_skipped_runs(
    path: &std::path::Path,
    rows: &[crate::analysis::validate::RunRow],
) -> Result<std::collections::BTreeSet<String>, Error> {
    let origin = path.display().to_string();
    let runs_err = |message: String| Error::Runs {
        origin: origin.clone(),
        message,
    };
    let text = crate::error::read_text(path, runs_err)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| runs_err(e.to_string()))?.clone();
    if headers.iter().collect::<Vec<_>>() != ["run_id", "reason"] {
        return Err(runs_err("expected the columns run_id,reason".into()));
    }
    let mut out = std::collections::BTreeSet::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| runs_err(e.to_string()))?;
        let line = i + 2;
        let id = record.get(0).unwrap_or_default().trim().to_string();
        if record.get(1).unwrap_or_default().trim().is_empty() {
            return Err(runs_err(format!(
                "line {line}: run {id} has no reason: say why the fit skips it"
            )));
        }
        if !rows.iter().any(|r| r.run_id == id) {
            return Err(runs_err(format!(
                "line {line}: run_id {id} is not a row of the runs file"
            )));
        }
        out.insert(id);
    }
    Ok(out)
}

fn run_fit(args: &FitArgs, catalog: &Catalog) -> Result<String, Error> {
    options::check_fit(args)?;
    let rows = read_runs(&args.runs)?;
    let skipped = match &args.skip_runs {
        Some(path) => read_skipped_runs(path, &rows)?,
        None => Default::default(),
    };
    let learned: Vec<_> = rows
        .iter()
        .filter(|r| !skipped.contains(&r.run_id))
        .cloned()
        .collect();
    let families = fit_catalog(&learned, catalog, args.iterations, args.assume, false);
    if let Some(path) = &args.write_catalog {
        let text = fitted_catalog_toml(catalog, &families, &args.runs.display().to_string())
            .map_err(Error::Internal)?;
        std::fs::write(path, text).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
    }
    let cross_validation = (args.cross_validate || args.write_model_error.is_some())
        .then(|| cross_validate(&rows, &skipped, catalog, args.iterations, args.assume));
    let predictions: Vec<_> = cross_validation
        .iter()
        .flatten()
        .flat_map(|h| h.predictions.iter().cloned())
        .collect();
    if let Some(path) = &args.write_model_error {
        std::fs::write(path, ModelError::to_csv(&predictions)).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
    }
    let interval_coverage =
        (!predictions.is_empty()).then(|| coverage(&ModelError { predictions }, DEFAULT_CONFIDENCE));
    let report = FitReport {
        families,
        cross_validation,
        interval_coverage,
    };
    exporter(args.json, false, false).fit(&report).map_err(internal)
}
