//! Holding the model against measured runs: `clustersweep validate runs.csv`.
//!
//! This module owns the runs-file format, turning a row into a scenario, the knobs a row leaves
//! empty, and the statistics: signed error per row, mean absolute percentage error (MAPE) and the
//! worst error per group and overall, and Spearman's rank correlation between predicted and
//! measured step times within each set of rows that share model, accelerator and batch.
//!
//! A runs file speaks the scenario's language: any key of `[model]`, `[training]`, `[cluster]`
//! and `[layout]` may be a column, with the same name, unit and meaning, and is read by the
//! scenario's own parser. The older columns of `tests/data/measured-runs.csv` (`n_gpus`,
//! `gbs_seqs`, `mbs`, `sp`) stand for `count`, `global_batch`, `microbatch` and
//! `sequence_parallel` where those are empty. A knob a row leaves empty takes its stack's default
//! (`--assume stack`, what the run's framework did), or the fastest value its stack can run that
//! fits (`--assume fastest`, for exploration); each row says which knobs it assumed and why.

use crate::error::Error;
use crate::input::catalog::{Catalog, FittedEfficiency};
use crate::input::scenario::{
    ClusterSection, LayoutSection, ModelSection, Scenario, ScenarioFile, TrainingSection,
};
use crate::model::flops::model_flops_per_step;
use crate::model::run::{estimate, Estimate};
use crate::model::Recompute;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One row of a runs file: the run as a scenario, and what was measured.
#[derive(Clone, Debug, Default)]
pub struct RunRow {
    pub run_id: String,
    /// The `group` column when present (e.g. the publication), else the accelerator.
    pub group: String,
    /// The line of the file the row is on.
    pub line: usize,
    /// The row's `[model]`, `[training]`, `[cluster]` and `[layout]` keys (`search` and
    /// `constraints` are unused).
    pub scenario: ScenarioFile,
    pub step_time_s: Option<f64>,
    /// Reported MFU in percent, used for a step time only where none is given.
    pub mfu_pct: Option<f64>,
}

impl RunRow {
    pub fn accelerator(&self) -> &str {
        self.scenario.cluster.accelerator.as_deref().unwrap_or("")
    }
    pub fn count(&self) -> Option<u64> {
        self.scenario.cluster.count
    }
}

/// Columns every runs file has.
const REQUIRED_COLUMNS: [&str; 2] = ["run_id", "step_time_s"];

/// Older columns of the calibration file and the scenario keys they stand for (used where the
/// scenario-named column is absent or empty).
const ALIASES: [(&str, &str, &str); 4] = [
    ("n_gpus", "cluster", "count"),
    ("gbs_seqs", "training", "global_batch"),
    ("mbs", "layout", "microbatch"),
    ("sp", "layout", "sequence_parallel"),
];

/// The keys of each scenario section a runs file may use as columns.
fn section_keys() -> Vec<(&'static str, Vec<String>)> {
    fn keys<T: Serialize + Default>() -> Vec<String> {
        match serde_json::to_value(T::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => vec![],
        }
    }
    vec![
        ("model", keys::<ModelSection>()),
        ("training", keys::<TrainingSection>()),
        ("cluster", keys::<ClusterSection>()),
        ("layout", keys::<LayoutSection>()),
    ]
}

/// A cell as a TOML value: an integer, a number, a boolean, or a string. Integral numbers
/// written with a point (`128.`, `8.0`) are integers, so that they fill integer keys.
fn cell_value(text: &str) -> toml::Value {
    if let Ok(i) = text.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(f) = text.parse::<f64>() {
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
            return toml::Value::Integer(f as i64);
        }
        return toml::Value::Float(f);
    }
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" => toml::Value::Boolean(true),
        "false" | "no" => toml::Value::Boolean(false),
        _ => toml::Value::String(text.to_string()),
    }
}

/// Read a runs file. A missing column is an error; a malformed cell is an error naming the line,
/// the column and what was expected.
pub fn read_runs(path: &Path) -> Result<Vec<RunRow>, Error> {
    let origin = path.display().to_string();
    let text = crate::error::read_text(path, |message| Error::Runs {
        origin: origin.clone(),
        message,
    })?;
    parse_runs(&text, &origin)
}

