//! Holding the model against measured runs: `clustersweep validate runs.csv`.
//!
//! This module owns the runs-file format (that of `tests/data/measured-runs.csv`), turning a row
//! into a scenario, choosing the knobs a row leaves empty as the framework's user would have (the
//! fastest value that fits), and the statistics: signed error per row, mean absolute percentage
//! error (MAPE) and the worst error per group and overall, and Spearman's rank correlation
//! between predicted and measured step times within each set of rows that share model,
//! accelerator and batch.

use crate::catalog::{Catalog, FittedEfficiency};
use crate::error::Error;
use crate::model::flops::model_flops_per_step;
use crate::model::run::{estimate, Estimate};
use crate::model::{Dtype, FfnKind, Recompute};
use crate::scenario::{ClusterSection, LayoutSection, ModelSection, Scenario, ScenarioFile, TrainingSection};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One row of a runs file, as written (empty cells are `None`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunRow {
    pub run_id: String,
    /// The `group` column when present (e.g. the publication), else the accelerator.
    pub group: String,
    pub accelerator: String,
    pub n_gpus: Option<u64>,
    pub layers: Option<u32>,
    pub hidden: Option<u32>,
    pub heads: Option<u32>,
    pub kv_heads: Option<u32>,
    pub ffn: Option<u32>,
    pub ffn_kind: Option<FfnKind>,
    pub seq_len: Option<u32>,
    pub vocab: Option<u32>,
    pub dtype: Option<Dtype>,
    pub tp: Option<u32>,
    pub pp: Option<u32>,
    pub dp: Option<u32>,
    pub cp: Option<u32>,
    pub ep: Option<u32>,
    pub interleave: Option<u32>,
    pub mbs: Option<u32>,
    pub gbs_seqs: Option<u32>,
    pub recompute: Option<Recompute>,
    pub sp: Option<bool>,
    pub zero: Option<u32>,
    pub step_time_s: Option<f64>,
    /// Reported MFU in percent, used for a step time only where none is given.
    pub mfu_pct: Option<f64>,
}

const REQUIRED_COLUMNS: [&str; 24] = [
    "run_id",
    "accelerator",
    "n_gpus",
    "layers",
    "hidden",
    "heads",
    "kv_heads",
    "ffn",
    "ffn_kind",
    "seq_len",
    "vocab",
    "dtype",
    "tp",
    "pp",
    "dp",
    "cp",
    "ep",
    "interleave",
    "mbs",
    "gbs_seqs",
    "recompute",
    "sp",
    "zero",
    "step_time_s",
];

/// Read a runs file. Missing columns are an error; a malformed cell is an error naming the row
/// and the column.
pub fn read_runs(path: &Path) -> Result<Vec<RunRow>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    parse_runs(&text, &path.display().to_string())
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
    let headers = reader.headers().map_err(|e| err(e.to_string()))?.clone();
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !headers.iter().any(|h| h == *c))
        .collect();
    if !missing.is_empty() {
        return Err(err(format!("missing column(s): {}", missing.join(", "))));
    }
    let index = |name: &str| headers.iter().position(|h| h == name);
    let mut rows = vec![];
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| err(format!("line {line}: {e}")))?;
        let cell = |name: &str| -> Option<&str> {
            index(name)
                .and_then(|j| record.get(j))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        macro_rules! parsed {
            ($name:expr, $parse:expr) => {
                match cell($name) {
                    None => None,
                    Some(s) => Some($parse(s).ok_or_else(|| {
                        err(format!(
                            "line {line}: column {} = \"{s}\" is not {}",
                            $name,
                            stringify!($parse)
                        ))
                    })?),
                }
            };
        }
        let int = |s: &str| s.parse::<u32>().ok();
        let big = |s: &str| s.parse::<u64>().ok();
        let real = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
        let dtype = |s: &str| match s.to_ascii_lowercase().as_str() {
            "fp16" => Some(Dtype::Fp16),
            "bf16" => Some(Dtype::Bf16),
            "fp8" => Some(Dtype::Fp8),
            "fp4" => Some(Dtype::Fp4),
            _ => None,
        };
        let ffn_kind = |s: &str| match s.to_ascii_lowercase().as_str() {
            "mlp" => Some(FfnKind::Mlp),
            "swiglu" => Some(FfnKind::Swiglu),
            _ => None,
        };
        let recompute = |s: &str| match s.to_ascii_lowercase().as_str() {
            "none" => Some(Recompute::None),
            "selective" => Some(Recompute::Selective),
            "full" => Some(Recompute::Full),
            _ => None,
        };
        let boolean = |s: &str| match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        };
        let run_id = cell("run_id")
            .map(str::to_string)
            .unwrap_or_else(|| format!("line-{line}"));
        let accelerator = cell("accelerator").unwrap_or("").to_string();
        rows.push(RunRow {
            group: cell("group")
                .map(str::to_string)
                .unwrap_or_else(|| accelerator.clone()),
            run_id,
            accelerator,
            n_gpus: parsed!("n_gpus", big),
            layers: parsed!("layers", int),
            hidden: parsed!("hidden", int),
            heads: parsed!("heads", int),
            kv_heads: parsed!("kv_heads", int),
            ffn: parsed!("ffn", int),
            ffn_kind: parsed!("ffn_kind", ffn_kind),
            seq_len: parsed!("seq_len", int),
            vocab: parsed!("vocab", int),
            dtype: parsed!("dtype", dtype),
            tp: parsed!("tp", int),
            pp: parsed!("pp", int),
            dp: parsed!("dp", int),
            cp: parsed!("cp", int),
            ep: parsed!("ep", int),
            interleave: parsed!("interleave", int),
            mbs: parsed!("mbs", int),
            gbs_seqs: parsed!("gbs_seqs", int),
            recompute: parsed!("recompute", recompute),
            sp: parsed!("sp", boolean),
            zero: parsed!("zero", int),
            step_time_s: parsed!("step_time_s", real),
            mfu_pct: parsed!("mfu_pct", real),
        });
    }
    Ok(rows)
}

