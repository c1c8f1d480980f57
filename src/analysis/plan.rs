//! `clustersweep plan`: design the cluster under a budget, a power envelope and a deadline.
//!
//! This module owns the planner: which accelerators and cluster sizes to consider, the
//! constraints and why each candidate was dropped, the ranking, the binding constraint of each
//! plan, and the Pareto set over time to train, cost and energy.
//!
//! The planner sweeps accelerator type and count together with the layout, on the sweep engine:
//! for every (accelerator, count) pair it finds the fastest layout that fits. Within a pair,
//! cost (rental: proportional to time; capex: fixed plus energy) and energy (proportional to
//! time) fall with time to train, so the fastest layout of a pair dominates every other layout
//! of that pair, and the plans and the Pareto set are drawn from the pairs' fastest layouts.

use crate::engine::search::{Objective, SearchSpace};
use crate::engine::sweep::driver::{
    fingerprint, fnv1a_hex, open_engines, parse_shard, progress_bar, shard_range, sweep_range, Adapters,
    Backend,
};
use crate::engine::sweep::{objective_value, top_entry, Counts, Partial, Ranked, SweepLayout, TopEntry};
use crate::error::Error;
use crate::input::catalog::{Catalog, Network};
use crate::input::scenario::{resolve_facility, AxisSpec, ConstraintsSection, ScenarioFile, SearchSection};
use crate::model::run::{facility_power_mw, Estimate, Pricing};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// One plan: a layout and everything `estimate --json` says of it, plus what a planner reads.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Plan {
    pub layout: SweepLayout,
    #[serde(flatten)]
    pub estimate: Estimate,
    pub time_to_train_days: f64,
    /// As `TopEntry`'s: the model's held-out error around the step time and time to train.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_time_s_interval: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_train_s_interval: Option<[f64; 2]>,
    /// The constraint closest to its limit, e.g. "power-bound: 4.98 GW used of 5.00".
    pub binding_constraint: Binding,
    /// With `--uncertainty`: the share of draws of the assumptions in which this plan is the
    /// best of the ranked plans, and whether it is statistically tied with the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_best: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tied_with_best: Option<bool>,
    /// The layout's index in its (accelerator, count) pair's space (see [`SearchSpace::pair`]).
    #[serde(skip)]
    pub space_index: u64,
    /// What a launch of the plan needs (`plan --emit`): the resolved layout and training, and
    /// the accelerator's scale-up domain.
    #[serde(skip)]
    pub launch: Option<Launch>,
}

/// A plan's layout as the model priced it.
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    pub layout: crate::model::Layout,
    pub training: crate::model::Training,
    pub scale_up_domain: u32,
}

/// Why (accelerator, count) pairs were dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Dropped {
    /// Facility power above `power_mw`.
    pub power: u64,
    /// Cost above `budget_usd`.
    pub budget: u64,
    /// Time to train above `max_days`.
    pub time: u64,
    /// No layout of the pair is valid and fits in memory.
    pub no_layout: u64,
}

/// Everything `plan` reports.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct PlanReport {
    pub model: String,
    /// The model's shape, for `plan --emit`.
    #[serde(skip)]
    pub model_shape: crate::model::Transformer,
    #[serde(serialize_with = "crate::units::whole_number")]
    pub parameters: f64,
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub tokens: f64,
    pub objective: String,
    pub constraints: ConstraintsSection,
    pub pricing: Pricing,
    /// Ranked by the objective.
    pub plans: Vec<Plan>,
    /// The best plan of each accelerator type, in the objective's order.
    pub per_accelerator: Vec<Plan>,
    /// The non-dominated plans over time to train, cost and energy (with `--pareto`).
    pub pareto: Option<Vec<Plan>>,
    /// Every pair's fastest layout, feasible or not, for the scaling plot.
    #[serde(skip)]
    pub scaling: Vec<Plan>,
    /// (accelerator, count) pairs considered, and why some were dropped.
    pub pairs: u64,
    pub dropped: Dropped,
    /// Accelerators left out entirely, and why.
    pub skipped_accelerators: Vec<String>,
    /// Layouts evaluated over all pairs.
    pub counts: Counts,
    pub elapsed_s: f64,
    pub backend: String,
    /// What went wrong on the way and how it was handled (a GPU that failed mid-plan).
    pub notes: Vec<String>,
    /// With `--uncertainty`: how the ranked plans rank across draws of the assumptions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<crate::engine::sweep::driver::Ranking>,
    /// The confidence of every plan's `step_time_s_interval` and `time_to_train_s_interval`
    /// (`--confidence`), None until they are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_confidence: Option<f64>,
    /// With `--sensitivity`: the best plan at each end of each assumption's range, by swing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<Vec<SensitivityRow>>,
}

/// One assumption's row of `plan --sensitivity`: the best plan and its time to train with the
/// assumption at the low and at the high end of its range, every other one at its central
/// value.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SensitivityRow {
    /// The assumption's id in `catalog/assumptions.toml`.
    pub assumption: String,
    pub name: String,
    /// The factors on the catalog's values at the two ends (10th and 90th percentiles).
    pub low: f64,
    pub high: f64,
    /// The value itself at each end, for an assumption that scales a single facility value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_value: Option<f64>,
    /// The facility key those values are of (`restart_minutes`): its name carries the unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_key: Option<String>,
    /// The scenario's `[cluster]` sets every value this assumption scales, so it is the user's and
    /// not varied: both ends are the central plan.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub set_in_scenario: bool,
    /// The best plan in words ("131072 x gb300, tp 32 pp 1 dp 4096"), None when no plan meets
    /// the constraints at that end.
    pub plan_low: Option<String>,
    pub plan_high: Option<String>,
    pub time_to_train_days_low: Option<f64>,
    pub time_to_train_days_high: Option<f64>,
    /// The binding constraint's kind at each end.
    pub binding_low: Option<BindingKind>,
    pub binding_high: Option<BindingKind>,
    /// |days at high - days at low| (infinite when one end has no plan): the rows' order.
    pub swing_days: f64,
    pub source: String,
}