/// Parse the text of a runs file; `origin` names it in messages.
pub fn parse_runs(text: &str, origin: &str) -> Result<Vec<RunRow>, Error> {
    let err = |message: String| Error::Runs {
        origin: origin.to_string(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| err(e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !headers.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(err(format!("missing column(s): {}", missing.join(", "))));
    }
    for (i, h) in headers.iter().enumerate() {
        if headers[..i].contains(h) {
            return Err(err(format!("column `{h}` appears twice: keep one")));
        }
    }
    // Where each column goes: a scenario key (section, key), or one of the row's own columns.
    let sections = section_keys();
    let placement: Vec<Option<(&str, String)>> = headers
        .iter()
        .map(|h| {
            sections
                .iter()
                .find(|(_, keys)| keys.iter().any(|k| k == h))
                .map(|(section, _)| (*section, h.clone()))
        })
        .collect();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let mut rows = vec![];
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| err(format!("line {line}: {e}")))?;
        let cell = |j: usize| record.get(j).map(str::trim).filter(|s| !s.is_empty());
        let named = |name: &str| column(name).and_then(cell);
        let mut tables: BTreeMap<&str, toml::Table> = BTreeMap::new();
        for (j, place) in placement.iter().enumerate() {
            if let (Some((section, key)), Some(text)) = (place, cell(j)) {
                tables
                    .entry(section)
                    .or_default()
                    .insert(key.clone(), cell_value(text));
            }
        }
        for (alias, section, key) in ALIASES {
            if let Some(text) = named(alias) {
                let table = tables.entry(section).or_default();
                if !table.contains_key(key) {
                    table.insert(key.to_string(), cell_value(text));
                }
            }
        }
        let mut root = toml::Table::new();
        for (section, table) in tables {
            root.insert(section.to_string(), toml::Value::Table(table));
        }
        let scenario: ScenarioFile =
            serde_path_to_error::deserialize(toml::Value::Table(root)).map_err(|e| {
                let path = e.path().to_string();
                let key = path.rsplit('.').next().unwrap_or(&path).to_string();
                let shown = column(&key)
                    .and_then(cell)
                    .or_else(|| ALIASES.iter().find(|a| a.2 == key).and_then(|a| named(a.0)))
                    .unwrap_or("");
                let inner = e.inner().to_string();
                err(format!(
                    "line {line}: column {key} = \"{shown}\": {}",
                    inner.lines().next().unwrap_or("")
                ))
            })?;
        // Measured values in a physical range: a step of a microsecond to a year, an MFU in
        // (0, 100] percent (a value outside is a unit or typing error, and 1e-308 s overflowed
        // the error to infinity).
        let measured = |name: &str, low: f64, high: f64| -> Result<Option<f64>, Error> {
            match named(name) {
                None => Ok(None),
                Some(text) => match text.parse::<f64>() {
                    Ok(v) if v.is_finite() && v > low && v <= high => Ok(Some(v)),
                    _ => Err(err(format!(
                        "line {line}: column {name} = \"{text}\": expected a number above {low} and at most {high}"
                    ))),
                },
            }
        };
        let run_id = named("run_id")
            .map(str::to_string)
            .unwrap_or_else(|| format!("line-{line}"));
        let group = named("group")
            .map(str::to_string)
            .unwrap_or_else(|| scenario.cluster.accelerator.clone().unwrap_or_default());
        rows.push(RunRow {
            run_id,
            group,
            line,
            step_time_s: measured("step_time_s", 1e-6, 3.2e7)?,
            mfu_pct: measured("mfu_pct", 0.0, 100.0)?,
            scenario,
        });
    }
    Ok(rows)
}

/// What fills the knobs a row leaves empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Assume {
    /// The row's stack defaults: what its framework ran unless told otherwise.
    #[default]
    Stack,
    /// The fastest value the row's stack can run that fits (exploration: it credits the run
    /// with the best its stack could have done).
    Fastest,
}

/// Where an assumed knob's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum Source {
    /// The row states it.
    #[serde(rename = "recorded")]
    Recorded,
    /// The row's stack's default.
    #[serde(rename = "stack default")]
    StackDefault,
    /// The fastest value the stack can run that fits (`--assume fastest`).
    #[serde(rename = "fastest")]
    Fastest,
    /// The tool's default (a row without a stack runs on megatron-core-2025).
    #[serde(rename = "default")]
    Default,
    /// The least recomputation that fits: the run fit in memory, and the stack's default did
    /// not (`--assume stack`, where the row leaves recompute empty).
    #[serde(rename = "needed to fit")]
    NeededToFit,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Recorded => "recorded",
            Source::StackDefault => "stack default",
            Source::Fastest => "fastest",
            Source::Default => "default",
            Source::NeededToFit => "needed to fit",
        }
    }
}

/// One knob of a predicted row: its value and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Assumed {
    pub value: serde_json::Value,
    pub source: Source,
}

/// The knobs a row runs with, by key.
pub type AssumedKnobs = BTreeMap<String, Assumed>;

