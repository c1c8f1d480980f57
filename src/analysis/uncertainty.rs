//! How sure an estimate is: intervals learned from the model's error on measured runs it was not
//! fitted on.
//!
//! `clustersweep fit RUNS --cross-validate --write-model-error catalog/model-error.csv` refits
//! the efficiency families once per group (publication) of the runs file without that group and
//! prices the group's rows: each row's ratio of measured to predicted step time is one draw of
//! the model's error on an unseen run. An estimate's interval is the spread of those errors for
//! its regime (kind of model, dense or mixture of experts; software stack; scale class), as a
//! publication's offset plus its rows' scatter (see [`ModelError::interval`]), widened where the
//! estimate lies outside everything measured (an accelerator family, a stack or a cluster size
//! no run has).
//!
//! The inputs' own ranges (failure rates, prices, PUE: `catalog/assumptions.toml`) are drawn
//! here too: [`drawn_catalogs`] gives catalogs with every assumption drawn at once, one catalog
//! for every layout of a draw (common random numbers), and [`rank_draws`] says how often each
//! candidate is best across them.

use crate::engine::sweep::driver::Ranking;
use crate::input::catalog::assumptions::{apply, with_resolved_families, Assumption};
use crate::input::catalog::Catalog;
use crate::input::scenario::Scenario;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The interval's confidence when the user names none: 80 %, the central four-fifths of the
/// held-out errors.
pub const DEFAULT_CONFIDENCE: f64 = 0.8;

/// The rows of the estimate's kind make its interval's scatter only when there are at least this
/// many (with fewer, the 10th and 90th percentiles are one or two rows each); otherwise all rows.
pub const MIN_POOL_ROWS: usize = 20;

/// Publication offsets come from the publications of the estimate's kind (dense or mixture of
/// experts) when there are at least this many; otherwise from all of them.
pub const MIN_POOL_GROUPS: usize = 3;

/// The committed held-out residuals, as `fit --cross-validate --write-model-error` wrote them.
const BUILTIN_MODEL_ERROR: &str = include_str!("../../catalog/model-error.csv");

/// The classes of cluster size whose held-out scatter an interval is judged against (see
/// [`ModelError::interval`]): up to eight 8-way servers, up to a thousand accelerators (the
/// bulk of the published benchmarks), and beyond. Each is `(largest count, words)`.
pub const SCALE_CLASSES: [(u64, &str); 3] = [
    (64, "up to 64 accelerators"),
    (1024, "65 to 1,024 accelerators"),
    (u64::MAX, "over 1,024 accelerators"),
];

/// The index in [`SCALE_CLASSES`] of a cluster of `accelerators`.
pub fn scale_class(accelerators: u64) -> usize {
    SCALE_CLASSES
        .iter()
        .position(|(largest, _)| accelerators <= *largest)
        .unwrap_or(SCALE_CLASSES.len() - 1)
}

/// The header of a model-error file, in its column order.
pub const MODEL_ERROR_COLUMNS: [&str; 10] = [
    "run_id",
    "group",
    "accelerator",
    "family",
    "stack",
    "accelerators",
    "moe",
    "in_sample_step_time_s",
    "held_out_step_time_s",
    "measured_step_time_s",
];

/// One measured run priced twice: with the catalog fitted on every row (in sample) and with the
/// catalog refitted without the run's group (held out).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct HeldOutPrediction {
    pub run_id: String,
    pub group: String,
    pub accelerator: String,
    /// The accelerator's efficiency family.
    pub family: String,
    /// The software stack that ran it (`clustersweep catalog --stacks`).
    pub stack: String,
    pub accelerators: u64,
    pub moe: bool,
    pub in_sample_step_time_s: f64,
    pub held_out_step_time_s: f64,
    pub measured_step_time_s: f64,
}

impl HeldOutPrediction {
    /// ln(measured / predicted) out of sample: what multiplies a prediction to give the truth.
    pub fn held_out_log_ratio(&self) -> f64 {
        (self.measured_step_time_s / self.held_out_step_time_s).ln()
    }
    fn in_sample_log_ratio(&self) -> f64 {
        (self.measured_step_time_s / self.in_sample_step_time_s).ln()
    }
}

/// What an estimate is, for choosing whose errors describe it.
#[derive(Clone, Debug, PartialEq)]
pub struct Regime {
    pub family: String,
    pub moe: bool,
    pub accelerators: u64,
    /// The software stack's id.
    pub stack: String,
    /// The accelerator's catalog id.
    pub accelerator: String,
}

impl Regime {
    pub fn of_scenario(s: &Scenario) -> Regime {
        Regime {
            family: s.accelerator.efficiency.clone(),
            moe: s.model.is_moe(),
            accelerators: s.layout.accelerators(),
            stack: s.stack.id.clone(),
            accelerator: s.accelerator.id.clone(),
        }
    }
}