/// A plan in words, as the sensitivity table names it.
pub fn plan_words(p: &Plan) -> String {
    let l = &p.layout;
    format!(
        "{} x {}, tp {} pp {} dp {}{}",
        crate::units::human_count(l.count),
        l.accelerator,
        l.tp,
        l.pp,
        l.dp,
        if l.cp > 1 {
            format!(" cp {}", l.cp)
        } else {
            String::new()
        }
    )
}

/// The scenario of one (accelerator, count) pair of a plan: `file` searched over `search` on
/// that accelerator at that count alone.
pub fn pair_file(
    file: &ScenarioFile,
    search: &SearchSection,
    accelerator: &str,
    network: &Network,
    count: u64,
) -> ScenarioFile {
    let mut pair = file.clone();
    let mut s = search.clone();
    s.accelerators = Some(vec![accelerator.to_string()]);
    s.counts = Some(AxisSpec::List(vec![count]));
    // The pair's one network out of the axes' combinations; a network key the search leaves
    // out stays out (so that drawn catalog values still reach it).
    if s.scale_up_domain.is_some() {
        s.scale_up_domain = Some(vec![network.scale_up_domain]);
    }
    if s.scale_out_gbps.is_some() {
        s.scale_out_gbps = Some(vec![network.scale_out_gbps]);
    }
    if s.pod_size.is_some() {
        s.pod_size = Some(vec![network.pod_size]);
    }
    if s.pod_oversubscription.is_some() {
        s.pod_oversubscription = Some(vec![network.pod_oversubscription]);
    }
    if s.topology.is_some() {
        s.topology = Some(vec![network.topology]);
    }
    pair.search = Some(s);
    pair
}

/// The `[search]` a plan sweeps each pair over: the file's, with a placeholder count.
pub fn plan_search(file: &ScenarioFile) -> SearchSection {
    let mut search = file.search.clone().unwrap_or_default();
    search.counts.get_or_insert(AxisSpec::List(vec![64]));
    search
}

/// The limit of `constraints` that `e` breaks, checked in this order (power, budget, deadline);
/// None when it keeps them all.
fn broken_limit(constraints: &ConstraintsSection, e: &Estimate) -> Option<Limit> {
    broken_limit_of(constraints, e.power_mw, e.cost_usd, e.time_to_train_s)
}

/// The first limit of `constraints` that a plan of this facility power, cost and time to train
/// breaks (what `broken_limit` reads of an estimate).
fn broken_limit_of(
    constraints: &ConstraintsSection,
    power_mw: f64,
    cost_usd: f64,
    time_to_train_s: f64,
) -> Option<Limit> {
    if constraints.power_mw.is_some_and(|p| power_mw > p) {
        Some(Limit::Power)
    } else if constraints.budget_usd.is_some_and(|b| cost_usd > b) {
        Some(Limit::Budget)
    } else if constraints
        .max_days
        .is_some_and(|d| time_to_train_s / 86400.0 > d)
    {
        Some(Limit::Deadline)
    } else {
        None
    }
}

/// A limit a plan can break.
enum Limit {
    Power,
    Budget,
    Deadline,
}

/// True when `e` keeps every limit of `constraints`.
pub fn meets(constraints: &ConstraintsSection, e: &Estimate) -> bool {
    broken_limit(constraints, e).is_none()
}

/// True when a plan of this facility power, cost and time to train keeps every limit of
/// `constraints` (`meets` for the shader's metrics).
pub fn meets_values(
    constraints: &ConstraintsSection,
    power_mw: f64,
    cost_usd: f64,
    time_to_train_s: f64,
) -> bool {
    broken_limit_of(constraints, power_mw, cost_usd, time_to_train_s).is_none()
}

/// The scenario `clustersweep plan` runs with no file: the question from the news. A dense
/// 2-trillion-parameter model (LLaMA-3-style, 160 layers of width 32,768) trained on 100
/// trillion tokens within a year, under $100B of capital and 5 GW of facility power, over every
/// accelerator in the catalog, on sites of at most 1.2 GW (a Stargate Abilene-sized campus).
pub const DEFAULT_PLAN: &str = r#"# The question from the news: a frontier model under $100B and 5 GW. Which accelerator, how
# many, on what network, and with which layout?
[model]
name = "dense-2t"        # a LLaMA-3-style dense model of 2.05T parameters
layers = 160
hidden = 32768
heads = 256
kv_heads = 16
ffn = 106496
ffn_kind = "swiglu"
vocab = 131072
seq_len = 8192

[training]
tokens = 100e12          # 100T tokens
dtype = "fp8"            # accelerators without FP8 (V100, A100, MI250X) are left out

[cluster]
pricing = "capex"        # accelerators, their servers and network, and the facility
site_power_mw = 1200     # campuses of at most 1.2 GW (Stargate Abilene); only DP crosses sites

[constraints]
budget_usd = 100e9
power_mw = 5000
max_days = 365           # trained within a year

[search]
global_batch_tokens = 67108864   # batches of up to 64M tokens (8,192 sequences)
tp = [1, 2, 4, 8, 16, 32, 64]
cp = [1, 2, 4]
microbatch = [1, 2]
interleave = [1, 2, 4]
zero = [1, 3]
# on what network: full-bisection pods of 3,072 (Llama 3's) or 32,768 accelerators (two tiers
# of 51.2 Tb/s switches at 800G hold 16,384: a larger pod takes a third), the tier joining pods
# at 1:7 (Llama 3's) or full bisection; each accelerator keeps its catalog NIC
pod_size = [3072, 32768]
pod_oversubscription = [1, 7]
topology = ["two-tier", "three-tier"]
"#;