/// The outcome for one row.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct RowResult {
    pub run_id: String,
    pub group: String,
    pub accelerator: String,
    pub count: Option<u64>,
    /// The stack the row ran on (its `stack` column, or the default).
    pub stack: String,
    pub predicted_step_time_s: Option<f64>,
    pub measured_step_time_s: Option<f64>,
    /// Where the measured step time came from: `step_time_s`, or `mfu_pct` (derived with the
    /// model-FLOPs convention when the row reports only MFU).
    pub measured_from: Option<&'static str>,
    /// Signed: positive when the model predicts a slower step than measured.
    pub error_pct: Option<f64>,
    /// Every knob the prediction used, recorded or assumed, with its source.
    pub assumed: AssumedKnobs,
    /// Whether the layout fits in memory under the model (a measured run did fit).
    pub fits: Option<bool>,
    #[serde(serialize_with = "crate::units::rounded_count_or_null")]
    pub memory_per_accelerator_bytes: Option<f64>,
    /// `[low, high]` of the prediction at `uncertainty::DEFAULT_CONFIDENCE`, learned from the
    /// held-out errors of the other publications (the row's own group left out).
    pub step_time_s_interval: Option<[f64; 2]>,
    /// Whether the measured step time lies inside that interval.
    pub within_interval: Option<bool>,
    /// Why the row has no prediction.
    pub reason: Option<String>,
}

/// MAPE and worst error of a set of rows.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ErrorSummary {
    pub group: String,
    pub rows: usize,
    pub mape_pct: f64,
    pub max_abs_error_pct: f64,
    pub worst_run_id: String,
}

/// Spearman's rank correlation within rows that share model, accelerator and batch.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct RankGroup {
    pub key: String,
    pub rows: usize,
    pub spearman: f64,
}

/// Everything `validate` reports.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ValidationReport {
    pub assume: Assume,
    pub rows: Vec<RowResult>,
    /// Per group, over the rows with a measured step time (`measured_from = step_time_s`).
    pub groups: Vec<ErrorSummary>,
    /// The mean of the groups' MAPEs: each publication counts once, however many rows it has.
    pub mean_group_mape_pct: Option<f64>,
    /// Over all rows with a measured step time.
    pub overall: Option<ErrorSummary>,
    /// Over the rows whose step time was derived from a reported MFU.
    pub derived_from_mfu: Option<ErrorSummary>,
    pub rank_groups: Vec<RankGroup>,
    /// Mean Spearman over the rank groups of three or more rows.
    pub mean_spearman: Option<f64>,
    /// Over the rows with a measured step time: how many lie inside their intervals.
    pub interval_coverage: Option<Coverage>,
    pub skipped: usize,
}

/// The layout knobs a runs file may leave empty, as `[layout]` keys.
pub const KNOBS: [&str; 6] = [
    "microbatch",
    "interleave",
    "recompute",
    "sequence_parallel",
    "tp_overlap",
    "zero",
];

/// A row made ready to price: its candidate scenarios (one under `--assume stack`, one per
/// combination of the empty knobs under `--assume fastest`) and its measured step time. Building
/// it resolves every candidate once; pricing it again under other efficiencies (as the fitter
/// does) only re-runs the model.
#[derive(Clone, Debug)]
pub struct PreparedRow {
    /// The row's group (publication): the fitter weighs groups equally.
    pub group: String,
    pub candidates: Vec<Scenario>,
    pub measured_step_time_s: f64,
    pub measured_from: &'static str,
    pub assume: Assume,
}

use crate::analysis::uncertainty::{Coverage, ModelError, Regime, DEFAULT_CONFIDENCE};
use crate::engine::search::divisors;

