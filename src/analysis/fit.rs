//! Fitting the efficiency families to measured runs: `clustersweep fit runs.csv`.
//!
//! This module owns how the catalog's fitted constants are made, so that anyone can make them
//! again. For each efficiency family with measured rows, the parameters the family lists in
//! `fit` (by default `gemm`, `gemm_half_dim`, `attention`, and `low_precision_gemm` when the rows
//! include FP8/FP4 runs) are adjusted to minimise the mean absolute percentage error of the
//! predicted step time over the family's rows that report a measured step time. The search is
//! Nelder-Mead in log-parameter space from the catalog's current values: deterministic, no
//! random starts, so the same file gives the same constants.
//!
//! Everything else (datasheet rates, memory and network efficiencies, latencies) stays as the
//! catalog sources it; the fit only absorbs what no datasheet states: how well real kernels
//! use the tensor cores.

use crate::analysis::uncertainty::HeldOutPrediction;
use crate::analysis::validate::{best_candidate, prepare_row, Assume, PreparedRow, RunRow};
use crate::input::catalog::{Catalog, EfficiencyFamily, FittedEfficiency, FITTABLE};
use serde::Serialize;
use std::collections::BTreeMap;

/// True for the keys that are fractions of a peak rate, searched through a logistic so that
/// they stay in (0, 1); the others (a dimension, a time) are searched through a logarithm so
/// that they stay positive. Both maps are smooth: no flat clamped regions for the simplex.
fn is_fraction(key: &str) -> bool {
    !matches!(key, "gemm_half_dim" | "layer_overhead_us" | "step_overhead_ms")
}

fn to_search(key: &str, v: f64) -> f64 {
    if is_fraction(key) {
        let v = v.clamp(1e-6, 1.0 - 1e-6);
        (v / (1.0 - v)).ln()
    } else {
        v.max(1e-3).ln()
    }
}

fn from_search(key: &str, x: f64) -> f64 {
    if is_fraction(key) {
        1.0 / (1.0 + (-x).exp())
    } else {
        x.exp()
    }
}

fn get(e: &FittedEfficiency, key: &str) -> f64 {
    match key {
        "gemm" => e.gemm,
        "gemm_half_dim" => e.gemm_half_dim,
        "attention" => e.attention,
        "attention_flash2" => e.attention_flash2,
        "attention_flash1" => e.attention_flash1,
        "low_precision_gemm" => e.low_precision_gemm,
        "layer_overhead_us" => e.layer_overhead_us,
        "step_overhead_ms" => e.step_overhead_ms,
        "sync_jitter" => e.sync_jitter,
        _ => unreachable!("keys come from FITTABLE"),
    }
}

fn set(e: &mut FittedEfficiency, key: &str, v: f64) {
    match key {
        "gemm" => e.gemm = v,
        "gemm_half_dim" => e.gemm_half_dim = v,
        "attention" => e.attention = v,
        "attention_flash2" => e.attention_flash2 = v,
        "attention_flash1" => e.attention_flash1 = v,
        "low_precision_gemm" => e.low_precision_gemm = v,
        "layer_overhead_us" => e.layer_overhead_us = v,
        "step_overhead_ms" => e.step_overhead_ms = v,
        "sync_jitter" => e.sync_jitter = v,
        _ => unreachable!("keys come from FITTABLE"),
    }
}

/// Weight of the priors: the objective adds `PRIOR_WEIGHT_PCT * ln(value / prior)^2` per
/// parameter, so a parameter twice (or half) its microbenchmark value costs as much as 4.8
/// points of MAPE and one 20 % off costs 0.3: the rows move the constants where they speak
/// clearly, the benchmarks hold them where the rows are silent (e.g. attention efficiency from
/// short-sequence runs).
pub const PRIOR_WEIGHT_PCT: f64 = 1.5;

/// A parameter informs a row when doubling it moves the row's predicted step time by more than
/// this fraction.
pub const INFORMED_FRACTION: f64 = 0.01;

/// A fitted parameter that ends further than this from its prior is reported (a sign of a
/// missing mechanism more than of a wrong benchmark).
pub const PRIOR_DRIFT_LIMIT: f64 = 0.15;