/// Example scenarios `clustersweep init NAME` prints.
pub fn example(name: &str) -> Option<&'static str> {
    match name {
        "stargate" => Some(DEFAULT_PLAN),
        "estimate" => Some(crate::input::scenario::DEFAULT_SCENARIO),
        "sweep" => Some(EXAMPLE_SWEEP),
        _ => None,
    }
}

pub const EXAMPLES: [&str; 3] = ["stargate", "estimate", "sweep"];

/// An example sweep: LLaMA 3 405B on three accelerators and three cluster sizes.
pub const EXAMPLE_SWEEP: &str = r#"# Which of three accelerators, how many, and which layout trains LLaMA 3 405B fastest?
[model]
preset = "llama3-405b"

[training]
global_batch = 2048
tokens = 15e12
dtype = "bf16"

[cluster]
pricing = "rental"

[search]
accelerators = ["h100-sxm", "b200", "gb200"]
counts = [8192, 16384, 32768]
"#;

/// The planner's options.
/// Above this many layouts a plan warns before it starts (a 10^11-layout plan used to run
/// with no word).
pub const LARGE_PLAN_LAYOUTS: u64 = 10_000_000_000;

/// The warning a plan of `layouts` over `pairs` (accelerator, count) pairs gives before it
/// starts, where it is large.
pub fn large_plan_warning(pairs: usize, layouts: u64) -> Option<String> {
    (layouts > LARGE_PLAN_LAYOUTS).then(|| {
        format!(
            "the plan's {pairs} (accelerator, count) pairs hold {:.2e} layouts (more than 1e10): expect minutes to hours; narrow [search] (fewer stacks, recompute or microbatch values) or [constraints]",
            layouts as f64
        )
    })
}

#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub objective: Objective,
    pub backend: Backend,
    pub pareto: bool,
    pub top: usize,
}

/// Count candidates up to `max`: 1.5x steps from 64 ({2^k, 3 * 2^(k-1)}), and `max` itself
/// rounded down to a multiple of a power of two (a sixteenth of it at most, between 8 and
/// 4,096, so that it has many divisors), so that a binding cap is reached within a few percent.
pub fn count_grid(max: u64) -> Vec<u32> {
    let mut counts: Vec<u64> = vec![];
    let mut k = 64u64;
    while k <= max && k <= u32::MAX as u64 {
        counts.push(k);
        if k * 3 / 2 <= max {
            counts.push(k * 3 / 2);
        }
        k *= 2;
    }
    let granularity = (max / 16).max(1).ilog2().clamp(3, 12);
    let cap = max >> granularity << granularity;
    if cap >= 64 && cap <= u32::MAX as u64 {
        counts.push(cap);
    }
    counts.sort();
    counts.dedup();
    counts.into_iter().map(|c| c as u32).collect()
}

fn positive(key: &str, v: Option<f64>) -> Result<Option<f64>, String> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => {
            Err(format!("[constraints] {key} = {x}: expected a positive number"))
        }
        other => Ok(other),
    }
}

/// Human form of the binding constraint of a plan of `count` accelerators, given the fastest
/// plan of the next larger size of the same accelerator (`larger`), if any:
/// - a limit within 10 % of its value (the next size up in the planner's grid, 1.5x, breaks it);
/// - else, when the larger cluster trains slower although its steps are faster, failures are what
///   stop it: interruptions (one every `1 / (count * rate)` hours) eat more than the extra speed;
/// - else, when the larger cluster's steps are slower too, communication stops it (scale-bound);
/// - else nothing binds: the plan trades time against cost or energy.
fn binding(
    constraints: &ConstraintsSection,
    e: &Estimate,
    count: u64,
    failure_rate_per_hour: f64,
    larger: Option<&Estimate>,
) -> Binding {
    use crate::units::human_usd;
    let mut limits: Vec<Binding> = vec![];
    let mut add_limit = |kind: BindingKind, value: f64, limit: f64, text: String| {
        limits.push(Binding {
            kind,
            value: Some(value),
            limit: Some(limit),
            text,
        })
    };
    if let Some(p) = constraints.power_mw {
        add_limit(
            BindingKind::Power,
            e.power_mw,
            p,
            format!(
                "power-bound: {} used of {}",
                crate::units::human_mw(e.power_mw),
                crate::units::human_mw(p)
            ),
        );
    }
    if let Some(b) = constraints.budget_usd {
        add_limit(
            BindingKind::Budget,
            e.cost_usd,
            b,
            format!(
                "budget-bound: {} spent of {}",
                human_usd(e.cost_usd),
                human_usd(b)
            ),
        );
    }
    if let Some(d) = constraints.max_days {
        let days = e.time_to_train_s / 86400.0;
        add_limit(
            BindingKind::Deadline,
            days,
            d,
            format!("deadline-bound: {days:.1} days of {d:.0}"),
        );
    }
    if let Some(n) = constraints.max_accelerators {
        add_limit(
            BindingKind::Count,
            count as f64,
            n as f64,
            format!(
                "count-bound: {} accelerators of {}",
                crate::units::human_count(count),
                crate::units::human_count(n)
            ),
        );
    }
    let share = |b: &Binding| b.value.unwrap_or(0.0) / b.limit.unwrap_or(f64::INFINITY);
    let closest = limits.into_iter().max_by(|a, b| share(a).total_cmp(&share(b)));
    if let Some(b) = &closest {
        if share(b) >= 0.9 {
            return b.clone();
        }
    }
    let unlimited = |kind: BindingKind, value: Option<f64>, text: String| Binding {
        kind,
        value,
        limit: None,
        text,
    };
    match larger {
        Some(l) if l.time_to_train_s >= e.time_to_train_s && l.tokens_per_s > e.tokens_per_s => unlimited(
            BindingKind::Reliability,
            Some(e.goodput),
            format!(
                "reliability-bound: goodput {:.0} %, an interruption every {:.0} min",
                100.0 * e.goodput,
                60.0 / (count as f64 * failure_rate_per_hour)
            ),
        ),
        Some(l) if l.time_to_train_s >= e.time_to_train_s => unlimited(
            BindingKind::Scale,
            None,
            "scale-bound: a larger cluster steps slower".into(),
        ),
        _ => match closest {
            Some(b) => unlimited(
                BindingKind::None,
                Some(share(&b)),
                format!("none binding (closest limit at {:.0} %)", 100.0 * share(&b)),
            ),
            None => unlimited(BindingKind::None, None, "unconstrained".into()),
        },
    }
}