/// The row's scenario file under every combination of the values its stack can run for the
/// knobs it leaves empty (the fastest-that-fits search of `--assume fastest`).
fn fastest_candidates(row: &RunRow, base: &Scenario) -> Vec<ScenarioFile> {
    let given = &row.scenario.layout;
    let stack = &base.training.stack;
    let l = &base.layout;
    let per_replica = base.training.global_batch / l.dp.max(1);
    let one = |v: u32| vec![Some(v)];
    let microbatches: Vec<Option<u32>> = if given.microbatch.is_some() {
        vec![None]
    } else {
        divisors(per_replica.max(1)).into_iter().map(Some).collect()
    };
    let layers_per_stage = base.model.layers / l.pp.max(1);
    let interleaves: Vec<Option<u32>> = if given.interleave.is_some() {
        vec![None]
    } else if l.pp > 1 && stack.interleave && base.model.layers.is_multiple_of(l.pp) {
        divisors(layers_per_stage).into_iter().map(Some).collect()
    } else {
        one(1)
    };
    let recomputes: Vec<Option<Recompute>> = if given.recompute.is_some() {
        vec![None]
    } else {
        Recompute::ALL
            .into_iter()
            .filter(|r| stack.supports_recompute(*r))
            .map(Some)
            .collect()
    };
    let flags = |given: Option<bool>, possible: bool| -> Vec<Option<bool>> {
        match given {
            Some(_) => vec![None],
            None if possible => vec![Some(false), Some(true)],
            None => vec![Some(false)],
        }
    };
    let sps = flags(given.sequence_parallel, l.tp > 1 && stack.sequence_parallel);
    let overlaps = flags(given.tp_overlap, l.tp > 1 && stack.tp_overlap);
    let zeros: Vec<Option<u32>> = if given.zero.is_some() {
        vec![None]
    } else {
        (0..4).filter(|z| stack.supports_zero(*z)).map(Some).collect()
    };
    let mut out = vec![];
    for &microbatch in &microbatches {
        for &interleave in &interleaves {
            for &recompute in &recomputes {
                for &sequence_parallel in &sps {
                    for &tp_overlap in &overlaps {
                        if tp_overlap == Some(true)
                            && !(sequence_parallel == Some(true) || given.sequence_parallel == Some(true))
                        {
                            continue;
                        }
                        for &zero in &zeros {
                            let mut file = row.scenario.clone();
                            let layout = &mut file.layout;
                            layout.microbatch = layout.microbatch.or(microbatch);
                            layout.interleave = layout.interleave.or(interleave);
                            layout.recompute = layout.recompute.or(recompute);
                            layout.sequence_parallel = layout.sequence_parallel.or(sequence_parallel);
                            layout.tp_overlap = layout.tp_overlap.or(tp_overlap);
                            layout.zero = layout.zero.or(zero);
                            out.push(file);
                        }
                    }
                }
            }
        }
    }
    out
}

/// The row's scenario; where its stack's default layout does not fit, the least memory saving
/// that fits instead, among the knobs the row leaves empty: the run fit in memory, so it saved
/// at least that much. Tried in order: sharding over the whole data-parallel group instead of
/// hybrid sharding (MaxText's GPU recipes set `dcn_fsdp_parallelism`), then selective
/// recomputation, full recomputation of 1, 2, ... layers per stage (Megatron's
/// `--recompute-method block`), and of every layer. Memory does not depend on the fitted
/// efficiencies, so the choice is made once, here.
fn least_memory_saving_that_fits(
    row: &RunRow,
    base: Scenario,
    resolve: &dyn Fn(&ScenarioFile) -> Result<Scenario, String>,
) -> Vec<Scenario> {
    let fits = |s: &Scenario| estimate(&s.model, &s.training, &s.hardware, &s.economics, &s.layout).fits;
    let given = &row.scenario.layout;
    if fits(&base) {
        return vec![base];
    }
    let mut file = row.scenario.clone();
    if base.layout.hybrid_shard && !given.given("hybrid_shard") {
        file.layout.hybrid_shard = Some(false);
        match resolve(&file) {
            Ok(s) if fits(&s) => return vec![s],
            // Neither fits: recompute from the stack's default sharding.
            _ => file.layout.hybrid_shard = None,
        }
    }
    if given.given("recompute") || given.given("recompute_layers") {
        return vec![base];
    }
    let (stage_layers, _) = crate::model::step::stage_layers(&base.model, &base.layout);
    // Lazily, and at most 1,024 partial depths: a stage of 2^32 layers must not allocate a try
    // per layer.
    let partial = (1..stage_layers as u32)
        .take(1024)
        .map(|k| (Recompute::Full, Some(k)));
    let tries = std::iter::once((Recompute::Selective, None))
        .chain(partial)
        .chain(std::iter::once((Recompute::Full, None)));
    for (mode, layers) in tries {
        if (mode as u32) <= (base.layout.recompute as u32) && layers.is_none() {
            continue;
        }
        file.layout.recompute = Some(mode);
        file.layout.recompute_layers = layers;
        if let Ok(s) = resolve(&file) {
            if fits(&s) {
                return vec![s];
            }
        }
    }
    vec![base]
}

/// Resolve a row's candidates, or say why it cannot be modelled.
pub fn prepare_row(row: &RunRow, catalog: &Catalog, assume: Assume) -> Result<PreparedRow, String> {
    if row.step_time_s.is_none() && row.mfu_pct.is_none() {
        return Err("no measured step time (step_time_s and mfu_pct empty)".into());
    }
    let resolve = |file: &ScenarioFile| {
        file.resolve_with(catalog, &row.run_id, false)
            .map_err(|e| match e {
                Error::Scenario { message, .. } => message,
                other => other.to_string(),
            })
    };
    let base = resolve(&row.scenario)?;
    let candidates = match assume {
        Assume::Stack => least_memory_saving_that_fits(row, base, &resolve),
        Assume::Fastest => {
            let resolved: Vec<Scenario> = fastest_candidates(row, &base)
                .iter()
                .filter_map(|f| resolve(f).ok())
                .collect();
            if resolved.is_empty() {
                vec![base]
            } else {
                resolved
            }
        }
    };
    let any = &candidates[0];
    let (measured_step_time_s, measured_from) = match (row.step_time_s, row.mfu_pct) {
        (Some(t), _) => (t, "step_time_s"),
        (None, None) => unreachable!("checked above"),
        (None, Some(mfu)) => {
            // The source's convention is the model-FLOPs one this model uses for MFU.
            let peak = any.hardware.peak(any.training.dtype) * any.layout.accelerators() as f64;
            (
                model_flops_per_step(&crate::model::flops::model_totals(&any.model), &any.training)
                    / (mfu / 100.0 * peak),
                "mfu_pct",
            )
        }
    };
    Ok(PreparedRow {
        group: row.group.clone(),
        candidates,
        measured_step_time_s,
        measured_from,
        assume,
    })
}