/// A multiplicative interval on a prediction at a confidence level, and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Interval {
    pub confidence: f64,
    /// The prediction times these gives the interval's ends.
    pub low_factor: f64,
    pub high_factor: f64,
    /// The held-out predictions the interval is the spread of, in words.
    pub basis: String,
    pub basis_rows: usize,
    /// Why the interval was widened beyond its basis (the estimate is outside what was
    /// measured), if it was.
    pub extrapolation: Option<String>,
}

impl Interval {
    pub fn around(&self, value: f64) -> [f64; 2] {
        [value * self.low_factor, value * self.high_factor]
    }
    /// True when `measured` lies inside the interval around `predicted`.
    pub fn covers(&self, predicted: f64, measured: f64) -> bool {
        let [low, high] = self.around(predicted);
        (low..=high).contains(&measured)
    }
}

/// The model's held-out errors.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelError {
    pub predictions: Vec<HeldOutPrediction>,
}

/// The `q`-quantile (0..1) of sorted values, interpolated linearly between order statistics.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

fn median_abs(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.map(f64::abs).collect();
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

impl ModelError {
    /// The residuals committed in `catalog/model-error.csv`.
    pub fn builtin() -> &'static ModelError {
        static BUILTIN: OnceLock<ModelError> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            ModelError::from_csv(BUILTIN_MODEL_ERROR)
                .expect("catalog/model-error.csv is a valid model-error file")
        })
    }

    /// Read a model-error file (the format `to_csv` writes).
    pub fn from_csv(text: &str) -> Result<ModelError, String> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| e.to_string())?
            .iter()
            .map(str::to_string)
            .collect();
        if header != MODEL_ERROR_COLUMNS {
            return Err(format!(
                "the header is `{}`; expected `{}`",
                header.join(","),
                MODEL_ERROR_COLUMNS.join(",")
            ));
        }
        let mut predictions = vec![];
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| e.to_string())?;
            let line = i + 2;
            let text = |c: usize| record.get(c).unwrap_or_default().trim().to_string();
            let number = |c: usize| -> Result<f64, String> {
                text(c)
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or_else(|| {
                        format!(
                            "line {line}: column {} is `{}`; expected a positive number",
                            MODEL_ERROR_COLUMNS[c],
                            text(c)
                        )
                    })
            };
            predictions.push(HeldOutPrediction {
                run_id: text(0),
                group: text(1),
                accelerator: text(2),
                family: text(3),
                stack: text(4),
                accelerators: text(5).parse().map_err(|_| {
                    format!(
                        "line {line}: column accelerators is `{}`; expected a count",
                        text(5)
                    )
                })?,
                moe: text(6).parse().map_err(|_| {
                    format!("line {line}: column moe is `{}`; expected true or false", text(6))
                })?,
                in_sample_step_time_s: number(7)?,
                held_out_step_time_s: number(8)?,
                measured_step_time_s: number(9)?,
            });
        }
        if predictions.is_empty() {
            return Err("it holds no rows".into());
        }
        Ok(ModelError { predictions })
    }

    /// The file `from_csv` reads, rows in the order given.
    pub fn to_csv(predictions: &[HeldOutPrediction]) -> String {
        let mut w = csv::Writer::from_writer(vec![]);
        w.write_record(MODEL_ERROR_COLUMNS).expect("in-memory write");
        for p in predictions {
            w.write_record([
                p.run_id.clone(),
                p.group.clone(),
                p.accelerator.clone(),
                p.family.clone(),
                p.stack.clone(),
                p.accelerators.to_string(),
                p.moe.to_string(),
                format!("{:.6}", p.in_sample_step_time_s),
                format!("{:.6}", p.held_out_step_time_s),
                format!("{:.6}", p.measured_step_time_s),
            ])
            .expect("in-memory write");
        }
        String::from_utf8(w.into_inner().expect("in-memory write")).expect("CSV of UTF-8 fields")
    }

    /// How much wider the error is on runs the fit did not see than on those it did: the median
    /// |ln(measured / predicted)| held out over the same in sample. An estimate outside
    /// everything measured is one such step further out, so its interval is widened by it.
    pub fn extrapolation_widening(&self) -> f64 {
        let held = median_abs(self.predictions.iter().map(HeldOutPrediction::held_out_log_ratio));
        let fitted = median_abs(
            self.predictions
                .iter()
                .map(HeldOutPrediction::in_sample_log_ratio),
        );
        if fitted > 0.0 && held.is_finite() {
            (held / fitted).max(1.0)
        } else {
            1.0
        }
    }

    /// The interval at `confidence` for an estimate in `regime`.
    ///
    /// The error of a run from a publication the fit never saw has two parts: the publication's
    /// own offset (its stack, cluster and way of measuring move all its rows together; the
    /// mean held-out log-ratio of its rows) and the scatter of its rows about that offset. The
    /// interval is the spread of every offset plus every scatter, each from the narrowest pool
    /// of the estimate's regime that holds enough of them:
    /// - offsets: of the publications of the same kind (dense or mixture of experts) that ran
    ///   the estimate's stack (each from its rows on that stack), where there are
    ///   `MIN_POOL_GROUPS`; else of every publication of the kind; else of all;
    /// - scatters: of the rows of the same kind, where there are `MIN_POOL_ROWS`; else of all
    ///   rows. Where the kind's rows in the estimate's scale class (`SCALE_CLASSES`) number
    ///   `MIN_POOL_ROWS` and scatter more widely than the pool, the pool's scatters are widened
    ///   by the ratio of their spreads (too few per publication to take them as the pool
    ///   itself: leaving a publication out would leave a class of one or two others).
    ///
    /// Every publication weighs the same, however many rows it has. `excluding_group` leaves a
    /// group out (to judge the intervals on it).
    pub fn interval(&self, regime: &Regime, confidence: f64, excluding_group: Option<&str>) -> Interval {
        let usable: Vec<&HeldOutPrediction> = self
            .predictions
            .iter()
            .filter(|p| Some(p.group.as_str()) != excluding_group)
            .collect();
        let mut groups: BTreeMap<&str, (bool, Vec<&HeldOutPrediction>)> = BTreeMap::new();
        for p in &usable {
            let g = groups.entry(&p.group).or_insert((p.moe, vec![]));
            g.0 |= p.moe;
            g.1.push(p);
        }
        let offset = |rows: &[&HeldOutPrediction]| {
            rows.iter().map(|p| p.held_out_log_ratio()).sum::<f64>() / rows.len() as f64
        };
        let kind = if regime.moe { "mixture-of-experts" } else { "dense" };
        let same_kind = |moe: bool| moe == regime.moe;

        let on_stack: Vec<f64> = groups
            .values()
            .filter(|(moe, _)| same_kind(*moe))
            .filter_map(|(_, rows)| {
                let mine: Vec<&HeldOutPrediction> =
                    rows.iter().copied().filter(|p| p.stack == regime.stack).collect();
                (!mine.is_empty()).then(|| offset(&mine))
            })
            .collect();
        let of_kind: Vec<f64> = groups
            .values()
            .filter(|(moe, _)| same_kind(*moe))
            .map(|(_, r)| offset(r))
            .collect();
        let (offsets, offsets_of) = if on_stack.len() >= MIN_POOL_GROUPS {
            (on_stack, format!("{kind} publications on {}", regime.stack))
        } else if of_kind.len() >= MIN_POOL_GROUPS {
            (of_kind, format!("{kind} publications"))
        } else {
            let all = groups.values().map(|(_, r)| offset(r)).collect();
            (all, "publications".to_string())
        };
        let scatter_of = |keep: &dyn Fn(bool, &HeldOutPrediction) -> bool| -> Vec<f64> {
            let mut out: Vec<f64> = groups
                .values()
                .flat_map(|(moe, r)| {
                    let o = offset(r);
                    r.iter()
                        .filter(move |p| keep(*moe, p))
                        .map(move |p| p.held_out_log_ratio() - o)
                })
                .collect();
            out.sort_by(f64::total_cmp);
            out
        };
        let mut scatters = scatter_of(&|moe, _| same_kind(moe));
        let scatters_of = if scatters.len() >= MIN_POOL_ROWS {
            format!("{kind} runs")
        } else {
            scatters = scatter_of(&|_, _| true);
            "runs".to_string()
        };
        let tail = (1.0 - confidence) / 2.0;
        let spread = |sorted: &[f64]| quantile(sorted, 1.0 - tail) - quantile(sorted, tail);
        let class = scale_class(regime.accelerators);
        let in_class = scatter_of(&|moe, p| same_kind(moe) && scale_class(p.accelerators) == class);
        let class_widening = if in_class.len() >= MIN_POOL_ROWS && spread(&scatters) > 0.0 {
            (spread(&in_class) / spread(&scatters)).max(1.0)
        } else {
            1.0
        };
        // The class widens the scatter (centred on 0), not the publications' offsets.
        let mut sums: Vec<f64> = offsets
            .iter()
            .flat_map(|o| scatters.iter().map(move |e| o + e * class_widening))
            .collect();
        sums.sort_by(f64::total_cmp);
        let mut low = quantile(&sums, tail);
        let mut high = quantile(&sums, 1.0 - tail);
        let centre = quantile(&sums, 0.5);

        let mut outside = vec![];
        if !usable.iter().any(|p| p.family == regime.family) {
            outside.push(format!("no measured run on {}", regime.family));
        } else if !usable
            .iter()
            .any(|p| p.family == regime.family && p.moe == regime.moe)
        {
            outside.push(format!("no measured {kind} run on {}", regime.family));
        } else if !usable.iter().any(|p| p.accelerator == regime.accelerator) {
            // Another generation of a measured family (TPU v6e beside v5e's runs).
            outside.push(format!("no measured run on {}", regime.accelerator));
        }
        if !usable.iter().any(|p| p.stack == regime.stack) {
            outside.push(format!("no measured run on stack {}", regime.stack));
        }
        let largest = usable
            .iter()
            .filter(|p| p.moe == regime.moe)
            .map(|p| p.accelerators)
            .max()
            .unwrap_or(0);
        if regime.accelerators > largest {
            outside.push(format!(
                "beyond the largest measured {kind} run ({largest} accelerators)"
            ));
        }
        let extrapolation = (!outside.is_empty()).then(|| {
            // About the interval's centre, so that an interval on one side of 1 widens on both.
            let widening = self.extrapolation_widening();
            low = centre + (low - centre) * widening;
            high = centre + (high - centre) * widening;
            format!("widened {widening:.2}x: {}", outside.join("; "))
        });
        let class_words = if class_widening > 1.0 {
            format!(
                "; widened {class_widening:.2}x to the scatter of the {} {kind} runs on {}",
                in_class.len(),
                SCALE_CLASSES[class].1
            )
        } else {
            String::new()
        };
        Interval {
            confidence,
            low_factor: low.exp(),
            high_factor: high.exp(),
            basis: format!(
                "held-out error (model refitted without each publication) of {} {scatters_of} about their publication's offset, plus the offsets of {} {offsets_of}{class_words}",
                scatters.len(),
                offsets.len()
            ),
            basis_rows: scatters.len(),
            extrapolation,
        }
    }
}