/// What stops a plan from going faster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BindingKind {
    /// Facility power: `value` MW used of `limit`.
    Power,
    /// Money: `value` USD of `limit`.
    Budget,
    /// Time to train: `value` days of `limit`.
    Deadline,
    /// Accelerators: `value` of `limit`.
    Count,
    /// Failures: a larger cluster trains slower although its steps are faster (`value` is the
    /// goodput fraction).
    Reliability,
    /// Communication: a larger cluster's steps are slower.
    Scale,
    /// No limit within 10 % (`value`: the closest limit's used fraction, if any).
    None,
}

/// The binding constraint of a plan, for machines (`kind`, `value`, `limit`) and people (`text`).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Binding {
    pub kind: BindingKind,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub text: String,
}

/// True when `a` is at least as good as `b` on time, cost and energy, and better on one.
pub fn dominates(a: &Estimate, b: &Estimate) -> bool {
    let (at, ac, ae) = (a.time_to_train_s, a.cost_usd, a.energy_mwh);
    let (bt, bc, be) = (b.time_to_train_s, b.cost_usd, b.energy_mwh);
    at <= bt && ac <= bc && ae <= be && (at < bt || ac < bc || ae < be)
}

/// The non-dominated members of `plans`, in their order.
pub fn pareto_set(plans: &[Plan]) -> Vec<Plan> {
    plans
        .iter()
        .filter(|p| !plans.iter().any(|q| dominates(&q.estimate, &p.estimate)))
        .cloned()
        .collect()
}

/// Run the planner on a scenario file.
pub fn plan(
    file: &ScenarioFile,
    catalog: &Catalog,
    opts: &PlanOptions,
    origin: &str,
) -> Result<PlanReport, Error> {
    let work = PlanWork::resolve(file, catalog, origin)?;
    let clock = std::time::Instant::now();
    let every_pair: Vec<usize> = (0..work.pairs.len()).collect();
    let swept = work.sweep(&every_pair, opts.backend)?;
    let elapsed_s = clock.elapsed().as_secs_f64();
    Ok(work.finish(swept.results, opts, swept.notes, elapsed_s, swept.backend))
}

/// Plan the `k`-th (1-based) of `n` slices of the plan's (accelerator, count) pairs: each
/// pair's fastest layout, for `plan --merge` to finish (`plan --shard K/N`).
pub fn plan_shard(
    file: &ScenarioFile,
    catalog: &Catalog,
    backend: Backend,
    shard: (u64, u64),
    origin: &str,
) -> Result<PlanPart, Error> {
    let work = PlanWork::resolve(file, catalog, origin)?;
    let clock = std::time::Instant::now();
    let mine = work.shard_pairs(shard.0, shard.1);
    let swept = work.sweep(&mine, backend)?;
    let mut counts = Counts::default();
    for r in &swept.results {
        counts.add(&r.counts);
    }
    Ok(PlanPart {
        part: PLAN_PART_KIND.into(),
        plan_fingerprint: work.fingerprint(),
        shard: format!("{}/{}", shard.0, shard.1),
        pairs: work.pairs.len(),
        counts,
        elapsed_s: clock.elapsed().as_secs_f64(),
        backend: swept.backend,
        notes: swept.notes,
        results: swept.results,
    })
}