/// The candidate to price: the only one under `--assume stack`, the fastest that fits (the
/// fastest of all when none fits) under `--assume fastest`; under a family's `fitted` values if
/// given instead of the catalog's.
pub fn best_candidate(prepared: &PreparedRow, fitted: Option<&FittedEfficiency>) -> (usize, Estimate) {
    let mut best: Option<(usize, Estimate)> = None;
    for (i, s) in prepared.candidates.iter().enumerate() {
        let mut hw = s.hardware;
        if let Some(f) = fitted {
            let e = hw.efficiency;
            hw.efficiency = f.with_measured(e.memory, e.scale_up, e.scale_out);
        }
        let est = estimate(&s.model, &s.training, &hw, &s.economics, &s.layout);
        let better = match &best {
            None => true,
            Some((_, b)) => (est.fits, -est.step_time_s) > (b.fits, -b.step_time_s),
        };
        if better {
            best = Some((i, est));
        }
    }
    best.expect("a prepared row has at least one candidate")
}

/// The knobs a prediction ran with and where each came from.
fn assumed_knobs(row: &RunRow, s: &Scenario, assume: Assume) -> AssumedKnobs {
    let mut out = AssumedKnobs::new();
    let given = &row.scenario.layout;
    let knob_source = |key: &str| {
        if given.given(key) {
            Source::Recorded
        } else if assume == Assume::Fastest {
            Source::Fastest
        } else {
            Source::StackDefault
        }
    };
    let mut put = |key: &str, value: serde_json::Value, source: Source| {
        out.insert(key.to_string(), Assumed { value, source });
    };
    let t = &row.scenario.training;
    put(
        "stack",
        s.stack.id.clone().into(),
        if t.stack.is_some() {
            Source::Recorded
        } else {
            Source::Default
        },
    );
    let l = &s.layout;
    put("microbatch", l.microbatch.into(), knob_source("microbatch"));
    put("interleave", l.interleave.into(), knob_source("interleave"));
    let recompute_source = if !given.given("recompute")
        && assume == Assume::Stack
        && (l.recompute != s.stack.defaults.recompute || l.recompute_layers > 0)
    {
        Source::NeededToFit
    } else {
        knob_source("recompute")
    };
    put("recompute", l.recompute.name().into(), recompute_source);
    put(
        "sequence_parallel",
        l.sequence_parallel.into(),
        knob_source("sequence_parallel"),
    );
    put("tp_overlap", l.tp_overlap.into(), knob_source("tp_overlap"));
    put("zero", l.zero.into(), knob_source("zero"));
    put(
        "recompute_layers",
        l.recompute_layers.into(),
        if recompute_source == Source::NeededToFit {
            Source::NeededToFit
        } else {
            knob_source("recompute_layers")
        },
    );
    put(
        "offload_layers",
        l.offload_layers.into(),
        knob_source("offload_layers"),
    );
    let hybrid_source = if !given.given("hybrid_shard") && l.hybrid_shard != s.training.stack.hybrid_shard {
        Source::NeededToFit
    } else {
        knob_source("hybrid_shard")
    };
    put("hybrid_shard", l.hybrid_shard.into(), hybrid_source);
    let recorded_or_stack = |given: bool| {
        if given {
            Source::Recorded
        } else {
            Source::StackDefault
        }
    };
    put(
        "attention_kernel",
        s.training.attention.name().into(),
        recorded_or_stack(t.attention_kernel.is_some() || t.flash_attention.is_some()),
    );
    put(
        "grad_dtype",
        match s.training.grad_bytes {
            b if b >= 4.0 => "fp32",
            _ => "16-bit",
        }
        .into(),
        recorded_or_stack(t.grad_dtype.is_some()),
    );
    put(
        "dropout",
        s.training.dropout.into(),
        recorded_or_stack(t.dropout.is_some()),
    );
    out
}

