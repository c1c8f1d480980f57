//! What the answer rests on: the ranked layouts and plans re-priced under drawn assumptions
//! (`--uncertainty`: how often each is best), and the plan at each end of each assumption's
//! range (`plan --sensitivity`).
//!
//! Every draw is one catalog ([`crate::analysis::uncertainty::drawn_catalogs`]) in which every candidate
//! is priced (common random numbers): candidates that share hardware and mechanisms move
//! together, so a ranking between them is sharper than their intervals. The candidates keep
//! their layouts; what a draw changes is what those layouts cost, how fast they run and whether
//! they still meet the constraints.

use crate::analysis::plan::{
    meets_values, pair_file, plan, plan_search, plan_words, PlanOptions, PlanReport, SensitivityRow,
};
use crate::analysis::uncertainty::{
    assumptions_at, assumptions_per_family, drawn_catalogs, rank_draws, ModelError, Regime,
};
use crate::engine::search::{Objective, SearchSpace};
use crate::engine::sweep::bench::{DrawBenchResult, BENCH_SCENARIO};
use crate::engine::sweep::driver::{
    price_draws, run_sweep, Adapters, Backend, GpuEngine, KeepPriced, Ranking, SweepOptions, SweepReport,
};
use crate::engine::sweep::SweepLayout;
use crate::error::Error;
use crate::input::catalog::assumptions::{apply, with_resolved_families};
use crate::input::catalog::Catalog;
use crate::input::scenario::ScenarioFile;
use rayon::prelude::*;

/// How many draws and from which seed.
#[derive(Clone, Copy, Debug)]
pub struct DrawOptions {
    pub draws: usize,
    pub seed: u64,
    /// Sets which candidates count as tied with the first (see [`Ranking`]).
    pub confidence: f64,
}

/// The drawn catalogs the candidates `layouts` are priced in: every assumption drawn at once,
/// the model's error per efficiency family at the largest of the candidates' clusters on it
/// (and that candidate's stack and accelerator).
fn candidate_draws(
    catalog: &Catalog,
    moe: bool,
    layouts: &[&SweepLayout],
    opts: &DrawOptions,
) -> Vec<Catalog> {
    let largest = |family: &str| {
        layouts
            .iter()
            .filter(|l| {
                catalog
                    .accelerator(&l.accelerator)
                    .is_some_and(|a| a.efficiency == family)
            })
            .max_by_key(|l| l.count)
            .map_or((1, String::new(), String::new()), |l| {
                (l.count, l.stack.clone(), l.accelerator.clone())
            })
    };
    let assumptions = assumptions_per_family(catalog, ModelError::builtin(), moe, largest);
    drawn_catalogs(catalog, &assumptions, opts.draws, opts.seed)
}

/// How the plan's ranked plans rank across draws: each plan's layout re-priced, in its own
/// (accelerator, network, count) space resolved from each drawn catalog, and held to the
/// constraints there: on `engine` when given (f32, a plan's draws of a chunk in one dispatch),
/// else on the CPU in f64.
pub fn plan_ranking(
    file: &ScenarioFile,
    catalog: &Catalog,
    report: &PlanReport,
    objective: Objective,
    engine: Option<&GpuEngine>,
    opts: &DrawOptions,
    origin: &str,
) -> Result<Ranking, Error> {
    let layouts: Vec<&SweepLayout> = report.plans.iter().map(|p| &p.layout).collect();
    let catalogs = candidate_draws(catalog, report.model_shape.is_moe(), &layouts, opts);
    let search = plan_search(file);
    let pairs: Vec<ScenarioFile> = report
        .plans
        .iter()
        .map(|p| {
            pair_file(
                file,
                &search,
                &p.layout.accelerator,
                &p.layout.network,
                p.layout.count,
            )
        })
        .collect();
    let constraints = &report.constraints;
    let keep = |power_mw: f64, cost_usd: f64, time_to_train_s: f64| {
        meets_values(constraints, power_mw, cost_usd, time_to_train_s)
    };
    // objectives[draw][plan], filled a plan (a column) at a time.
    let mut objectives = vec![Vec::with_capacity(pairs.len()); catalogs.len()];
    for (p, pair) in report.plans.iter().zip(&pairs) {
        let column = price_in_draws(
            pair,
            &catalogs,
            &[p.space_index],
            objective,
            engine,
            &keep,
            origin,
        )?;
        for (row, value) in objectives.iter_mut().zip(column.into_iter().map(|draw| draw[0])) {
            row.push(value);
        }
    }
    Ok(rank_draws(&objectives, opts.seed, opts.confidence))
}