/// The prior penalty of `efficiency` for the fitted `keys`, in MAPE points.
pub fn prior_penalty(efficiency: &FittedEfficiency, keys: &[String], prior: &BTreeMap<String, f64>) -> f64 {
    keys.iter()
        .filter_map(|k| prior.get(k).map(|p| (k, p)))
        .map(|(k, p)| PRIOR_WEIGHT_PCT * (get(efficiency, k) / p).ln().powi(2))
        .sum()
}

/// The absolute percentage error of each row under `efficiency`.
fn row_errors_pct(rows: &[PreparedRow], efficiency: &FittedEfficiency) -> Vec<f64> {
    rows.iter()
        .map(|r| {
            let (_, est) = best_candidate(r, Some(efficiency));
            100.0 * (est.step_time_s / r.measured_step_time_s - 1.0).abs()
        })
        .collect()
}

/// Mean absolute percentage error of `rows` under `efficiency`, each group (publication)
/// weighted equally, as the validation targets count it.
pub fn mape(rows: &[PreparedRow], efficiency: &FittedEfficiency) -> f64 {
    let mut by_group: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for (r, e) in rows.iter().zip(row_errors_pct(rows, efficiency)) {
        let g = by_group.entry(r.group.as_str()).or_default();
        g.0 += e;
        g.1 += 1;
    }
    if by_group.is_empty() {
        return 0.0;
    }
    by_group.values().map(|(sum, n)| sum / *n as f64).sum::<f64>() / by_group.len() as f64
}

/// How many of `rows` each parameter informs at `efficiency` (see [`INFORMED_FRACTION`]).
pub fn informed_rows(rows: &[PreparedRow], efficiency: &FittedEfficiency) -> BTreeMap<String, usize> {
    let base: Vec<f64> = rows
        .iter()
        .map(|r| best_candidate(r, Some(efficiency)).1.step_time_s)
        .collect();
    FITTABLE
        .iter()
        .map(|key| {
            let mut moved = *efficiency;
            set(&mut moved, key, get(efficiency, key) * 2.0);
            let n = rows
                .iter()
                .zip(&base)
                .filter(|(r, b)| {
                    let t = best_candidate(r, Some(&moved)).1.step_time_s;
                    (t / **b - 1.0).abs() > INFORMED_FRACTION
                })
                .count();
            (key.to_string(), n)
        })
        .collect()
}