/// Predict one row: the given layout, with empty knobs filled as `assume` says.
pub fn predict_row(row: &RunRow, catalog: &Catalog, assume: Assume) -> RowResult {
    let mut result = RowResult {
        run_id: row.run_id.clone(),
        group: row.group.clone(),
        accelerator: row.accelerator().to_string(),
        count: row.count(),
        stack: row
            .scenario
            .training
            .stack
            .clone()
            .unwrap_or_else(|| crate::input::catalog::DEFAULT_STACK.to_string()),
        predicted_step_time_s: None,
        measured_step_time_s: None,
        measured_from: None,
        error_pct: None,
        assumed: AssumedKnobs::new(),
        fits: None,
        memory_per_accelerator_bytes: None,
        step_time_s_interval: None,
        within_interval: None,
        reason: None,
    };
    let prepared = match prepare_row(row, catalog, assume) {
        Ok(p) => p,
        Err(reason) => {
            result.reason = Some(reason);
            return result;
        }
    };
    let (i, e) = best_candidate(&prepared, None);
    let chosen = &prepared.candidates[i];
    result.assumed = assumed_knobs(row, chosen, assume);
    let measured = prepared.measured_step_time_s;
    result.measured_from = Some(prepared.measured_from);
    result.predicted_step_time_s = Some(e.step_time_s);
    result.measured_step_time_s = Some(measured);
    result.error_pct = Some((e.step_time_s / measured - 1.0) * 100.0);
    result.fits = Some(e.fits);
    result.memory_per_accelerator_bytes = Some(e.memory_per_accelerator_bytes);
    let interval =
        ModelError::builtin().interval(&Regime::of_scenario(chosen), DEFAULT_CONFIDENCE, Some(&row.group));
    result.step_time_s_interval = Some(interval.around(e.step_time_s));
    result.within_interval = Some(interval.covers(e.step_time_s, measured));
    result
}

fn summarize<'a>(group: &str, rows: impl Iterator<Item = &'a RowResult>) -> Option<ErrorSummary> {
    let mut n = 0;
    let mut sum = 0.0;
    let mut worst = (0.0f64, String::new());
    for r in rows {
        let Some(e) = r.error_pct else { continue };
        n += 1;
        sum += e.abs();
        if e.abs() >= worst.0 {
            worst = (e.abs(), r.run_id.clone());
        }
    }
    (n > 0).then(|| ErrorSummary {
        group: group.to_string(),
        rows: n,
        mape_pct: sum / n as f64,
        max_abs_error_pct: worst.0,
        worst_run_id: worst.1,
    })
}

/// Ranks (1-based) with ties given their average rank.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            out[order[k]] = average;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation: Pearson's correlation of the ranks (ties averaged). NaN when
/// either side has no spread.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// The key under which rows count as the same model on the same machine with the same batch.
fn rank_key(row: &RunRow) -> String {
    let m = &row.scenario.model;
    let u = |v: Option<u32>| v.unwrap_or(0);
    format!(
        "{} | L{} h{} a{} kv{} ffn{} s{} V{} | gbs {}",
        row.accelerator(),
        u(m.layers),
        u(m.hidden),
        u(m.heads),
        u(m.kv_heads.or(m.heads)),
        u(m.ffn),
        u(m.seq_len),
        u(m.vocab),
        u(row.scenario.training.global_batch)
    )
}

/// Validate every row and summarise.
pub fn validate(rows: &[RunRow], catalog: &Catalog, assume: Assume) -> ValidationReport {
    let results: Vec<RowResult> = rows.iter().map(|r| predict_row(r, catalog, assume)).collect();
    report(rows, results, assume)
}