/// How well the intervals describe runs of publications they did not learn from: each group's
/// held-out predictions against the intervals learned from the other groups' errors.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Coverage {
    pub confidence: f64,
    pub rows: usize,
    pub covered: usize,
    pub covered_fraction: f64,
    /// Median of (high - low) / prediction over the rows.
    pub median_width_fraction: f64,
}

impl Coverage {
    /// The coverage of `confidence` intervals from each row's `(inside, width_fraction)`: whether
    /// its measured value fell inside, and the interval's width over its prediction.
    pub fn of(confidence: f64, judged: impl IntoIterator<Item = (bool, f64)>) -> Coverage {
        let (inside, mut widths): (Vec<bool>, Vec<f64>) = judged.into_iter().unzip();
        widths.sort_by(f64::total_cmp);
        let rows = inside.len();
        let covered = inside.iter().filter(|&&x| x).count();
        Coverage {
            confidence,
            rows,
            covered,
            covered_fraction: covered as f64 / rows.max(1) as f64,
            median_width_fraction: quantile(&widths, 0.5),
        }
    }
}

/// The coverage of `confidence` intervals on `error`'s own rows, each judged by the intervals
/// the other groups give.
pub fn coverage(error: &ModelError, confidence: f64) -> Coverage {
    Coverage::of(
        confidence,
        error.predictions.iter().map(|p| {
            let regime = Regime {
                family: p.family.clone(),
                moe: p.moe,
                accelerators: p.accelerators,
                stack: p.stack.clone(),
                accelerator: p.accelerator.clone(),
            };
            let interval = error.interval(&regime, confidence, Some(&p.group));
            (
                interval.covers(p.held_out_step_time_s, p.measured_step_time_s),
                interval.high_factor - interval.low_factor,
            )
        }),
    )
}