/// Finish a sharded plan from its parts (`plan --merge`): `file` and `catalog` must be what the
/// shards planned (their fingerprint says so), each shard given once, and all of them unless
/// `allow_partial` (then a note names the missing shards and the plan is of the pairs planned).
pub fn plan_merge(
    file: &ScenarioFile,
    catalog: &Catalog,
    opts: &PlanOptions,
    parts: Vec<(String, PlanPart)>,
    allow_partial: bool,
    origin: &str,
) -> Result<PlanReport, Error> {
    let work = PlanWork::resolve(file, catalog, origin)?;
    let fingerprint = work.fingerprint();
    let usage = Error::Usage;
    let shard_of =
        |path: &str, p: &PlanPart| parse_shard(&p.shard).map_err(|e| usage(format!("--merge {path}: {e}")));
    let shards = match parts.first() {
        Some((path, p)) => shard_of(path, p)?.1,
        None => return Err(usage("--merge: no parts given".into())),
    };
    let mut seen: Vec<Option<&str>> = vec![None; shards as usize];
    for (path, p) in &parts {
        if p.part != PLAN_PART_KIND {
            return Err(usage(format!(
                "--merge {path}: not a `plan --shard K/N` part (its `part` is \"{}\")",
                p.part
            )));
        }
        if p.plan_fingerprint != fingerprint || p.pairs != work.pairs.len() {
            return Err(usage(format!(
                "--merge {path}: the part was planned from another scenario, catalog or [constraints] (fingerprint {}, this plan's {fingerprint}): merge with the scenario and --catalog the shards ran",
                p.plan_fingerprint
            )));
        }
        let k = shard_of(path, p)?;
        if k.1 != shards {
            return Err(usage(format!(
                "--merge {path}: shard {} is of {} shards, the first part's of {shards}: merge the parts of one split",
                p.shard, k.1
            )));
        }
        if let Some(other) = seen[k.0 as usize - 1].replace(path) {
            return Err(usage(format!(
                "--merge: {other} and {path} are both shard {}: give each shard once",
                p.shard
            )));
        }
        let in_shard = work.shard_pairs(k.0, k.1);
        if let Some(r) = p.results.iter().find(|r| !in_shard.contains(&r.pair)) {
            return Err(usage(format!(
                "--merge {path}: pair {} is not in shard {}",
                r.pair, p.shard
            )));
        }
    }
    let missing: Vec<u64> = (1..=shards).filter(|k| seen[*k as usize - 1].is_none()).collect();
    let mut notes: Vec<String> = parts.iter().flat_map(|(_, p)| p.notes.clone()).collect();
    if !missing.is_empty() {
        let unplanned: usize = missing.iter().map(|k| work.shard_pairs(*k, shards).len()).sum();
        let named: Vec<String> = missing.iter().map(|k| format!("{k}/{shards}")).collect();
        let what = format!(
            "shard{} {} missing: {unplanned} of {} (accelerator, count) pairs unplanned",
            if missing.len() > 1 { "s" } else { "" },
            named.join(", "),
            work.pairs.len()
        );
        if !allow_partial {
            return Err(usage(format!(
                "--merge: {what}; add the missing parts, or finish with --allow-partial"
            )));
        }
        notes.push(format!("{what}: the plans are of the pairs planned only"));
    }
    let elapsed_s = parts.iter().map(|(_, p)| p.elapsed_s).fold(0.0, f64::max);
    let mut backends: Vec<String> = parts.iter().map(|(_, p)| p.backend.clone()).collect();
    backends.sort();
    backends.dedup();
    let mut results: Vec<PairResult> = parts.into_iter().flat_map(|(_, p)| p.results).collect();
    results.sort_by_key(|r| r.pair);
    Ok(work.finish(results, opts, notes, elapsed_s, backends.join(" + ")))
}

/// What `plan --merge` reads: the `part` field of a [`PlanPart`].
pub const PLAN_PART_KIND: &str = "plan";

/// What `plan --shard K/N --json` writes: the fastest layout of each (accelerator, count) pair
/// of its slice, and what identifies the plan it is a part of.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanPart {
    /// Always "plan": what kind of part this is.
    pub part: String,
    /// A hash of every pair's space, the constraints and the pricing; a merge must match it.
    pub plan_fingerprint: String,
    /// "K/N": the K-th of N slices.
    pub shard: String,
    /// The pairs of the whole plan (all shards).
    pub pairs: usize,
    /// Layouts this part evaluated.
    pub counts: Counts,
    pub elapsed_s: f64,
    pub backend: String,
    pub notes: Vec<String>,
    pub results: Vec<PairResult>,
}

/// One (accelerator, count) pair, swept: its fastest layout's index in the pair's space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PairResult {
    /// The pair's place in the plan's list of pairs (accelerators in catalog order, then counts).
    pub pair: usize,
    pub accelerator: String,
    pub count: u64,
    /// None when no layout of the pair is valid and fits.
    pub best_index: Option<u64>,
    pub counts: Counts,
}

/// A plan's pairs swept, and how.
struct Swept {
    results: Vec<PairResult>,
    notes: Vec<String>,
    backend: String,
}

/// What a plan sweeps, resolved once: its (accelerator, count) pairs' spaces and the
/// accelerators it left out.
struct PlanWork {
    constraints: ConstraintsSection,
    pricing: Pricing,
    base: SearchSpace,
    skipped: Vec<String>,
    pairs: Vec<(u64, SearchSpace)>,
}