/// The knob values a row left empty and the validator chose.
pub type Chosen = BTreeMap<String, serde_json::Value>;

/// The outcome for one row.
#[derive(Clone, Debug, Serialize)]
pub struct RowResult {
    pub run_id: String,
    pub group: String,
    pub accelerator: String,
    pub n_gpus: Option<u64>,
    pub predicted_step_time_s: Option<f64>,
    pub measured_step_time_s: Option<f64>,
    /// Where the measured step time came from: `step_time_s`, or `mfu_pct` (derived with the
    /// model-FLOPs convention when the row reports only MFU).
    pub measured_from: Option<&'static str>,
    /// Signed: positive when the model predicts a slower step than measured.
    pub error_pct: Option<f64>,
    pub chosen: Chosen,
    /// Whether the layout fits in memory under the model (a measured run did fit).
    pub fits: Option<bool>,
    pub memory_per_accelerator_bytes: Option<f64>,
    /// Why the row has no prediction.
    pub reason: Option<String>,
}

/// MAPE and worst error of a set of rows.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorSummary {
    pub group: String,
    pub rows: usize,
    pub mape_pct: f64,
    pub max_abs_error_pct: f64,
    pub worst_run_id: String,
}

/// Spearman's rank correlation within rows that share model, accelerator and batch.
#[derive(Clone, Debug, Serialize)]
pub struct RankGroup {
    pub key: String,
    pub rows: usize,
    pub spearman: f64,
}

/// Everything `validate` reports.
#[derive(Clone, Debug, Serialize)]
pub struct ValidationReport {
    pub rows: Vec<RowResult>,
    /// Per group, over the rows with a measured step time (`measured_from = step_time_s`).
    pub groups: Vec<ErrorSummary>,
    /// Over all rows with a measured step time: the headline figure.
    pub overall: Option<ErrorSummary>,
    /// Over the rows whose step time was derived from a reported MFU.
    pub derived_from_mfu: Option<ErrorSummary>,
    pub rank_groups: Vec<RankGroup>,
    /// Mean Spearman over the rank groups of three or more rows.
    pub mean_spearman: Option<f64>,
    pub skipped: usize,
}