/// Summarise row results (exposed so that the fitter can reuse the statistics).
pub fn report(rows: &[RunRow], results: Vec<RowResult>, assume: Assume) -> ValidationReport {
    let measured = |r: &&RowResult| r.measured_from == Some("step_time_s");
    let mut group_names: Vec<String> = results.iter().filter(measured).map(|r| r.group.clone()).collect();
    group_names.sort();
    group_names.dedup();
    let groups: Vec<ErrorSummary> = group_names
        .iter()
        .filter_map(|g| summarize(g, results.iter().filter(measured).filter(|r| &r.group == g)))
        .collect();
    let mean_group_mape_pct =
        (!groups.is_empty()).then(|| groups.iter().map(|g| g.mape_pct).sum::<f64>() / groups.len() as f64);
    let overall = summarize("all", results.iter().filter(measured));
    let derived_from_mfu = summarize(
        "derived from mfu_pct",
        results.iter().filter(|r| r.measured_from == Some("mfu_pct")),
    );

    let mut by_key: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (row, r) in rows.iter().zip(&results) {
        if let (Some(p), Some(m)) = (r.predicted_step_time_s, r.measured_step_time_s) {
            by_key.entry(rank_key(row)).or_default().push((p, m));
        }
    }
    let rank_groups: Vec<RankGroup> = by_key
        .into_iter()
        .filter(|(_, v)| v.len() >= 3)
        .map(|(key, v)| {
            let (p, m): (Vec<f64>, Vec<f64>) = v.iter().copied().unzip();
            RankGroup {
                key,
                rows: v.len(),
                spearman: spearman(&p, &m),
            }
        })
        .filter(|g| g.spearman.is_finite())
        .collect();
    let mean_spearman = (!rank_groups.is_empty())
        .then(|| rank_groups.iter().map(|g| g.spearman).sum::<f64>() / rank_groups.len() as f64);
    let skipped = results.iter().filter(|r| r.reason.is_some()).count();
    let judged: Vec<(bool, f64)> = results
        .iter()
        .filter(measured)
        .filter_map(|r| {
            let [low, high] = r.step_time_s_interval?;
            Some((r.within_interval?, (high - low) / r.predicted_step_time_s?))
        })
        .collect();
    let interval_coverage = (!judged.is_empty()).then(|| Coverage::of(DEFAULT_CONFIDENCE, judged));
    ValidationReport {
        interval_coverage,
        assume,
        rows: results,
        groups,
        mean_group_mape_pct,
        overall,
        derived_from_mfu,
        rank_groups,
        mean_spearman,
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(ranks(&[10.0, 30.0, 20.0, 20.0]), vec![1.0, 4.0, 2.5, 2.5]);
    }

    #[test]
    fn spearman_by_hand() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[30.0, 20.0, 10.0]) + 1.0).abs() < 1e-12);
        // d = (0, -2, 1, 1): rho = 1 - 6 * 6 / (4 * 15) = 0.4.
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 4.0, 2.0, 3.0]) - 0.4).abs() < 1e-12);
    }

    const HEADER: &str = "run_id,accelerator,n_gpus,layers,hidden,heads,kv_heads,ffn,ffn_kind,seq_len,vocab,dtype,tp,pp,dp,cp,ep,interleave,mbs,gbs_seqs,recompute,sp,zero,step_time_s";

    #[test]
    fn missing_column_is_named() {
        let text = HEADER.replace(",step_time_s", "") + "\n";
        let msg = parse_runs(&text, "runs.csv").unwrap_err().to_string();
        assert!(msg.contains("step_time_s") && msg.contains("runs.csv"), "{msg}");
    }

    #[test]
    fn malformed_cell_names_line_and_column() {
        let text = format!(
            "{HEADER}\nx,h100-sxm,8,32,4096,32,8,14336,swiglu,8192,128256,bf16,1,1,8,,,,1,64,none,,1,abc\n"
        );
        let msg = parse_runs(&text, "runs.csv").unwrap_err().to_string();
        assert!(msg.contains("line 2") && msg.contains("step_time_s"), "{msg}");
        let text = format!(
            "{HEADER}\nx,h100-sxm,8,32,4096,32,8,14336,swiglu,8192,128256,bf16,1,1,8,,,,1,64,sometimes,,1,10\n"
        );
        let msg = parse_runs(&text, "runs.csv").unwrap_err().to_string();
        assert!(
            msg.contains("line 2") && msg.contains("recompute") && msg.contains("sometimes"),
            "{msg}"
        );
    }

    /// Regression (found by the fuzz target): a row whose stage held 2^32 - 1 layers allocated
    /// one recomputation try per layer (51 GB) looking for a layout that fits. Such a model is
    /// now refused (at most `MAX_LAYERS`); the deepest allowed still gets a bounded search.
    #[test]
    fn a_row_with_a_million_layers_is_priced_without_a_try_per_layer() {
        let text = format!(
            "{HEADER}\nx,h100-sxm,8,{},4096,32,8,14336,swiglu,8192,128256,bf16,1,1,8,,,,1,64,,,1,10\n",
            crate::model::MAX_LAYERS
        );
        let rows = parse_runs(&text, "runs.csv").unwrap();
        let r = predict_row(&rows[0], &Catalog::builtin(), Assume::Stack);
        assert!(r.predicted_step_time_s.is_some() || r.reason.is_some(), "{r:?}");
    }

    /// Regression (found by the fuzz target in CI's debug build): 2^32 - 1 layers overflowed the
    /// stage split (layers plus reserved layers) in 32 bits.
    #[test]
    fn a_row_with_four_billion_layers_is_refused_naming_layers() {
        let text = format!(
            "{HEADER}\nx,h100-sxm,8,4294967295,4096,32,8,14336,swiglu,8192,128256,bf16,1,1,8,,,,1,64,,,1,10\n"
        );
        let refused = match parse_runs(&text, "runs.csv") {
            Err(e) => e.to_string(),
            Ok(rows) => predict_row(&rows[0], &Catalog::builtin(), Assume::Stack)
                .reason
                .unwrap_or_default(),
        };
        assert!(refused.contains("layers = 4294967295"), "{refused}");
    }

    #[test]
    fn empty_knobs_take_the_stack_defaults_and_say_so() {
        let text = format!(
            "{HEADER}\nx,h100-sxm,8,32,4096,32,8,14336,swiglu,8192,128256,bf16,1,1,4,2,,,,64,,,,10.0\n"
        );
        let rows = parse_runs(&text, "runs.csv").unwrap();
        let r = predict_row(&rows[0], &Catalog::builtin(), Assume::Stack);
        assert!(r.predicted_step_time_s.is_some(), "{:?}", r.reason);
        assert_eq!(r.stack, "megatron-core-2025");
        assert_eq!(r.assumed["stack"].source, Source::Default);
        for k in ["microbatch", "interleave", "recompute", "zero"] {
            assert_eq!(r.assumed[k].source, Source::StackDefault, "{k}");
        }
        assert_eq!(r.assumed["zero"].value, 1);
        assert_eq!(r.assumed["recompute"].value, "none");
        assert_eq!(r.fits, Some(true));
        let r = predict_row(&rows[0], &Catalog::builtin(), Assume::Fastest);
        assert_eq!(r.assumed["microbatch"].source, Source::Fastest);
        assert_eq!(r.assumed["zero"].source, Source::Fastest);
    }

    #[test]
    fn scenario_named_columns_win_over_the_older_ones() {
        let text =
            "run_id,accelerator,count,n_gpus,preset,global_batch,gbs_seqs,microbatch,mbs,stack,step_time_s\n\
                    x,h100-sxm,16,8,llama3-8b,64,32,2,1,torchtitan,5.0\n";
        let rows = parse_runs(text, "runs.csv").unwrap();
        let s = &rows[0].scenario;
        assert_eq!(s.cluster.count, Some(16));
        assert_eq!(s.training.global_batch, Some(64));
        assert_eq!(s.layout.microbatch, Some(2));
        assert_eq!(s.model.preset.as_deref(), Some("llama3-8b"));
        let r = predict_row(&rows[0], &Catalog::builtin(), Assume::Stack);
        assert_eq!(r.stack, "torchtitan");
        assert_eq!(r.assumed["stack"].source, Source::Recorded);
        assert_eq!(r.assumed["microbatch"].source, Source::Recorded);
    }

    #[test]
    fn a_latent_attention_row_missing_a_rank_names_the_column() {
        let text = "run_id,accelerator,n_gpus,preset,gbs_seqs,attention,q_lora_rank,step_time_s\n\
                    x,h100-sxm,8,llama3-8b,64,mla,1536,5.0\n";
        let rows = parse_runs(text, "runs.csv").unwrap();
        let r = predict_row(&rows[0], &Catalog::builtin(), Assume::Stack);
        assert!(r.predicted_step_time_s.is_none());
        assert!(r.reason.unwrap().contains("kv_lora_rank"));
    }

    #[test]
    fn a_row_needs_no_price() {
        // gb300 has no rental price in the catalog: validation prices step time, not money.
        let text = "run_id,accelerator,n_gpus,preset,gbs_seqs,step_time_s\nx,gb300,8,llama3-8b,64,5.0\n";
        let rows = parse_runs(text, "runs.csv").unwrap();
        let r = predict_row(&rows[0], &Catalog::builtin(), Assume::Stack);
        assert!(r.predicted_step_time_s.is_some(), "{:?}", r.reason);
    }

    #[test]
    fn duplicated_and_non_positive_columns_are_refused() {
        let msg = parse_runs("run_id,step_time_s,step_time_s\nx,1,2\n", "runs.csv")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("twice"), "{msg}");
        let msg = parse_runs("run_id,step_time_s\nx,0\n", "runs.csv")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("step_time_s") && msg.contains("above 0.000001"),
            "{msg}"
        );
        // A step of 1e-308 s overflowed the error to infinity.
        let msg = parse_runs("run_id,step_time_s\nx,1e-308\n", "runs.csv")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 2") && msg.contains("step_time_s"), "{msg}");
        let msg = parse_runs("run_id,step_time_s,mfu_pct\nx,,120\n", "runs.csv")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("mfu_pct") && msg.contains("at most 100"), "{msg}");
    }

    #[test]
    fn rows_without_a_shape_get_a_reason() {
        let text = format!("{HEADER}\nx,h100-sxm,8,,,,,,swiglu,8192,,bf16,1,1,8,,,,1,64,none,,1,10.0\n");
        let rows = parse_runs(&text, "runs.csv").unwrap();
        let r = predict_row(&rows[0], &Catalog::builtin(), Assume::Stack);
        assert!(r.predicted_step_time_s.is_none());
        assert!(r.reason.unwrap().contains("layers"));
    }
}