impl PlanWork {
    fn resolve(file: &ScenarioFile, catalog: &Catalog, origin: &str) -> Result<PlanWork, Error> {
        let err = |message: String| Error::Scenario {
            origin: origin.to_string(),
            message,
        };
        let constraints = file.constraints.clone().unwrap_or_default();
        positive("budget_usd", constraints.budget_usd).map_err(err)?;
        positive("power_mw", constraints.power_mw).map_err(err)?;
        positive("max_days", constraints.max_days).map_err(err)?;
        if constraints.max_accelerators == Some(0) {
            return Err(err(
                "[constraints] max_accelerators = 0: expected at least 1".into()
            ));
        }
        let pricing = file.cluster.pricing.unwrap_or_default();
        // The facility keys are checked here, before any sweep, so a bad one names itself.
        resolve_facility(&file.cluster, catalog).map_err(err)?;

        // The full space resolves the model, training and the accelerators (with their overrides).
        let mut whole = file.clone();
        whole.search = Some(plan_search(file));
        let base = SearchSpace::resolve(&whole, catalog, Objective::Time, origin)?;

        // `[search] counts`, when given, are the same for every accelerator.
        let listed_counts = match file.search.as_ref().and_then(|s| s.counts.as_ref()) {
            Some(_) => Some(search_counts(file, catalog, origin)?),
            None => None,
        };
        let mut skipped = base.left_out.clone();
        let mut work: Vec<(usize, Vec<u32>)> = vec![];
        for (index, acc) in base.accelerators.iter().enumerate() {
            let id = acc.spec.id.clone();
            // Once per accelerator, not once per network it is tried on.
            let mut skip = |why: String| {
                if !skipped.contains(&why) {
                    skipped.push(why);
                }
            };
            if !acc.supports_dtype {
                skip(format!("{id}: no {} rate", base.dtype().name()));
                continue;
            }
            if !acc.priced {
                skip(format!("{id}: no {} price in the catalog", pricing.price_kind()));
                continue;
            }
            let per_accelerator_mw = facility_power_mw(1.0, &acc.economics);
            let mut max = constraints.max_accelerators.unwrap_or(u64::MAX);
            if let Some(p) = constraints.power_mw {
                max = max.min((p / per_accelerator_mw).floor() as u64);
            }
            if let (Some(b), Pricing::Capex) = (constraints.budget_usd, pricing) {
                max = max.min((b / acc.economics.capex_per_accelerator_usd).floor() as u64);
            }
            let counts = match &listed_counts {
                Some(listed) => listed.clone(),
                None if max == u64::MAX => {
                    return Err(err(
                        "[constraints] give power_mw, budget_usd (with pricing = \"capex\") or max_accelerators, or [search] counts, so the planner knows how large to go".into(),
                    ))
                }
                None => count_grid(max),
            };
            let counts: Vec<u32> = counts.into_iter().filter(|c| (*c as u64) <= max).collect();
            if counts.is_empty() {
                skipped.push(format!("{id}: the constraints allow fewer than 64"));
                continue;
            }
            work.push((index, counts));
        }

        // One space per (accelerator, count) pair, each derived from the whole space's.
        let pairs = work
            .iter()
            .flat_map(|(index, counts)| {
                counts
                    .iter()
                    .map(|count| (*count as u64, base.pair(*index, *count)))
            })
            .collect();
        Ok(PlanWork {
            constraints,
            pricing,
            base,
            skipped,
            pairs,
        })
    }

    /// FNV-1a over every pair's space fingerprint, the constraints and the pricing: what a part
    /// of this plan must carry.
    fn fingerprint(&self) -> String {
        let spaces: Vec<String> = self.pairs.iter().map(|(_, s)| fingerprint(s)).collect();
        fnv1a_hex(&format!("{spaces:?}|{:?}|{:?}", self.constraints, self.pricing))
    }

    /// The pairs shard `k` of `n` plans: those whose first layout falls in the shard's slice of
    /// all the pairs' layouts laid end to end, so that shards hold about as many layouts each.
    fn shard_pairs(&self, k: u64, n: u64) -> Vec<usize> {
        let total: u64 = self.pairs.iter().map(|(_, s)| s.size).sum();
        let slice = shard_range(total, k, n);
        let mut start = 0u64;
        let mut mine = vec![];
        for (i, (_, space)) in self.pairs.iter().enumerate() {
            // The last shard also takes empty pairs at the very end.
            if slice.contains(&start) || (k == n && start == total) {
                mine.push(i);
            }
            start += space.size;
        }
        mine
    }

    /// The fastest layout of each pair in `which`, on the engine `backend` asks for.
    fn sweep(&self, which: &[usize], backend: Backend) -> Result<Swept, Error> {
        // The engine: a GPU as `--backend` asks (the sweep's rules), or the CPU.
        let notes = Mutex::new(vec![]);
        let engine = open_engines(backend, Adapters::Best, &notes)?.into_iter().next();
        let spaces: Vec<&SearchSpace> = which.iter().map(|i| &self.pairs[*i].1).collect();
        let layouts: u64 = spaces.iter().map(|s| s.size).sum();
        if let Some(warning) = large_plan_warning(spaces.len(), layouts) {
            eprintln!("warning: {warning}");
            notes.lock().expect("notes lock").push(warning);
        }
        let bar = progress_bar(layouts);
        let fastest = |space: &SearchSpace| -> Partial {
            let range = 0..space.size;
            // Pruned: the same fastest layout, found without evaluating what cannot beat it.
            let partial = sweep_range(engine.as_ref(), space, range, 1, true, &notes);
            if let Some(bar) = &bar {
                bar.inc(space.size);
            }
            partial
        };
        // Pairs are small spaces: the CPU runs them in parallel, one per core; a GPU one by one.
        let partials: Vec<Partial> = if engine.is_some() {
            spaces.iter().map(|s| fastest(s)).collect()
        } else {
            use rayon::prelude::*;
            spaces.par_iter().map(|s| fastest(s)).collect()
        };
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let results = which
            .iter()
            .zip(partials)
            .map(|(i, partial)| PairResult {
                pair: *i,
                accelerator: self.pairs[*i].1.accelerators[0].spec.id.clone(),
                count: self.pairs[*i].0,
                best_index: partial.top.into_sorted().first().map(|b| b.index),
                counts: partial.counts,
            })
            .collect();
        Ok(Swept {
            results,
            notes: notes.into_inner().expect("notes lock"),
            backend: engine
                .as_ref()
                .map_or("cpu".into(), |e| format!("gpu ({})", e.name())),
        })
    }