/// Write a ranking into the plans it ranks.
pub fn mark_plans(report: &mut PlanReport, ranking: Ranking) {
    for (i, p) in report.plans.iter_mut().enumerate() {
        (p.p_best, p.tied_with_best) = ranking.marks(i);
    }
    report.uncertainty = Some(ranking);
}

/// How a sweep's top layouts rank across draws: the whole space resolved from each drawn
/// catalog and the top layouts re-priced in it, on `engine` when given (f32, every draw of a
/// chunk in one dispatch) or on the CPU in f64.
pub fn sweep_ranking(
    file: &ScenarioFile,
    catalog: &Catalog,
    report: &SweepReport,
    objective: Objective,
    engine: Option<&GpuEngine>,
    opts: &DrawOptions,
    origin: &str,
) -> Result<Ranking, Error> {
    let layouts: Vec<&SweepLayout> = report.top.iter().map(|t| &t.layout).collect();
    let catalogs = candidate_draws(catalog, file_is_moe(file, catalog, origin)?, &layouts, opts);
    let indices: Vec<u64> = report.top.iter().map(|t| t.index).collect();
    let objectives = price_in_draws(
        file,
        &catalogs,
        &indices,
        objective,
        engine,
        &|_, _, _| true,
        origin,
    )?;
    Ok(rank_draws(&objectives, opts.seed, opts.confidence))
}

/// Draws resolved and priced together by `price_in_draws`.
const DRAWS_PER_CHUNK: usize = 64;

/// `objectives[draw][i]`: the layouts at `indices` of `file`'s space resolved from each of
/// `catalogs`, priced by `price_draws`. The spaces are resolved (in parallel) and priced a
/// chunk at a time, so that a space with many accelerators and networks is not held once per
/// draw all at once.
fn price_in_draws(
    file: &ScenarioFile,
    catalogs: &[Catalog],
    indices: &[u64],
    objective: Objective,
    engine: Option<&GpuEngine>,
    keep: KeepPriced,
    origin: &str,
) -> Result<Vec<Vec<f64>>, Error> {
    let mut objectives = Vec::with_capacity(catalogs.len());
    for chunk in catalogs.chunks(DRAWS_PER_CHUNK) {
        let spaces: Result<Vec<SearchSpace>, Error> = chunk
            .par_iter()
            .map(|c| SearchSpace::resolve(file, c, objective, origin))
            .collect();
        objectives.extend(price_draws(engine, &spaces?, indices, keep)?);
    }
    Ok(objectives)
}

fn file_is_moe(file: &ScenarioFile, catalog: &Catalog, origin: &str) -> Result<bool, Error> {
    let (_, model) =
        crate::input::scenario::resolve_model(&file.model, catalog).map_err(|message| Error::Scenario {
            origin: origin.to_string(),
            message,
        })?;
    Ok(model.is_moe())
}

/// Write a ranking into the sweep's top entries.
pub fn mark_sweep(report: &mut SweepReport, ranking: Ranking) {
    for (i, t) in report.top.iter_mut().enumerate() {
        (t.p_best, t.tied_with_best) = ranking.marks(i);
    }
    report.uncertainty = Some(ranking);
}