/// The scenario of a row with the given knob values filled in.
fn row_scenario(row: &RunRow, knobs: &Knobs, catalog: &Catalog) -> Result<Scenario, String> {
    let file = ScenarioFile {
        model: ModelSection {
            layers: row.layers,
            hidden: row.hidden,
            heads: row.heads,
            kv_heads: row.kv_heads,
            ffn: row.ffn,
            ffn_kind: row.ffn_kind,
            vocab: row.vocab,
            seq_len: row.seq_len,
            ..Default::default()
        },
        training: TrainingSection {
            global_batch: row.gbs_seqs,
            dtype: row.dtype,
            ..Default::default()
        },
        cluster: ClusterSection {
            accelerator: Some(row.accelerator.clone()),
            count: row.n_gpus,
            ..Default::default()
        },
        layout: LayoutSection {
            tp: row.tp,
            pp: row.pp,
            dp: row.dp,
            cp: Some(row.cp.unwrap_or(1)),
            ep: Some(row.ep.unwrap_or(1)),
            microbatch: Some(knobs.microbatch),
            interleave: Some(knobs.interleave),
            recompute: Some(knobs.recompute),
            sequence_parallel: Some(knobs.sequence_parallel),
            tp_overlap: Some(knobs.tp_overlap),
            zero: Some(knobs.zero),
        },
        search: None,
        constraints: None,
    };
    file.resolve(catalog, &row.run_id).map_err(|e| match e {
        Error::Scenario { message, .. } => message,
        other => other.to_string(),
    })
}

/// Values of the knobs a runs file may leave empty.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Knobs {
    pub microbatch: u32,
    pub interleave: u32,
    pub recompute: Recompute,
    pub sequence_parallel: bool,
    pub tp_overlap: bool,
    pub zero: u32,
}

fn divisors(n: u32) -> Vec<u32> {
    (1..=n).filter(|d| n.is_multiple_of(*d)).collect()
}