    /// The report from the pairs' fastest layouts (`results`, in pair order): each pair's
    /// binding constraint, which looks at the next larger size of the same accelerator, the
    /// drops, the ranking and the Pareto set.
    fn finish(
        self,
        results: Vec<PairResult>,
        opts: &PlanOptions,
        notes: Vec<String>,
        elapsed_s: f64,
        backend: String,
    ) -> PlanReport {
        let constraints = self.constraints;
        let mut counts_total = Counts::default();
        let mut dropped = Dropped::default();
        let mut feasible: Vec<Plan> = vec![];
        let mut scaling: Vec<Plan> = vec![];
        let pairs = results.len() as u64;
        let mut best: Vec<(u64, TopEntry, f64, Option<Launch>)> = vec![];
        for r in &results {
            counts_total.add(&r.counts);
            let (count, space) = &self.pairs[r.pair];
            // top_entry re-prices the layout in f64 from its index alone.
            let ranked = r.best_index.map(|index| Ranked {
                index,
                objective: f64::NAN,
            });
            match ranked.and_then(|b| top_entry(space, 1, &b)) {
                Some(entry) => {
                    let launch = space.candidate(entry.index).ok().map(|c| Launch {
                        layout: c.layout,
                        training: space.training_for(&c),
                        scale_up_domain: space.accelerators[c.accelerator].hardware.scale_up_domain,
                    });
                    best.push((
                        *count,
                        entry,
                        space.accelerators[0].economics.failure_rate_per_hour,
                        launch,
                    ))
                }
                None => dropped.no_layout += 1,
            }
        }
        for (count, entry, rate, launch) in &best {
            let e = &entry.estimate;
            let larger = best
                .iter()
                .filter(|(c, other, ..)| {
                    *c > *count
                        && other.layout.accelerator == entry.layout.accelerator
                        && other.layout.network == entry.layout.network
                })
                .min_by_key(|(c, ..)| *c)
                .map(|(_, larger, ..)| &larger.estimate);
            let mut plan = to_plan(entry.clone(), binding(&constraints, e, *count, *rate, larger));
            plan.launch = *launch;
            scaling.push(plan.clone());
            match broken_limit(&constraints, e) {
                Some(Limit::Power) => dropped.power += 1,
                Some(Limit::Budget) => dropped.budget += 1,
                Some(Limit::Deadline) => dropped.time += 1,
                None => feasible.push(plan),
            }
        }
        // Ties (networks that do not change the step) go to the cheaper plan, then the
        // leaner one.
        let order = |a: &Plan, b: &Plan| {
            objective_value(opts.objective, &a.estimate)
                .total_cmp(&objective_value(opts.objective, &b.estimate))
                .then(a.estimate.cost_usd.total_cmp(&b.estimate.cost_usd))
                .then(a.estimate.energy_mwh.total_cmp(&b.estimate.energy_mwh))
        };
        feasible.sort_by(order);
        let mut per_accelerator: Vec<Plan> = vec![];
        for p in &feasible {
            if !per_accelerator
                .iter()
                .any(|q| q.layout.accelerator == p.layout.accelerator)
            {
                per_accelerator.push(p.clone());
            }
        }
        let pareto = opts.pareto.then(|| pareto_set(&feasible));
        let plans = feasible.into_iter().take(opts.top.max(1)).collect();
        PlanReport {
            model: self.base.model_name.clone(),
            model_shape: self.base.model,
            parameters: crate::model::flops::total_params(&self.base.model),
            tokens: self.base.tokens(),
            objective: opts.objective.name().into(),
            constraints,
            pricing: self.pricing,
            plans,
            per_accelerator,
            pareto,
            scaling,
            pairs,
            dropped,
            skipped_accelerators: self.skipped,
            counts: counts_total,
            elapsed_s,
            notes,
            backend,
            uncertainty: None,
            interval_confidence: None,
            sensitivity: None,
        }
    }
}

/// The counts `[search] counts` lists.
fn search_counts(file: &ScenarioFile, catalog: &Catalog, origin: &str) -> Result<Vec<u32>, Error> {
    let mut f = file.clone();
    if let Some(s) = f.search.as_mut() {
        s.accelerators = None;
    }
    let space = SearchSpace::resolve(&f, catalog, Objective::Time, origin)?;
    Ok(space.axes[crate::engine::search::AXIS_COUNT].clone())
}