/// The best plan at each end of each assumption's range, one assumption at a time, sorted by
/// swing (largest first). `central` is the plan at every assumption's central value: its best
/// plan's regime sets the model-error range.
pub fn sensitivity(
    file: &ScenarioFile,
    catalog: &Catalog,
    opts: &PlanOptions,
    central: &PlanReport,
    origin: &str,
) -> Result<Vec<SensitivityRow>, Error> {
    let regime = match central.plans.first() {
        Some(best) => Regime {
            family: catalog
                .accelerator(&best.layout.accelerator)
                .map(|a| a.efficiency.clone())
                .unwrap_or_default(),
            moe: central.model_shape.is_moe(),
            accelerators: best.layout.count,
            stack: best.layout.stack.clone(),
            accelerator: best.layout.accelerator.clone(),
        },
        None => {
            return Err(Error::Usage(
                "--sensitivity: no plan meets the constraints at the central assumptions, so there is none to vary".into(),
            ))
        }
    };
    let base = with_resolved_families(catalog);
    let quick = PlanOptions {
        pareto: false,
        top: 1,
        ..opts.clone()
    };
    let mut rows = vec![];
    for a in assumptions_at(catalog, ModelError::builtin(), &regime) {
        let central_value = a.central_value(catalog);
        let set_in_scenario = a.scales.iter().all(|path| {
            let key = path.split_once('.').map_or(path.as_str(), |(_, key)| key);
            file.cluster.sets(key) || file.search.as_ref().is_some_and(|s| s.lists(key))
        });
        let mut ends = vec![];
        for factor in [a.low, a.high] {
            if set_in_scenario {
                ends.push(central.plans.first().cloned());
                continue;
            }
            let mut c = base.clone();
            apply(&mut c, &a, factor);
            let r = plan(file, &c, &quick, origin)?;
            ends.push(r.plans.into_iter().next());
        }
        let days = |i: usize| ends[i].as_ref().map(|p| p.time_to_train_days);
        let swing_days = match (days(0), days(1)) {
            (Some(l), Some(h)) => (h - l).abs(),
            _ => f64::INFINITY,
        };
        rows.push(SensitivityRow {
            assumption: a.id.clone(),
            name: a.name.clone(),
            low: a.low,
            high: a.high,
            low_value: central_value.map(|v| v * a.low),
            high_value: central_value.map(|v| v * a.high),
            set_in_scenario,
            value_key: central_value.and(a.facility_key()).map(str::to_string),
            plan_low: ends[0].as_ref().map(plan_words),
            plan_high: ends[1].as_ref().map(plan_words),
            time_to_train_days_low: days(0),
            time_to_train_days_high: days(1),
            binding_low: ends[0].as_ref().map(|p| p.binding_constraint.kind),
            binding_high: ends[1].as_ref().map(|p| p.binding_constraint.kind),
            swing_days,
            source: a.source.clone(),
        });
    }
    rows.sort_by(|x, y| y.swing_days.total_cmp(&x.swing_days));
    Ok(rows)
}

/// Layouts `bench` re-prices per draw: a sweep's default top list.
const BENCH_CANDIDATES: usize = 20;

/// `bench`'s draws per second: the bench space's top 20 layouts (found by one CPU sweep) ranked
/// over `draws` draws, on each backend asked for (`gpu_engine` when one opened).
pub fn bench_draws(
    cpu: bool,
    gpu_engine: Option<&GpuEngine>,
    draws: usize,
) -> Result<Vec<DrawBenchResult>, Error> {
    let file = ScenarioFile::parse(BENCH_SCENARIO, "bench")?;
    let catalog = Catalog::builtin();
    let space = SearchSpace::resolve(&file, &catalog, Objective::Time, "bench")?;
    let report = run_sweep(
        &space,
        &SweepOptions {
            backend: Backend::Cpu,
            adapters: Adapters::Best,
            top: BENCH_CANDIDATES,
            shard: None,
            progress: false,
            prune: true,
        },
    )?;
    let opts = DrawOptions {
        draws,
        seed: 1,
        confidence: crate::analysis::uncertainty::DEFAULT_CONFIDENCE,
    };
    let mut engines: Vec<(String, Option<String>, Option<&GpuEngine>)> = vec![];
    if cpu {
        let threads = format!("{} threads", rayon::current_num_threads());
        engines.push(("cpu".into(), Some(threads), None));
    }
    if let Some(gpu) = gpu_engine {
        engines.push(("gpu".into(), Some(gpu.name()), Some(gpu)));
    }
    let mut results = vec![];
    for (backend, adapter, engine) in engines {
        // One draw first: the driver compiles the evaluation pipeline at its first dispatch
        // (a minute on lavapipe without its shader cache), which is not the draws' cost.
        let warm_up = DrawOptions { draws: 1, ..opts };
        sweep_ranking(
            &file,
            &catalog,
            &report,
            Objective::Time,
            engine,
            &warm_up,
            "bench",
        )?;
        let clock = std::time::Instant::now();
        sweep_ranking(&file, &catalog, &report, Objective::Time, engine, &opts, "bench")?;
        let elapsed_s = clock.elapsed().as_secs_f64();
        results.push(DrawBenchResult {
            backend,
            adapter,
            draws,
            candidates: report.top.len(),
            elapsed_s,
            draws_per_s: draws as f64 / elapsed_s,
        });
    }
    Ok(results)
}