/// Every combination of the knobs the row leaves empty, each at the values a practitioner
/// would try: microbatch among the divisors of the per-replica batch, interleave among the
/// divisors of the layers per stage, every recompute mode, sequence parallelism on and off,
/// tensor-parallel overlap on and off, ZeRO 0 and 1 (Megatron's distributed optimizer).
fn candidate_knobs(row: &RunRow) -> Vec<Knobs> {
    let tp = row.tp.unwrap_or(1);
    let pp = row.pp.unwrap_or(1);
    let layers = row.layers.unwrap_or(1);
    let per_replica = match (row.gbs_seqs, row.dp) {
        (Some(g), Some(d)) if d > 0 && g % d == 0 => g / d,
        _ => 1,
    };
    let microbatches = match row.mbs {
        Some(m) => vec![m],
        None => divisors(per_replica),
    };
    let interleaves = match row.interleave {
        Some(v) => vec![v],
        None if pp > 1 && layers.is_multiple_of(pp) => divisors(layers / pp),
        None => vec![1],
    };
    let recomputes = row.recompute.map_or(Recompute::ALL.to_vec(), |r| vec![r]);
    let sps = match row.sp {
        Some(s) => vec![s],
        None if tp > 1 => vec![false, true],
        None => vec![false],
    };
    let zeros = row.zero.map_or(vec![0, 1], |z| vec![z]);
    // No runs file states it: overlapping tensor-parallel collectives is tried wherever the
    // layout allows it (tp > 1 with sequence parallelism).
    let overlaps = if tp > 1 { vec![false, true] } else { vec![false] };
    let mut out = vec![];
    for &microbatch in &microbatches {
        for &interleave in &interleaves {
            for &recompute in &recomputes {
                for &sequence_parallel in &sps {
                    for &tp_overlap in &overlaps {
                        for &zero in &zeros {
                            out.push(Knobs {
                                microbatch,
                                interleave,
                                recompute,
                                sequence_parallel,
                                tp_overlap: tp_overlap && sequence_parallel,
                                zero,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// A row made ready to price: its candidate scenarios (one per combination of empty knobs)
/// and its measured step time. Building it resolves every candidate once; pricing it again
/// under other efficiencies (as the fitter does) only re-runs the model.
#[derive(Clone, Debug)]
pub struct PreparedRow {
    pub candidates: Vec<(Knobs, Scenario)>,
    pub measured_step_time_s: f64,
    pub measured_from: &'static str,
}

/// Resolve a row's candidates, or say why it cannot be modelled.
pub fn prepare_row(row: &RunRow, catalog: &Catalog) -> Result<PreparedRow, String> {
    let missing: Vec<&str> = [
        ("layers", row.layers.is_none()),
        ("hidden", row.hidden.is_none()),
        ("heads", row.heads.is_none()),
        ("ffn", row.ffn.is_none()),
        ("seq_len", row.seq_len.is_none()),
        ("vocab", row.vocab.is_none()),
        ("gbs_seqs", row.gbs_seqs.is_none()),
        ("tp", row.tp.is_none()),
        ("pp", row.pp.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(k, _)| *k)
    .collect();
    if !missing.is_empty() {
        return Err(format!("model or layout not given: {} empty", missing.join(", ")));
    }
    if row.step_time_s.is_none() && row.mfu_pct.is_none() {
        return Err("no measured step time (step_time_s and mfu_pct empty)".into());
    }
    let mut candidates = vec![];
    let mut first_error = None;
    for knobs in candidate_knobs(row) {
        match row_scenario(row, &knobs, catalog) {
            Ok(s) => candidates.push((knobs, s)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some((_, any)) = candidates.first() else {
        return Err(first_error.unwrap_or_else(|| "no layout to evaluate".into()));
    };
    let (measured_step_time_s, measured_from) = match (row.step_time_s, row.mfu_pct) {
        (Some(t), _) => (t, "step_time_s"),
        (None, None) => unreachable!("checked above"),
        (None, Some(mfu)) => {
            // The source's convention is the model-FLOPs one this model uses for MFU.
            let peak = any.hardware.peak(any.training.dtype) * any.layout.accelerators() as f64;
            (
                model_flops_per_step(&any.model, &any.training) / (mfu / 100.0 * peak),
                "mfu_pct",
            )
        }
    };
    Ok(PreparedRow {
        candidates,
        measured_step_time_s,
        measured_from,
    })
}

/// The fastest candidate that fits (the fastest of all when none fits), under a family's
/// `fitted` values if given instead of the catalog's.
pub fn best_candidate(prepared: &PreparedRow, fitted: Option<&FittedEfficiency>) -> (usize, Estimate) {
    let mut best: Option<(usize, Estimate)> = None;
    for (i, (_, s)) in prepared.candidates.iter().enumerate() {
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

/// Predict one row: the given layout, with empty knobs chosen as the fastest that fits (or the
/// fastest of all when none fits, reported as not fitting).
pub fn predict_row(row: &RunRow, catalog: &Catalog) -> RowResult {
    let mut result = RowResult {
        run_id: row.run_id.clone(),
        group: row.group.clone(),
        accelerator: row.accelerator.clone(),
        n_gpus: row.n_gpus,
        predicted_step_time_s: None,
        measured_step_time_s: None,
        measured_from: None,
        error_pct: None,
        chosen: Chosen::new(),
        fits: None,
        memory_per_accelerator_bytes: None,
        reason: None,
    };
    let prepared = match prepare_row(row, catalog) {
        Ok(p) => p,
        Err(reason) => {
            result.reason = Some(reason);
            return result;
        }
    };
    let (i, e) = best_candidate(&prepared, None);
    let knobs = prepared.candidates[i].0;
    if row.mbs.is_none() {
        result.chosen.insert("microbatch".into(), knobs.microbatch.into());
    }
    if row.interleave.is_none() {
        result.chosen.insert("interleave".into(), knobs.interleave.into());
    }
    if row.recompute.is_none() {
        result
            .chosen
            .insert("recompute".into(), knobs.recompute.name().into());
    }
    if row.sp.is_none() && row.tp.unwrap_or(1) > 1 {
        result
            .chosen
            .insert("sequence_parallel".into(), knobs.sequence_parallel.into());
    }
    if row.tp.unwrap_or(1) > 1 {
        result.chosen.insert("tp_overlap".into(), knobs.tp_overlap.into());
    }
    if row.zero.is_none() {
        result.chosen.insert("zero".into(), knobs.zero.into());
    }
    let measured = prepared.measured_step_time_s;
    result.measured_from = Some(prepared.measured_from);
    result.predicted_step_time_s = Some(e.step_time_s);
    result.measured_step_time_s = Some(measured);
    result.error_pct = Some((e.step_time_s / measured - 1.0) * 100.0);
    result.fits = Some(e.fits);
    result.memory_per_accelerator_bytes = Some(e.memory_per_accelerator_bytes);
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
    format!(
        "{} | L{} h{} a{} kv{} ffn{} s{} V{} | gbs {}",
        row.accelerator,
        row.layers.unwrap_or(0),
        row.hidden.unwrap_or(0),
        row.heads.unwrap_or(0),
        row.kv_heads.or(row.heads).unwrap_or(0),
        row.ffn.unwrap_or(0),
        row.seq_len.unwrap_or(0),
        row.vocab.unwrap_or(0),
        row.gbs_seqs.unwrap_or(0)
    )
}

/// Validate every row and summarise.
pub fn validate(rows: &[RunRow], catalog: &Catalog) -> ValidationReport {
    let results: Vec<RowResult> = rows.iter().map(|r| predict_row(r, catalog)).collect();
    report(rows, results)
}

/// Summarise row results (exposed so that the fitter can reuse the statistics).
pub fn report(rows: &[RunRow], results: Vec<RowResult>) -> ValidationReport {
    let measured = |r: &&RowResult| r.measured_from == Some("step_time_s");
    let mut group_names: Vec<String> = results.iter().filter(measured).map(|r| r.group.clone()).collect();
    group_names.sort();
    group_names.dedup();
    let groups = group_names
        .iter()
        .filter_map(|g| summarize(g, results.iter().filter(measured).filter(|r| &r.group == g)))
        .collect();
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
    ValidationReport {
        rows: results,
        groups,
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

    fn header() -> String {
        REQUIRED_COLUMNS.join(",")
    }

    #[test]
    fn missing_column_is_named() {
        let text = header().replace(",step_time_s", "") + "\n";
        let msg = parse_runs(&text, "runs.csv").unwrap_err().to_string();
        assert!(msg.contains("step_time_s") && msg.contains("runs.csv"), "{msg}");
    }

    #[test]
    fn malformed_cell_names_line_and_column() {
        let text = format!(
            "{}\nx,h100-sxm,8,32,4096,32,8,14336,swiglu,8192,128256,bf16,1,1,8,,,,1,64,none,,1,abc\n",
            header()
        );
        let msg = parse_runs(&text, "runs.csv").unwrap_err().to_string();
        assert!(msg.contains("line 2") && msg.contains("step_time_s"), "{msg}");
    }

    #[test]
    fn empty_knobs_are_chosen_and_reported() {
        let text = format!(
            "{}\nx,h100-sxm,8,32,4096,32,8,14336,swiglu,8192,128256,bf16,1,1,8,,,,,64,,,,10.0\n",
            header()
        );
        let rows = parse_runs(&text, "runs.csv").unwrap();
        let r = predict_row(&rows[0], &Catalog::builtin());
        assert!(r.predicted_step_time_s.is_some(), "{:?}", r.reason);
        for k in ["microbatch", "interleave", "recompute", "zero"] {
            assert!(r.chosen.contains_key(k), "{k} in {:?}", r.chosen);
        }
        assert_eq!(r.fits, Some(true));
    }

    #[test]
    fn rows_without_a_shape_get_a_reason() {
        let text = format!(
            "{}\nx,h100-sxm,8,,,,,,swiglu,8192,,bf16,1,1,8,,,,1,64,none,,1,10.0\n",
            header()
        );
        let rows = parse_runs(&text, "runs.csv").unwrap();
        let r = predict_row(&rows[0], &Catalog::builtin());
        assert!(r.predicted_step_time_s.is_none());
        assert!(r.reason.unwrap().contains("layers"));
    }
}