/// Minimise `f` from `start` by Nelder-Mead (reflection 1, expansion 2, contraction 1/2,
/// shrink 1/2), with an initial simplex of +0.1 steps in each search coordinate. Returns the
/// best point and its value.
pub fn nelder_mead(f: &dyn Fn(&[f64]) -> f64, start: &[f64], iterations: usize) -> (Vec<f64>, f64) {
    let n = start.len();
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((start.to_vec(), f(start)));
    for i in 0..n {
        let mut p = start.to_vec();
        p[i] += 0.1;
        let v = f(&p);
        simplex.push((p, v));
    }
    for _ in 0..iterations {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        if (simplex[n].1 - simplex[0].1).abs() < 1e-7 {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|(p, _)| p[j]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&simplex[n].0)
                .map(|(c, w)| c + t * (c - w))
                .collect()
        };
        let reflected = along(1.0);
        let fr = f(&reflected);
        if fr < simplex[0].1 {
            let expanded = along(2.0);
            let fe = f(&expanded);
            simplex[n] = if fe < fr { (expanded, fe) } else { (reflected, fr) };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (reflected, fr);
        } else {
            let contracted = if fr < simplex[n].1 {
                along(0.5)
            } else {
                along(-0.5)
            };
            let fc = f(&contracted);
            if fc < simplex[n].1.min(fr) {
                simplex[n] = (contracted, fc);
            } else {
                let best = simplex[0].0.clone();
                for item in simplex.iter_mut().skip(1) {
                    let p: Vec<f64> = best.iter().zip(&item.0).map(|(b, x)| b + 0.5 * (x - b)).collect();
                    let v = f(&p);
                    *item = (p, v);
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex.swap_remove(0)
}

/// The outcome of fitting one family.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct FamilyFit {
    pub family: String,
    pub rows: usize,
    pub fitted_keys: Vec<String>,
    /// Rows each parameter informs (at the fitted values).
    pub informed_rows: BTreeMap<String, usize>,
    /// Mean of the family's groups' MAPEs, before and after.
    pub mape_before_pct: f64,
    pub mape_after_pct: f64,
    pub before: FittedEfficiency,
    pub after: FittedEfficiency,
    pub prior: BTreeMap<String, f64>,
    /// Fitted parameters further than [`PRIOR_DRIFT_LIMIT`] from their prior: (key, fitted,
    /// prior).
    pub drifted: Vec<(String, f64, f64)>,
}

/// The family's rows with a measured step time, prepared.
pub fn family_rows(rows: &[RunRow], catalog: &Catalog, family: &str, assume: Assume) -> Vec<PreparedRow> {
    rows.iter()
        .filter(|r| {
            catalog
                .accelerator(r.accelerator())
                .is_some_and(|a| a.efficiency == family)
        })
        .filter_map(|r| prepare_row(r, catalog, assume).ok())
        .filter(|p| p.measured_from == "step_time_s")
        .collect()
}

/// The keys to fit for a family: its `fit` list, or every key that informs at least one row.
pub fn keys_to_fit(catalog: &Catalog, family: &str, informed: &BTreeMap<String, usize>) -> Vec<String> {
    if let Some(keys) = catalog
        .efficiency
        .iter()
        .find(|f| f.id == family)
        .and_then(|f| f.fit.clone())
    {
        return keys;
    }
    FITTABLE
        .iter()
        .filter(|k| informed.get(**k).copied().unwrap_or(0) > 0)
        .map(|k| k.to_string())
        .collect()
}

/// Fit one family on prepared rows, starting from `start`.
pub fn fit_rows(
    family: &str,
    rows: &[PreparedRow],
    keys: &[String],
    prior: &BTreeMap<String, f64>,
    start: FittedEfficiency,
    iterations: usize,
) -> FamilyFit {
    let point_to_efficiency = |x: &[f64]| {
        let mut e = start;
        for (k, v) in keys.iter().zip(x) {
            set(&mut e, k, from_search(k, *v));
        }
        e
    };
    let objective = |x: &[f64]| {
        let e = point_to_efficiency(x);
        mape(rows, &e) + prior_penalty(&e, keys, prior)
    };
    let mut x: Vec<f64> = keys.iter().map(|k| to_search(k, get(&start, k))).collect();
    let before = objective(&x);
    // Restarting the simplex around the best point escapes the collapses Nelder-Mead is prone
    // to; three rounds settle every family of the calibration set.
    let mut after = before;
    if !keys.is_empty() {
        for _ in 0..3 {
            let (next, value) = nelder_mead(&objective, &x, iterations);
            x = next;
            after = value;
        }
    }
    let after_efficiency = if after < before {
        point_to_efficiency(&x)
    } else {
        start
    };
    let drifted = keys
        .iter()
        .filter_map(|k| {
            let p = *prior.get(k)?;
            let v = get(&after_efficiency, k);
            ((v / p - 1.0).abs() > PRIOR_DRIFT_LIMIT).then(|| (k.clone(), v, p))
        })
        .collect();
    FamilyFit {
        family: family.to_string(),
        rows: rows.len(),
        fitted_keys: keys.to_vec(),
        informed_rows: informed_rows(rows, &after_efficiency),
        mape_before_pct: mape(rows, &start),
        mape_after_pct: mape(rows, &after_efficiency),
        before: start,
        after: after_efficiency,
        prior: prior.clone(),
        drifted,
    }
}

/// A family's values with every parameter that has a prior set to it: where a fit starts when
/// the catalog's values must not leak what they were fitted on (cross-validation).
pub fn prior_values(catalog: &Catalog, family: &EfficiencyFamily) -> Option<FittedEfficiency> {
    let mut e = catalog.fitted_efficiency(&family.id).ok()?;
    for (k, v) in &family.prior {
        if FITTABLE.contains(&k.as_str()) {
            set(&mut e, k, *v);
        }
    }
    Some(e)
}

/// Fit every family that has rows of its own (families with `like` inherit and are skipped),
/// from the catalog's values, or from the priors with `from_priors`.
pub fn fit_catalog(
    rows: &[RunRow],
    catalog: &Catalog,
    iterations: usize,
    assume: Assume,
    from_priors: bool,
) -> Vec<FamilyFit> {
    catalog
        .efficiency
        .iter()
        .filter(|f| f.like.is_none())
        .filter_map(|f| {
            let prepared = family_rows(rows, catalog, &f.id, assume);
            if prepared.is_empty() {
                return None;
            }
            let start = if from_priors {
                prior_values(catalog, f)?
            } else {
                catalog.fitted_efficiency(&f.id).ok()?
            };
            let keys = keys_to_fit(catalog, &f.id, &informed_rows(&prepared, &start));
            Some(fit_rows(&f.id, &prepared, &keys, &f.prior, start, iterations))
        })
        .collect()
}

/// Out-of-sample error of one held-out group: the families fitted without it, then priced on it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct HoldOut {
    pub group: String,
    pub rows: usize,
    pub in_sample_mape_pct: f64,
    pub out_of_sample_mape_pct: f64,
    /// Each priced row of the group, in sample and held out (what `--write-model-error` writes).
    #[serde(skip)]
    pub predictions: Vec<HeldOutPrediction>,
}

/// Leave-one-group-out cross-validation: for each group, refit on the others (from the priors)
/// and measure the error on the group. A model that fits the physics loses little out of sample.
pub fn cross_validate(
    rows: &[RunRow],
    skipped: &std::collections::BTreeSet<String>,
    catalog: &Catalog,
    iterations: usize,
    assume: Assume,
) -> Vec<HoldOut> {
    let mut groups: Vec<String> = rows.iter().map(|r| r.group.clone()).collect();
    groups.sort();
    groups.dedup();
    groups
        .into_iter()
        .filter_map(|g| {
            let (held, mut kept): (Vec<RunRow>, Vec<RunRow>) =
                rows.iter().cloned().partition(|r| r.group == g);
            kept.retain(|r| !skipped.contains(&r.run_id));
            // Every family restarts from its priors, so that none keeps what it learned from the
            // held-out rows; a family left without rows keeps its priors.
            let mut refitted = catalog.clone();
            for f in catalog.efficiency.iter().filter(|f| f.like.is_none()) {
                if let Some(e) = prior_values(catalog, f) {
                    refitted.set_fitted(&f.id, &e);
                }
            }
            for f in fit_catalog(&kept, catalog, iterations, assume, true) {
                refitted.set_fitted(&f.family, &f.after);
            }
            let prepared: Vec<(&RunRow, PreparedRow)> = held
                .iter()
                .filter_map(|r| Some((r, prepare_row(r, catalog, assume).ok()?)))
                .filter(|(_, p)| p.measured_from == "step_time_s")
                .collect();
            let predictions: Vec<HeldOutPrediction> = prepared
                .iter()
                .filter_map(|(row, in_sample)| {
                    let held_out = prepare_row(row, &refitted, assume).ok()?;
                    let (i, fitted) = best_candidate(in_sample, None);
                    let (_, unseen) = best_candidate(&held_out, None);
                    let s = &in_sample.candidates[i];
                    Some(HeldOutPrediction {
                        run_id: row.run_id.clone(),
                        group: g.clone(),
                        accelerator: s.accelerator.id.clone(),
                        family: s.accelerator.efficiency.clone(),
                        stack: s.stack.id.clone(),
                        accelerators: s.layout.accelerators(),
                        moe: s.model.is_moe(),
                        in_sample_step_time_s: fitted.step_time_s,
                        held_out_step_time_s: unseen.step_time_s,
                        measured_step_time_s: in_sample.measured_step_time_s,
                    })
                })
                .collect();
            let mape = |predicted: fn(&HeldOutPrediction) -> f64| {
                let sum: f64 = predictions
                    .iter()
                    .map(|p| (predicted(p) / p.measured_step_time_s - 1.0).abs())
                    .sum();
                100.0 * sum / predictions.len().max(1) as f64
            };
            let in_sample_mape_pct = mape(|p| p.in_sample_step_time_s);
            let out_of_sample_mape_pct = mape(|p| p.held_out_step_time_s);
            (!predictions.is_empty()).then(|| HoldOut {
                group: g.clone(),
                rows: predictions.len(),
                in_sample_mape_pct,
                out_of_sample_mape_pct,
                predictions,
            })
        })
        .collect()
}

/// A catalog file holding the fitted families, in the catalog's own format: `--catalog FILE`
/// loads it as it is, replacing the built-in families of the same ids.
pub fn fitted_catalog_toml(catalog: &Catalog, fits: &[FamilyFit], origin: &str) -> Result<String, String> {
    #[derive(Serialize, schemars::JsonSchema)]
    struct File {
        efficiency: Vec<EfficiencyFamily>,
    }
    let mut families = vec![];
    for f in fits {
        let Some(mut family) = catalog.efficiency.iter().find(|e| e.id == f.family).cloned() else {
            continue;
        };
        family.set_values(&f.after);
        let informed: Vec<String> = f
            .fitted_keys
            .iter()
            .map(|k| format!("{k} ({} rows)", f.informed_rows.get(k).copied().unwrap_or(0)))
            .collect();
        family.sources.insert(
            "fit".into(),
            format!(
                "fitted by `clustersweep fit {origin}` to {} rows (mean of groups' MAPE {:.2} %, was {:.2} %): {}",
                f.rows,
                f.mape_after_pct,
                f.mape_before_pct,
                informed.join(", ")
            ),
        );
        families.push(family);
    }
    let body = toml::to_string(&File { efficiency: families }).map_err(|e| e.to_string())?;
    Ok(format!(
        "# Efficiency families fitted by `clustersweep fit {origin}`; load with `clustersweep --catalog FILE ...`.\n{body}"
    ))
}

/// The catalog lines that a fit produces, to paste into `catalog/accelerators.toml`: every
/// fittable key, in [`FITTABLE`]'s order, so that a new parameter cannot be left out.
pub fn toml_snippet(fit: &FamilyFit) -> String {
    let mut out = format!(
        "# {}: fitted to {} rows, mean of groups' MAPE {:.2} % (was {:.2} %)\n",
        fit.family, fit.rows, fit.mape_after_pct, fit.mape_before_pct
    );
    for key in FITTABLE {
        let v = get(&fit.after, key);
        out += &if is_fraction(key) {
            format!("{key} = {v:.4}\n")
        } else {
            format!("{key} = {v:.1}\n")
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nelder_mead_finds_a_quadratic_minimum() {
        let f = |x: &[f64]| (x[0] - 1.0).powi(2) + 3.0 * (x[1] + 2.0).powi(2);
        let (x, v) = nelder_mead(&f, &[0.0, 0.0], 500);
        assert!(v < 1e-6, "{v}");
        assert!((x[0] - 1.0).abs() < 1e-3 && (x[1] + 2.0).abs() < 1e-3, "{x:?}");
    }

    #[test]
    fn the_catalog_snippet_names_every_fittable_parameter() {
        // Regression: the snippet once left out sync_jitter after it became fittable.
        let hopper = Catalog::builtin().fitted_efficiency("nvidia-hopper").unwrap();
        let fit = FamilyFit {
            family: "nvidia-hopper".into(),
            rows: 1,
            fitted_keys: vec![],
            informed_rows: BTreeMap::new(),
            mape_before_pct: 1.0,
            mape_after_pct: 1.0,
            before: hopper,
            after: hopper,
            prior: BTreeMap::new(),
            drifted: vec![],
        };
        let snippet = toml_snippet(&fit);
        for key in FITTABLE {
            assert!(
                snippet.contains(&format!("\n{key} = ")),
                "{key} missing from {snippet}"
            );
        }
    }

    #[test]
    fn search_maps_round_trip_and_stay_physical() {
        for (key, v) in [
            ("gemm", 0.7),
            ("attention", 0.3),
            ("gemm_half_dim", 150.0),
            ("layer_overhead_us", 40.0),
        ] {
            assert!((from_search(key, to_search(key, v)) - v).abs() < 1e-9);
        }
        assert!(from_search("gemm", 50.0) <= 1.0 && from_search("gemm", -50.0) >= 0.0);
        assert!(from_search("layer_overhead_us", -50.0) > 0.0);
    }
}