/// The catalog's assumptions with their ranges, a model-error one at `regime`'s 80 % interval
/// (the ranges are central 80 %s), for the whole catalog: what `plan --sensitivity` varies.
pub fn assumptions_at(catalog: &Catalog, error: &ModelError, regime: &Regime) -> Vec<Assumption> {
    catalog
        .assumptions
        .iter()
        .map(|spec| match Assumption::fixed(spec) {
            Some(a) => a,
            None => {
                let i = error.interval(regime, DEFAULT_CONFIDENCE, None);
                Assumption::from_step_time_interval(spec, i.low_factor, i.high_factor, None)
            }
        })
        .collect()
}

/// The catalog's assumptions for drawing: a model-error one becomes one entry per efficiency
/// family, each at its family's interval for the cluster size, stack and accelerator
/// `regime_of(family)` gives (publications on different silicon missed by different amounts,
/// so families are drawn independently).
pub fn assumptions_per_family(
    catalog: &Catalog,
    error: &ModelError,
    moe: bool,
    regime_of: impl Fn(&str) -> (u64, String, String),
) -> Vec<Assumption> {
    let mut out = vec![];
    for spec in &catalog.assumptions {
        match Assumption::fixed(spec) {
            Some(a) => out.push(a),
            None => {
                for family in &catalog.efficiency {
                    let (accelerators, stack, accelerator) = regime_of(&family.id);
                    let regime = Regime {
                        family: family.id.clone(),
                        moe,
                        accelerators,
                        stack,
                        accelerator,
                    };
                    let i = error.interval(&regime, DEFAULT_CONFIDENCE, None);
                    out.push(Assumption::from_step_time_interval(
                        spec,
                        i.low_factor,
                        i.high_factor,
                        Some(&family.id),
                    ));
                }
            }
        }
    }
    out
}