fn to_plan(entry: TopEntry, binding_constraint: Binding) -> Plan {
    Plan {
        layout: entry.layout,
        estimate: entry.estimate,
        time_to_train_days: entry.estimate.time_to_train_s / 86400.0,
        step_time_s_interval: None,
        time_to_train_s_interval: None,
        binding_constraint,
        p_best: None,
        tied_with_best: None,
        space_index: entry.index,
        launch: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The planner derives each (accelerator, count) pair's space from the whole space's
    /// instead of resolving the scenario once per pair (hundreds of times for the default
    /// question); the derived spaces are the ones resolving gave, field for field, dense and MoE.
    #[test]
    fn derived_pair_spaces_are_the_spaces_resolving_each_pair_gives() {
        let moe = "[model]\npreset = \"mixtral-8x22b\"\n[training]\nglobal_batch = 1024\ntokens = 1e12\n\
                   [cluster]\npricing = \"rental\"\nsite_power_mw = 1.0\n[constraints]\npower_mw = 4.0\n\
                   [search]\naccelerators = [\"h100-sxm\", \"gb200\"]\nep = [1, 8]\ntp = [1, 2]\n\
                   scale_out_gbps = [400, 800]\ntopology = [\"two-tier\", \"three-tier\"]\n";
        for (text, origin) in [(DEFAULT_PLAN, "default"), (moe, "moe")] {
            let file = ScenarioFile::parse(text, origin).unwrap();
            let catalog = Catalog::builtin();
            let work = PlanWork::resolve(&file, &catalog, origin).unwrap();
            assert!(work.pairs.len() > 10, "{origin}: {} pairs", work.pairs.len());
            let search = plan_search(&file);
            for (count, derived) in &work.pairs {
                let id = &derived.accelerators[0].spec.id;
                let pair = pair_file(&file, &search, id, &derived.accelerators[0].network, *count);
                let resolved = SearchSpace::resolve(&pair, &catalog, Objective::Time, origin).unwrap();
                assert_eq!(
                    fingerprint(derived),
                    fingerprint(&resolved),
                    "{origin}: {id} x {count}"
                );
                assert_eq!(derived.size, resolved.size);
                assert_eq!(derived.model_name, resolved.model_name);
                assert_eq!(derived.accelerators.len(), 1);
                assert_eq!(
                    (
                        derived.accelerators[0].priced,
                        derived.accelerators[0].supports_dtype
                    ),
                    (
                        resolved.accelerators[0].priced,
                        resolved.accelerators[0].supports_dtype
                    )
                );
            }
        }
    }

    #[test]
    fn count_grid_steps_by_half_and_reaches_the_cap() {
        let g = count_grid(100_000);
        assert_eq!(&g[..4], &[64, 96, 128, 192]);
        assert_eq!(*g.last().unwrap(), 98304);
        assert!(g.contains(&65536));
        assert!(g
            .windows(2)
            .all(|w| w[0] < w[1] && w[1] as f64 / w[0] as f64 <= 1.5 + 1e-9));
    }

    fn an_estimate(power_mw: f64, cost_usd: f64, days: f64, goodput: f64) -> Estimate {
        use crate::model::test_support::*;
        let e =
            crate::model::run::estimate(&llama3_8b(), &training(), &h100(), &economics(), &plain_layout());
        Estimate {
            power_mw,
            cost_usd,
            time_to_train_s: days * 86400.0,
            goodput,
            ..e
        }
    }

    #[test]
    fn binding_names_the_limit_within_ten_percent_else_the_failures() {
        let limits = ConstraintsSection {
            budget_usd: Some(100e9),
            power_mw: Some(5000.0),
            max_days: Some(365.0),
            max_accelerators: Some(1_000_000),
        };
        let at_power = an_estimate(4980.0, 60e9, 100.0, 0.95);
        assert_eq!(
            binding(&limits, &at_power, 100_000, 2e-5, None).text,
            "power-bound: 4.98 GW used of 5.00 GW"
        );
        let at_budget = an_estimate(3000.0, 95e9, 100.0, 0.95);
        assert_eq!(
            binding(&limits, &at_budget, 100_000, 2e-5, None).text,
            "budget-bound: $95.00B spent of $100.00B"
        );
        let at_deadline = an_estimate(300.0, 5e9, 360.0, 0.95);
        assert_eq!(
            binding(&limits, &at_deadline, 10_000, 2e-5, None).text,
            "deadline-bound: 360.0 days of 365"
        );
        let at_count = an_estimate(300.0, 5e9, 100.0, 0.95);
        assert_eq!(
            binding(&limits, &at_count, 950_000, 2e-5, None).text,
            "count-bound: 950,000 accelerators of 1,000,000"
        );
        // A larger cluster whose steps are faster but which trains slower: failures bind.
        // 131,072 accelerators failing 2e-5 times an hour each: one interruption every 22.9 min.
        let failing = an_estimate(300.0, 17e9, 100.0, 0.54);
        let larger = Estimate {
            tokens_per_s: failing.tokens_per_s * 1.3,
            goodput: 0.4,
            ..an_estimate(450.0, 26e9, 110.0, 0.4)
        };
        assert_eq!(
            binding(&limits, &failing, 131_072, 2e-5, Some(&larger)).text,
            "reliability-bound: goodput 54 %, an interruption every 23 min"
        );
        let slower_steps = Estimate {
            tokens_per_s: failing.tokens_per_s * 0.9,
            ..larger
        };
        assert_eq!(
            binding(&limits, &failing, 131_072, 2e-5, Some(&slower_steps)).text,
            "scale-bound: a larger cluster steps slower"
        );
        let faster = an_estimate(450.0, 26e9, 80.0, 0.4);
        assert_eq!(
            binding(&limits, &failing, 131_072, 2e-5, Some(&faster)).text,
            "none binding (closest limit at 27 %)"
        );
        assert_eq!(
            binding(&ConstraintsSection::default(), &failing, 64, 2e-5, None).text,
            "unconstrained"
        );
        // The machine-readable side: kind, value and limit in the limit's own units.
        let power = binding(&limits, &at_power, 100_000, 2e-5, None);
        assert_eq!(
            (power.kind, power.value, power.limit),
            (BindingKind::Power, Some(4980.0), Some(5000.0))
        );
        let reliability = binding(&limits, &failing, 131_072, 2e-5, Some(&larger));
        assert_eq!(
            (reliability.kind, reliability.value, reliability.limit),
            (BindingKind::Reliability, Some(0.54), None)
        );
        let json = serde_json::to_value(&power).unwrap();
        assert_eq!(json["kind"], "power");
        assert_eq!(json["limit"], 5000.0);
    }

    /// Regression: a plan over 10^11 layouts ran with no progress and no word of its size.
    #[test]
    fn a_plan_over_1e10_layouts_warns_before_it_starts() {
        assert_eq!(large_plan_warning(40, 9_000_000_000), None);
        let w = large_plan_warning(40, 100_000_000_000).unwrap();
        assert!(
            w.contains("40 (accelerator, count) pairs hold 1.00e11 layouts"),
            "{w}"
        );
    }

    #[test]
    fn dominance_needs_no_worse_everywhere_and_better_somewhere() {
        let a = an_estimate(1.0, 10.0, 10.0, 1.0);
        let cheaper = an_estimate(1.0, 9.0, 10.0, 1.0);
        let slower_cheaper = an_estimate(1.0, 9.0, 11.0, 1.0);
        assert!(dominates(&cheaper, &a) && !dominates(&a, &cheaper));
        assert!(!dominates(&slower_cheaper, &a) && !dominates(&a, &slower_cheaper));
        assert!(!dominates(&a, &a));
    }
}