/// How many draws `--uncertainty` takes when the user names no `--draws`: p_best to about
/// +-3.5 points (one binomial standard error at 0.5).
pub const DEFAULT_DRAWS: usize = 200;

/// A standard normal deviate (Box-Muller; `1 - u` keeps the logarithm finite).
fn standard_normal(rng: &mut rand::rngs::StdRng) -> f64 {
    let u1: f64 = rng.random();
    let u2: f64 = rng.random();
    (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The seed of one assumption's stream of draws: `seed` mixed with the assumption's id and
/// family (FNV-1a, stable across builds and platforms), so that each assumption draws the same
/// factors whichever others the catalog lists, in whatever order.
fn stream_seed(seed: u64, a: &Assumption) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let name = format!("{}/{}", a.id, a.family.as_deref().unwrap_or(""));
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    seed ^ hash
}

/// `draws` catalogs, each with every assumption scaled by one draw of its factor. The same
/// `seed` gives the same catalogs; a layout priced in draw `d` sees the same world as every
/// other layout priced in draw `d`. Each assumption draws from its own stream
/// ([`stream_seed`]): adding a range to the catalog leaves the others' draws as they were.
pub fn drawn_catalogs(
    catalog: &Catalog,
    assumptions: &[Assumption],
    draws: usize,
    seed: u64,
) -> Vec<Catalog> {
    let mut base = with_resolved_families(catalog);
    // Sources are text the pricing never reads; a draw need not copy them.
    base.facility.sources.clear();
    for f in base.efficiency.iter_mut() {
        f.sources.clear();
    }
    for a in base.accelerators.iter_mut() {
        a.sources.clear();
    }
    let mut streams: Vec<rand::rngs::StdRng> = assumptions
        .iter()
        .map(|a| rand::rngs::StdRng::seed_from_u64(stream_seed(seed, a)))
        .collect();
    (0..draws)
        .map(|_| {
            let mut c = base.clone();
            for (a, rng) in assumptions.iter().zip(streams.iter_mut()) {
                let z = standard_normal(rng);
                apply(&mut c, a, a.factor_at(z));
            }
            c
        })
        .collect()
}

/// Rank candidates from `objectives[draw][candidate]` (lower is better; a non-finite value is a
/// candidate infeasible in that draw).
pub fn rank_draws(objectives: &[Vec<f64>], seed: u64, confidence: f64) -> Ranking {
    let n = objectives.first().map_or(0, Vec::len);
    let mut best = vec![0usize; n];
    let mut beats = vec![0usize; n];
    for draw in objectives {
        let mut winner: Option<usize> = None;
        for (c, v) in draw.iter().enumerate() {
            if v.is_finite() && winner.is_none_or(|w| *v < draw[w]) {
                winner = Some(c);
            }
            if c > 0 && v.is_finite() && (draw[0].is_nan() || *v < draw[0]) {
                beats[c] += 1;
            }
        }
        if let Some(w) = winner {
            best[w] += 1;
        }
    }
    let share = |k: usize| k as f64 / objectives.len().max(1) as f64;
    let p_beats_first: Vec<f64> = (0..n)
        .map(|c| if c == 0 { 0.0 } else { share(beats[c]) })
        .collect();
    let tie = (1.0 - confidence) / 2.0;
    Ranking {
        draws: objectives.len(),
        seed,
        p_best: best.into_iter().map(share).collect(),
        tied_with_first: (0..n).filter(|&c| c == 0 || p_beats_first[c] >= tie).collect(),
        p_beats_first,
        confidence,
    }
}

/// The line a table prints under a ranking: which entries (1-based ranks) are tied.
pub fn tie_line(r: &Ranking, what: &str) -> String {
    let ranks: Vec<String> = r.tied_with_first.iter().map(|c| (c + 1).to_string()).collect();
    let share = format!("{:.0} %", (1.0 - r.confidence) / 2.0 * 100.0);
    if ranks.len() <= 1 {
        format!(
            "{what} 1 is best in {:.0} % of {} draws; no other beats it in {share} of them (seed {})",
            r.p_best.first().copied().unwrap_or(0.0) * 100.0,
            r.draws,
            r.seed
        )
    } else {
        format!(
            "{what}s {} are a statistical tie: each beats {what} 1 in at least {share} of {} draws (seed {})",
            ranks.join(", "),
            r.draws,
            r.seed
        )
    }
}

/// A confidence level from the command line: strictly between 0 and 1.
pub fn check_confidence(flag: &str, value: f64) -> Result<f64, String> {
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(format!(
            "{flag} {value}: a confidence is strictly between 0 and 1 (e.g. 0.8 for 80 %)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_best_counts_winners_skips_infeasible_draws_and_names_ties() {
        let inf = f64::INFINITY;
        let objectives = vec![
            vec![1.0, 2.0, 3.0],
            vec![1.0, 0.5, 3.0],
            vec![inf, inf, inf],
            vec![2.0, 2.0, 1.0],
        ];
        let r = rank_draws(&objectives, 9, 0.8);
        assert_eq!(
            r.p_best,
            vec![0.25, 0.25, 0.25],
            "an exact tie goes to the earlier"
        );
        assert!(r.p_best.iter().sum::<f64>() <= 1.0);
        assert_eq!(r.p_beats_first, vec![0.0, 0.25, 0.25]);
        assert_eq!(r.tied_with_first, vec![0, 1, 2]);
        let strict = rank_draws(&objectives, 9, 0.2);
        assert_eq!(
            strict.tied_with_first,
            vec![0],
            "(1 - 0.2) / 2 = 40 % of draws to tie"
        );
    }

    #[test]
    fn drawn_catalogs_repeat_by_seed_and_their_factors_have_median_one() {
        let catalog = Catalog::builtin();
        let a = assumptions_per_family(&catalog, ModelError::builtin(), false, |_| {
            (1024, "megatron-core-2025".into(), "h100-sxm".into())
        });
        let one = drawn_catalogs(&catalog, &a, 8, 42);
        let again = drawn_catalogs(&catalog, &a, 8, 42);
        let restart = |c: &Vec<Catalog>| c.iter().map(|c| c.facility.restart_minutes).collect::<Vec<_>>();
        assert_eq!(restart(&one), restart(&again));
        assert_ne!(restart(&one), restart(&drawn_catalogs(&catalog, &a, 8, 43)));
        let many = drawn_catalogs(&catalog, &a, 401, 1);
        let mut r: Vec<f64> = restart(&many)
            .into_iter()
            .map(|m| m / catalog.facility.restart_minutes)
            .collect();
        r.sort_by(f64::total_cmp);
        // The median of 401 draws of a median-1 factor, within a few standard errors.
        assert!((r[200] - 1.0).abs() < 0.15, "median factor {}", r[200]);
        // Within the 80 % range about 80 % of the time.
        let inside = r.iter().filter(|f| (0.5..=2.0).contains(*f)).count() as f64 / r.len() as f64;
        assert!((0.72..=0.88).contains(&inside), "{inside}");
        // The model's error is drawn once per family.
        let per_family = a.iter().filter(|x| x.family.is_some()).count();
        assert_eq!(per_family, catalog.efficiency.len());
    }

    #[test]
    fn an_assumption_draws_the_same_whichever_others_the_catalog_lists() {
        let catalog = Catalog::builtin();
        let all = assumptions_per_family(&catalog, ModelError::builtin(), false, |_| {
            (1024, "megatron-core-2025".into(), "h100-sxm".into())
        });
        let restart_only: Vec<Assumption> = all.iter().filter(|a| a.id == "restart").cloned().collect();
        let mut reversed = all.clone();
        reversed.reverse();
        let restart = |c: &[Catalog]| c.iter().map(|c| c.facility.restart_minutes).collect::<Vec<_>>();
        let reference = restart(&drawn_catalogs(&catalog, &all, 16, 7));
        assert_eq!(
            reference,
            restart(&drawn_catalogs(&catalog, &restart_only, 16, 7))
        );
        assert_eq!(reference, restart(&drawn_catalogs(&catalog, &reversed, 16, 7)));
        // Streams differ between assumptions: two ranges of the same width do not move in step.
        let pue = |c: &[Catalog]| c.iter().map(|c| c.facility.pue).collect::<Vec<_>>();
        let drawn = drawn_catalogs(&catalog, &all, 16, 7);
        let restart_up: Vec<bool> = restart(&drawn)
            .iter()
            .map(|m| *m > catalog.facility.restart_minutes)
            .collect();
        let pue_up: Vec<bool> = pue(&drawn).iter().map(|p| *p > catalog.facility.pue).collect();
        assert_ne!(restart_up, pue_up);
    }

    #[test]
    fn a_model_error_assumption_spans_the_models_interval() {
        let catalog = Catalog::builtin();
        let regime = Regime {
            family: "nvidia-hopper".into(),
            moe: false,
            accelerators: 1024,
            stack: "megatron-core-2025".into(),
            accelerator: "h100-sxm".into(),
        };
        let i = ModelError::builtin().interval(&regime, DEFAULT_CONFIDENCE, None);
        let a = assumptions_at(&catalog, ModelError::builtin(), &regime);
        let m = a
            .iter()
            .find(|x| x.id == "model_error")
            .expect("the built-in model-error assumption");
        assert!((m.low - 1.0 / i.high_factor).abs() < 1e-12);
        assert!((m.high - 1.0 / i.low_factor).abs() < 1e-12);
    }

    fn prediction(group: &str, family: &str, n: u64, moe: bool, held_out: f64) -> HeldOutPrediction {
        HeldOutPrediction {
            run_id: format!("{group}-{n}-{held_out}"),
            group: group.into(),
            accelerator: "a".into(),
            family: family.into(),
            stack: "s".into(),
            accelerators: n,
            moe,
            in_sample_step_time_s: 1.0,
            held_out_step_time_s: held_out,
            measured_step_time_s: 1.0,
        }
    }

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 1.0), 5.0);
        assert!((quantile(&v, 0.1) - 1.4).abs() < 1e-12);
    }

    #[test]
    fn a_new_publication_may_be_offset_as_the_others_were() {
        // Three dense publications, each tight about its own offset (0.9, 1.0, 1.1 of the
        // prediction): a fourth may sit at any of them, so the interval spans them all.
        let mut rows = vec![];
        for (g, ratio) in [("a", 0.9), ("b", 1.0), ("c", 1.1)] {
            for i in 0..10 {
                rows.push(prediction(
                    g,
                    "hopper",
                    512,
                    false,
                    1.0 / (ratio + 0.001 * i as f64),
                ));
            }
        }
        let error = ModelError { predictions: rows };
        let regime = Regime {
            family: "hopper".into(),
            moe: false,
            accelerators: 512,
            stack: "s".into(),
            accelerator: "a".into(),
        };
        let interval = error.interval(&regime, 0.8, None);
        assert_eq!(interval.basis_rows, 30, "{interval:?}");
        assert!(
            interval.basis.contains("3 dense publications"),
            "{}",
            interval.basis
        );
        assert!(
            interval.low_factor < 0.92 && interval.high_factor > 1.08,
            "{interval:?}"
        );
        assert!(interval.extrapolation.is_none());
        // Leaving one out judges it by the other two, which (fewer than MIN_POOL_GROUPS of its
        // kind) is every publication there is.
        let without = error.interval(&regime, 0.8, Some("c"));
        assert!(without.basis.contains("2 publications"), "{}", without.basis);
        assert!(!without.covers(1.0, 1.11));
        // A mixture-of-experts estimate with no MoE rows borrows the dense ones, and says so.
        let moe = Regime { moe: true, ..regime };
        let borrowed = error.interval(&moe, 0.8, None);
        assert!(
            borrowed.basis.contains("30 runs") && borrowed.basis.contains("3 publications"),
            "{}",
            borrowed.basis
        );
    }

    #[test]
    fn an_unmeasured_family_or_scale_is_widened_and_says_so() {
        let rows: Vec<_> = (0..30)
            .map(|i| {
                let mut p = prediction("g", "hopper", 256, false, 1.0 + 0.01 * (i as f64 - 15.0));
                p.in_sample_step_time_s = 1.0 + 0.005 * (i as f64 - 15.0);
                p
            })
            .collect();
        let error = ModelError { predictions: rows };
        let seen = Regime {
            family: "hopper".into(),
            moe: false,
            accelerators: 256,
            stack: "s".into(),
            accelerator: "a".into(),
        };
        let unseen = Regime {
            family: "blackwell".into(),
            moe: false,
            accelerators: 100_000,
            stack: "s".into(),
            accelerator: "a".into(),
        };
        let a = error.interval(&seen, 0.8, None);
        let b = error.interval(&unseen, 0.8, None);
        assert!(a.extrapolation.is_none());
        let why = b.extrapolation.clone().unwrap();
        assert!(
            why.contains("no measured run on blackwell") && why.contains("beyond the largest"),
            "{why}"
        );
        assert!(b.high_factor / b.low_factor > a.high_factor / a.low_factor);
        // A measured family is still unmeasured for a kind of model none of its runs trained
        // (dense Blackwell beside MoE rows), and for another of its parts (TPU v6e beside v5e).
        let moe_on_it = Regime {
            moe: true,
            ..seen.clone()
        };
        let why = error
            .interval(&moe_on_it, 0.8, None)
            .extrapolation
            .unwrap_or_default();
        assert!(
            why.contains("no measured mixture-of-experts run on hopper"),
            "{why}"
        );
        let other_part = Regime {
            accelerator: "b".into(),
            ..seen.clone()
        };
        let why = error
            .interval(&other_part, 0.8, None)
            .extrapolation
            .unwrap_or_default();
        assert!(why.contains("no measured run on b"), "{why}");
    }

    #[test]
    fn publications_on_the_estimates_stack_give_its_offsets_where_there_are_enough() {
        // Four dense publications: three ran stack "x" and sit at 0.9, 0.92 and 0.94 of the
        // prediction, one ran "y" at 1.2. An estimate on "x" takes the three offsets of "x";
        // one on "y" (a single publication) takes all four.
        let mut rows = vec![];
        for (g, stack, ratio) in [
            ("a", "x", 0.9),
            ("b", "x", 0.92),
            ("c", "x", 0.94),
            ("d", "y", 1.2),
        ] {
            for i in 0..10 {
                let mut p = prediction(g, "hopper", 512, false, 1.0 / (ratio + 0.001 * i as f64));
                p.stack = stack.into();
                // The fit saw its rows: in sample, half the error.
                p.in_sample_step_time_s = (p.held_out_step_time_s + 1.0) / 2.0;
                rows.push(p);
            }
        }
        let error = ModelError { predictions: rows };
        let on = |stack: &str| Regime {
            family: "hopper".into(),
            moe: false,
            accelerators: 512,
            stack: stack.into(),
            accelerator: "a".into(),
        };
        let x = error.interval(&on("x"), 0.8, None);
        assert!(x.basis.contains("3 dense publications on x"), "{}", x.basis);
        assert!(x.high_factor < 1.0, "{x:?}");
        // Widening an interval that lies below 1 keeps all of it (it widens about its centre,
        // not about 1, which would move its top end down).
        let elsewhere = Regime {
            accelerator: "another part".into(),
            ..on("x")
        };
        let wide = error.interval(&elsewhere, 0.8, None);
        assert!(wide.extrapolation.is_some(), "{wide:?}");
        assert!(
            wide.low_factor < x.low_factor && wide.high_factor > x.high_factor,
            "{wide:?} against {x:?}"
        );
        let y = error.interval(&on("y"), 0.8, None);
        assert!(y.basis.contains("4 dense publications"), "{}", y.basis);
        assert!(y.high_factor > 1.1, "{y:?}");
        // A stack no run used is outside what was measured: widened, and it says so.
        let z = error.interval(&on("z"), 0.8, None);
        let why = z.extrapolation.clone().unwrap_or_default();
        assert!(why.contains("no measured run on stack z"), "{why}");
        assert!(z.high_factor / z.low_factor > y.high_factor / y.low_factor);
    }

    #[test]
    fn a_scale_class_that_scatters_more_widens_the_interval() {
        // Three publications of 30 rows each: the rows on 64 accelerators scatter +-2 %, those on
        // 2,048 (20 of them) +-10 %. An estimate on 2,048 is widened to their spread; one on 64
        // is not narrowed (the pool's spread is the least an interval keeps).
        let mut rows = vec![];
        for g in ["a", "b", "c"] {
            for i in 0..30 {
                let (n, half_width) = if g != "a" && i < 10 {
                    (2048, 0.10)
                } else {
                    (64, 0.02)
                };
                let step = half_width * (i % 10) as f64 / 4.5 - half_width;
                rows.push(prediction(g, "hopper", n, false, 1.0 / (1.0 + step)));
            }
        }
        let error = ModelError { predictions: rows };
        let at = |accelerators: u64| Regime {
            family: "hopper".into(),
            moe: false,
            accelerators,
            stack: "s".into(),
            accelerator: "a".into(),
        };
        let large = error.interval(&at(2048), 0.8, None);
        let small = error.interval(&at(64), 0.8, None);
        assert!(
            large
                .basis
                .contains("to the scatter of the 20 dense runs on over 1,024 accelerators"),
            "{}",
            large.basis
        );
        assert!(!small.basis.contains("widened"), "{}", small.basis);
        assert!(large.high_factor / large.low_factor > small.high_factor / small.low_factor);
        assert_eq!(scale_class(64), 0);
        assert_eq!(scale_class(65), 1);
        assert_eq!(scale_class(1025), 2);
    }

    #[test]
    fn model_error_files_round_trip_and_bad_cells_are_named() {
        let rows = vec![prediction("g", "hopper", 8, true, 1.25)];
        let text = ModelError::to_csv(&rows);
        assert_eq!(ModelError::from_csv(&text).unwrap().predictions, rows);
        let bad = text.replace("1.250000", "-1");
        let e = ModelError::from_csv(&bad).unwrap_err();
        assert!(e.contains("held_out_step_time_s"), "{e}");
        assert!(ModelError::from_csv("run_id\n")
            .unwrap_err()
            .contains("expected `run_id,group"));
    }

    #[test]
    fn confidence_must_be_strictly_between_0_and_1() {
        assert_eq!(check_confidence("--confidence", 0.9), Ok(0.9));
        for v in [0.0, 1.0, 80.0, f64::NAN] {
            assert!(check_confidence("--confidence", v)
                .unwrap_err()
                .contains("--confidence"));
        }
    }
}
