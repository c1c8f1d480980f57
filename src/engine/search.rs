//! The search space of a sweep: the `[search]` section of a scenario file, resolved into axes,
//! and the mixed-radix numbering that turns a 64-bit index into one layout.
//!
//! This module owns what a sweep covers and how a layout is found from its index, on the CPU
//! (here) and on the GPU. Twin: `shaders/sweep.wgsl` (`digits`, `candidate_at`). Layouts are never
//! stored: an index, the axes and the model are all it takes to rebuild one.
//!
//! Axes, outermost first: accelerator, stack, tp, cp, ep, microbatch, sequence_parallel,
//! recompute (the per-layer knobs: one [`crate::model::profile::Profile`] serves everything
//! inside them), then count, pp, interleave, zero, recompute_layers, offload_layers, global_batch.

use crate::error::Error;
use crate::input::catalog::{AcceleratorSpec, Catalog, Facility, Network, StackSpec, Topology};
use crate::input::scenario::{
    apply_overrides, dtype_problem, price_problem, resolve_facility, resolve_model, resolve_stack,
    resolve_training, AxisSpec, ScenarioFile, SearchSection,
};
use crate::model::run::{estimate, Economics, Estimate};
use crate::model::{
    check_layout, check_placement, check_stack, Hardware, Layout, Recompute, Training, Transformer,
};
use serde::{Deserialize, Serialize};

/// What a sweep ranks by. Every objective is minimised; MFU is negated.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    // The discriminants are the shaders' OBJECTIVE_* codes (checked by a test).
    /// Time to train the token budget.
    Time = 0,
    /// Cost of the run (rental or purchase, by the scenario's pricing).
    Cost = 1,
    /// Energy of the run.
    Energy = 2,
    /// Model FLOPs utilisation (higher is better).
    Mfu = 3,
}

impl Objective {
    pub const ALL: [Objective; 4] = [
        Objective::Time,
        Objective::Cost,
        Objective::Energy,
        Objective::Mfu,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Objective::Time => "time",
            Objective::Cost => "cost",
            Objective::Energy => "energy",
            Objective::Mfu => "mfu",
        }
    }
    /// GPU code of the objective (`shaders/sweep.wgsl` reads it).
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// Axis positions in the mixed radix, outermost first.
pub const AXIS_ACCELERATOR: usize = 0;
pub const AXIS_STACK: usize = 1;
pub const AXIS_TP: usize = 2;
pub const AXIS_CP: usize = 3;
pub const AXIS_EP: usize = 4;
pub const AXIS_MICROBATCH: usize = 5;
pub const AXIS_SP: usize = 6;
pub const AXIS_RECOMPUTE: usize = 7;
pub const AXIS_COUNT: usize = 8;
pub const AXIS_PP: usize = 9;
pub const AXIS_INTERLEAVE: usize = 10;
pub const AXIS_ZERO: usize = 11;
pub const AXIS_RECOMPUTE_LAYERS: usize = 12;
pub const AXIS_OFFLOAD_LAYERS: usize = 13;
pub const AXIS_GLOBAL_BATCH: usize = 14;
pub const N_AXES: usize = 15;
/// Axes that a profile depends on: the outermost eight.
pub const PROFILE_AXES: usize = 8;

pub const AXIS_NAMES: [&str; N_AXES] = [
    "accelerators",
    "stacks",
    "tp",
    "cp",
    "ep",
    "microbatch",
    "sequence_parallel",
    "recompute",
    "counts",
    "pp",
    "interleave",
    "zero",
    "recompute_layers",
    "offload_layers",
    "global_batch",
];

/// One accelerator of the space, resolved.
#[derive(Clone, Debug)]
pub struct SpaceAccelerator {
    /// The catalog entry with `[cluster]` overrides and this network's domain and NIC rate.
    pub spec: AcceleratorSpec,
    /// The network it runs on (one of the `[search]` network axes' combinations).
    pub network: Network,
    pub hardware: Hardware,
    pub economics: Economics,
    /// The catalog has a rate for the run's dtype.
    pub supports_dtype: bool,
    /// The scenario's pricing has a price for it.
    pub priced: bool,
}

/// One software stack of the space, resolved.
#[derive(Clone, Debug)]
pub struct SpaceStack {
    pub spec: StackSpec,
    /// The run's training settings under this stack; `global_batch` is set per layout.
    pub training: Training,
}

/// The resolved space.
#[derive(Clone, Debug)]
pub struct SearchSpace {
    pub model_name: String,
    pub model: Transformer,
    pub accelerators: Vec<SpaceAccelerator>,
    pub stacks: Vec<SpaceStack>,
    /// Values of each axis (the accelerator and stack axes hold indices into `accelerators` and
    /// `stacks`; booleans and recompute modes are 0/1 and 0/1/2).
    pub axes: [Vec<u32>; N_AXES],
    /// When set, the global-batch axis holds one value, a bound in sequences.
    pub global_batch_bound: bool,
    pub objective: Objective,
    /// Layouts in the space: the product of the axis lengths.
    pub size: u64,
    /// Accelerators left out because none of the `[search]` networks fits them, each with why.
    pub left_out: Vec<String>,
}

/// Why a decoded layout is not priced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Invalid {
    /// `count` is not a multiple of `tp * pp * cp`.
    Degrees,
    /// The layout breaks one of the model's rules (see `check_layout`), or the batch bound leaves
    /// no batch it can split, or sequence parallelism is asked without tensor parallelism.
    Layout,
    /// The accelerator has no rate for the run's format.
    Dtype,
    /// The stack cannot run it (a parallelism, overlap, ZeRO stage, recomputation mode or format
    /// it lacks; see `check_stack`).
    Stack,
}

/// A decoded layout: which accelerator and stack, the layout, and its global batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub accelerator: usize,
    pub stack: usize,
    pub layout: Layout,
    pub global_batch: u32,
}

fn expand(key: &str, spec: &AxisSpec) -> Result<Vec<u32>, String> {
    let values: Vec<u64> = match spec {
        AxisSpec::List(v) => v.clone(),
        AxisSpec::Range(r) => {
            if r.from == 0 || r.to < r.from {
                return Err(format!(
                    "[search] {key}: a range needs 1 <= from <= to, got from = {}, to = {}",
                    r.from, r.to
                ));
            }
            match (r.step, r.factor) {
                (Some(_), Some(_)) => return Err(format!("[search] {key}: give step or factor, not both")),
                (None, Some(f)) if f < 2 => {
                    return Err(format!("[search] {key}: factor = {f}, expected at least 2"))
                }
                (None, Some(f)) => std::iter::successors(Some(r.from), |x| x.checked_mul(f))
                    .take_while(|x| *x <= r.to)
                    .collect(),
                (Some(0), None) => return Err(format!("[search] {key}: step = 0, expected at least 1")),
                (step, None) => (r.from..=r.to)
                    .step_by(step.unwrap_or(1) as usize)
                    .take(1 << 20)
                    .collect(),
            }
        }
    };
    if values.is_empty() {
        return Err(format!("[search] {key} is empty: give at least one value"));
    }
    if values.len() > 1 << 16 {
        return Err(format!(
            "[search] {key} has {} values; at most 65,536 per axis",
            values.len()
        ));
    }
    values
        .into_iter()
        .map(|v| {
            u32::try_from(v)
                .ok()
                .filter(|v| *v >= 1 || matches!(key, "zero" | "recompute_layers" | "offload_layers"))
                .ok_or_else(|| format!("[search] {key}: value {v} is out of range (1 to 2^32 - 1)"))
        })
        .collect::<Result<Vec<u32>, String>>()
        .and_then(|values| listed_once(key, &values).map(|_| values))
}

/// A `[search]` list is non-empty and names each value once: a repeated value would sweep the
/// same layouts twice and rank them twice.
fn listed_once<T: PartialEq + std::fmt::Debug>(key: &str, values: &[T]) -> Result<(), String> {
    if values.is_empty() {
        return Err(format!("[search] {key} is empty: give at least one value"));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(format!("[search] {key} lists {v:?} twice: give each value once"));
        }
    }
    Ok(())
}

fn powers_of_two(max: u32) -> Vec<u32> {
    std::iter::successors(Some(1u32), |x| x.checked_mul(2))
        .take_while(|x| *x <= max)
        .collect()
}

/// The divisors of `n`, ascending: pairs up to its square root (a scan to `n` took 25 s for
/// `layers = 4294967295`).
pub fn divisors(n: u32) -> Vec<u32> {
    let mut low = vec![];
    let mut high = vec![];
    let mut d = 1u32;
    while (d as u64) * (d as u64) <= n as u64 {
        if n.is_multiple_of(d) {
            low.push(d);
            if d != n / d {
                high.push(n / d);
            }
        }
        d += 1;
    }
    low.extend(high.into_iter().rev());
    low
}

/// The networks `[search]` combines for one accelerator, each as the accelerator entry and the
/// facility it runs in: every combination of the network axes' values, less the scale-up domains
/// and NIC rates the part does not ship with and the pods its topology cannot build at that
/// NIC rate. Without network axes, the one network of `[cluster]` and the catalog.
fn network_variants(
    spec: &AcceleratorSpec,
    facility: &Facility,
    search: &SearchSection,
    catalog: &Catalog,
) -> Result<Vec<(AcceleratorSpec, Facility)>, String> {
    if !search.has_network_axes() {
        return Ok(vec![(spec.clone(), facility.clone())]);
    }
    let numbers =
        |key: &str, values: &Option<Vec<f64>>, least: f64, default: f64| -> Result<Vec<f64>, String> {
            let values = values.clone().unwrap_or(vec![default]);
            listed_once(key, &values)?;
            match values.iter().find(|v| !(v.is_finite() && **v >= least)) {
                Some(v) => Err(format!(
                    "[search] {key}: value {v}, expected a number of at least {least}"
                )),
                None => Ok(values),
            }
        };
    let domains = search
        .scale_up_domain
        .clone()
        .unwrap_or(vec![spec.scale_up_domain]);
    listed_once("scale_up_domain", &domains)?;
    if let Some(d) = domains.iter().find(|d| **d == 0) {
        return Err(format!(
            "[search] scale_up_domain: value {d}, expected at least 1"
        ));
    }
    let gbps = numbers(
        "scale_out_gbps",
        &search.scale_out_gbps,
        f64::MIN_POSITIVE,
        spec.scale_out_gbps,
    )?;
    let pods = numbers("pod_size", &search.pod_size, 1.0, facility.pod_size)?;
    let oversubscriptions = numbers(
        "pod_oversubscription",
        &search.pod_oversubscription,
        1.0,
        facility.pod_oversubscription,
    )?;
    let topologies = search.topology.clone().unwrap_or(vec![facility.topology]);
    listed_once("topology", &topologies)?;
    let shipped = spec.shipped_domains();
    let rates = spec.shipped_nic_rates();
    let mut variants = vec![];
    for &domain in &domains {
        // A `[cluster] scale_up_domain` override is the user's own what-if: keep it.
        let ships = shipped.contains(&domain) || domain == spec.scale_up_domain;
        let Some(sized) = spec.with_scale_up_domain(domain).filter(|_| ships) else {
            continue;
        };
        // As for domains: the rates the part is built with, or the `[cluster]` override.
        for &rate in gbps
            .iter()
            .filter(|r| rates.contains(r) || **r == spec.scale_out_gbps)
        {
            for &topology in &topologies {
                for &pod_size in &pods {
                    // Of the listed topologies, a pod two tiers build is built in two: a third
                    // tier would only add switches, optics and latency (a `[cluster]` topology
                    // is the user's what-if and is kept).
                    let needless_third_tier = search.topology.is_some()
                        && topology == Topology::ThreeTier
                        && pod_size <= catalog.network.max_pod_size(rate, Topology::TwoTier);
                    if pod_size > catalog.network.max_pod_size(rate, topology) || needless_third_tier {
                        continue;
                    }
                    for &pod_oversubscription in &oversubscriptions {
                        let mut spec = sized.clone();
                        spec.scale_out_gbps = rate;
                        let mut facility = facility.clone();
                        facility.topology = topology;
                        facility.pod_size = pod_size;
                        facility.pod_oversubscription = pod_oversubscription;
                        variants.push((spec, facility));
                    }
                }
            }
        }
    }
    Ok(variants)
}

impl SearchSpace {
    /// The space of one accelerator of this space (by index) at one cluster size: the planner's
    /// (accelerator, count) pair, derived without resolving the scenario again. The same space
    /// as resolving the file with `[search] accelerators = [that id]` and `counts = [count]`.
    pub fn pair(&self, accelerator: usize, count: u32) -> SearchSpace {
        let mut pair = self.clone();
        pair.accelerators = vec![self.accelerators[accelerator].clone()];
        pair.axes[AXIS_ACCELERATOR] = vec![0];
        pair.axes[AXIS_COUNT] = vec![count];
        pair.size = pair.axes.iter().map(|v| v.len() as u64).product();
        pair
    }

    /// Resolve a scenario file's `[model]`, `[training]`, `[cluster]` and `[search]` into a space.
    /// `[layout]` is ignored: the sweep searches it.
    ///
    /// Defaults for axes `[search]` leaves out:
    /// - accelerators: `[cluster] accelerator` if set, else every catalog entry;
    /// - counts: `[cluster] count` if set, else powers of two from 8 to 65,536;
    /// - tp: powers of two up to the heads (at most 64), within and beyond the scale-up domain;
    /// - pp: every divisor of the layer count;
    /// - cp: 1, 2, 4, 8, 16; ep: 1 (dense), powers of two up to the experts (MoE);
    /// - microbatch: 1, 2, 4, 8; interleave: 1, 2, 3, 4, 5, 6, 8;
    /// - recompute: none, selective, full; sequence_parallel: off, on; zero: 0 to 3;
    /// - global batch: `[training] global_batch` as a bound (each layout takes the largest batch
    ///   not above it that `dp * microbatch` divides).
    pub fn resolve(
        file: &ScenarioFile,
        catalog: &Catalog,
        objective: Objective,
        origin: &str,
    ) -> Result<SearchSpace, Error> {
        let err = |message: String| Error::Scenario {
            origin: origin.to_string(),
            message,
        };
        let search = file.search.clone().unwrap_or_default();
        let (model_name, model) = resolve_model(&file.model, catalog).map_err(err)?;

        // The global batch: an axis, a bound in tokens, or [training] global_batch as a bound.
        let seq = model.seq_len as f64;
        let (gb_values, global_batch_bound) = match (&search.global_batch, search.global_batch_tokens) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "[search] give global_batch or global_batch_tokens, not both".into()
                ))
            }
            (Some(spec), None) => (expand("global_batch", spec).map_err(err)?, false),
            (None, Some(tokens)) => {
                let seqs = (tokens / seq).floor();
                if !(seqs >= 1.0 && seqs < u32::MAX as f64) {
                    return Err(err(format!(
                        "[search] global_batch_tokens = {tokens}: expected at least one sequence ({seq} tokens)"
                    )));
                }
                (vec![seqs as u32], true)
            }
            (None, None) => {
                match file.training.global_batch {
                    Some(gb) if gb >= 1 => (vec![gb], true),
                    _ => return Err(err(
                        "[training] global_batch or [search] global_batch / global_batch_tokens is needed"
                            .into(),
                    )),
                }
            }
        };
        // Stacks.
        let stack_ids: Vec<String> = match &search.stacks {
            Some(ids) if ids.is_empty() => {
                return Err(err(
                    "[search] stacks is empty: give at least one catalog id".into()
                ))
            }
            Some(ids) => {
                listed_once("stacks", ids).map_err(err)?;
                ids.clone()
            }
            None => vec![resolve_stack(&file.training, catalog).map_err(err)?.id.clone()],
        };
        let mut stacks = vec![];
        for id in &stack_ids {
            let spec = catalog.stack(id).ok_or_else(|| {
                err(format!(
                    "[search] stacks: `{id}` is not a known stack{}; known: {}",
                    crate::error::did_you_mean(id, catalog.stacks.iter().map(|s| s.id.as_str())),
                    catalog.stack_ids()
                ))
            })?;
            let mut training =
                resolve_training(&file.training, &model, Some(gb_values[0]), spec).map_err(err)?;
            training.global_batch = 0;
            stacks.push(SpaceStack {
                spec: spec.clone(),
                training,
            });
        }
        if stacks
            .iter()
            .all(|st| !st.training.stack.supports_format(st.training.dtype))
        {
            return Err(err(format!(
                "[training] dtype = \"{}\": none of the searched stacks can train in it",
                stacks[0].training.dtype.name()
            )));
        }
        let training = stacks[0].training;

        // Accelerators.
        let ids: Vec<String> = match (&search.accelerators, &file.cluster.accelerator) {
            (Some(ids), _) => ids.clone(),
            (None, Some(id)) => vec![id.clone()],
            (None, None) => catalog.accelerators.iter().map(|a| a.id.clone()).collect(),
        };
        if ids.is_empty() {
            return Err(err(
                "[search] accelerators is empty: give at least one catalog id".into(),
            ));
        }
        listed_once("accelerators", &ids).map_err(err)?;
        if let Some(values) = &search.sequence_parallel {
            listed_once("sequence_parallel", values).map_err(err)?;
        }
        if let Some(values) = &search.recompute {
            listed_once("recompute", values).map_err(err)?;
        }
        let pricing = file.cluster.pricing.unwrap_or_default();
        let facility = resolve_facility(&file.cluster, catalog).map_err(err)?;
        let mut accelerators = vec![];
        let mut left_out = vec![];
        for id in &ids {
            let spec = catalog.accelerator(id).ok_or_else(|| {
                err(format!(
                    "[search] accelerators: `{id}` is not in the catalog{}; known: {}",
                    crate::error::did_you_mean(id, catalog.accelerators.iter().map(|a| a.id.as_str())),
                    catalog.accelerator_ids()
                ))
            })?;
            let spec = apply_overrides(&file.cluster, spec.clone()).map_err(err)?;
            let priced = price_problem(pricing, &spec).is_none();
            if objective == Objective::Cost && !priced {
                return Err(err(format!(
                    "--objective cost: {} (or leave `{}` out of [search] accelerators)",
                    price_problem(pricing, &spec).unwrap_or_default(),
                    spec.id
                )));
            }
            let variants = network_variants(&spec, &facility, &search, catalog).map_err(err)?;
            if variants.is_empty() && search.accelerators.is_none() {
                left_out.push(format!(
                    "{id}: ships in none of the [search] networks (scale_up_domain {:?}, scale_out_gbps {:?})",
                    spec.shipped_domains(),
                    spec.shipped_nic_rates()
                ));
            } else if variants.is_empty() {
                return Err(err(format!(
                    "[search] accelerators lists `{id}`, which none of the [search] networks fits: it ships in scale_up_domain sizes {:?} with scale_out_gbps {:?}, and a pod_size must fit its topology at the NIC rate; leave it out or widen the network axes",
                    spec.shipped_domains(),
                    spec.shipped_nic_rates()
                )));
            }
            for (spec, facility) in variants {
                accelerators.push(SpaceAccelerator {
                    hardware: catalog.hardware_in(&spec, &facility),
                    economics: catalog.economics_in(&spec, &facility, pricing),
                    network: catalog.network_of(&spec, &facility),
                    supports_dtype: dtype_problem(training.dtype, &spec).is_none(),
                    priced,
                    spec,
                });
            }
        }
        if accelerators.is_empty() {
            return Err(err(
                "[search] no accelerator ships in the listed scale_up_domain sizes and scale_out_gbps rates with a pod its topology can build: widen the network axes".into(),
            ));
        }
        if accelerators.iter().all(|a| !a.supports_dtype) {
            return Err(err(format!(
                "[training] dtype = \"{}\": none of the searched accelerators has a rate for it",
                training.dtype.name()
            )));
        }

        let axis = |key: &str, given: &Option<AxisSpec>, default: Vec<u32>| -> Result<Vec<u32>, Error> {
            match given {
                Some(spec) => expand(key, spec).map_err(err),
                None => Ok(default),
            }
        };
        let counts = match (&search.counts, file.cluster.count) {
            (Some(spec), _) => expand("counts", spec).map_err(err)?,
            (None, Some(c)) => vec![u32::try_from(c).ok().filter(|c| *c >= 1).ok_or_else(|| {
                err(format!(
                    "[cluster] count = {c}: expected 1 to 2^32 - 1 accelerators"
                ))
            })?],
            (None, None) => (3..=16).map(|k| 1u32 << k).collect(),
        };
        let moe = model.is_moe();
        let axes: [Vec<u32>; N_AXES] = [
            (0..accelerators.len() as u32).collect(),
            (0..stacks.len() as u32).collect(),
            axis("tp", &search.tp, powers_of_two(model.heads.min(64)))?,
            axis("cp", &search.cp, powers_of_two(16))?,
            axis(
                "ep",
                &search.ep,
                if moe {
                    powers_of_two(model.experts.min(256))
                } else {
                    vec![1]
                },
            )?,
            axis("microbatch", &search.microbatch, vec![1, 2, 4, 8])?,
            search
                .sequence_parallel
                .clone()
                .unwrap_or(vec![false, true])
                .into_iter()
                .map(u32::from)
                .collect(),
            search
                .recompute
                .clone()
                .unwrap_or(Recompute::ALL.to_vec())
                .into_iter()
                .map(Recompute::code)
                .collect(),
            counts,
            axis("pp", &search.pp, divisors(model.layers))?,
            axis("interleave", &search.interleave, vec![1, 2, 3, 4, 5, 6, 8])?,
            axis("zero", &search.zero, vec![0, 1, 2, 3])?,
            axis("recompute_layers", &search.recompute_layers, vec![0])?,
            axis("offload_layers", &search.offload_layers, vec![0])?,
            gb_values,
        ];
        for (i, values) in axes.iter().enumerate() {
            if values.is_empty() {
                return Err(err(format!(
                    "[search] {} is empty: give at least one value",
                    AXIS_NAMES[i]
                )));
            }
        }
        if let Some(z) = axes[AXIS_ZERO].iter().find(|z| **z > 3) {
            return Err(err(format!("[search] zero: value {z}, expected 0 to 3")));
        }
        let size = axes
            .iter()
            .try_fold(1u64, |acc, v| acc.checked_mul(v.len() as u64))
            .ok_or_else(|| err("[search] the space has more than 2^64 layouts: narrow an axis".into()))?;
        Ok(SearchSpace {
            model_name,
            model,
            accelerators,
            stacks,
            axes,
            global_batch_bound,
            objective,
            size,
            left_out,
        })
    }

    /// The run's format and token budget, which every stack of the space shares.
    pub fn dtype(&self) -> crate::model::Dtype {
        self.stacks[0].training.dtype
    }
    pub fn tokens(&self) -> f64 {
        self.stacks[0].training.tokens
    }
    pub fn moe_imbalance(&self) -> f64 {
        self.stacks[0].training.moe_imbalance
    }

    /// Radix of each axis.
    pub fn radices(&self) -> [u64; N_AXES] {
        std::array::from_fn(|i| self.axes[i].len() as u64)
    }

    /// Layouts sharing one set of per-layer knobs: the product of the inner axes.
    pub fn inner_size(&self) -> u64 {
        self.radices()[PROFILE_AXES..].iter().product()
    }

    /// The digits of `index`, outermost first.
    pub fn digits(&self, mut index: u64) -> [u32; N_AXES] {
        let radices = self.radices();
        let mut d = [0u32; N_AXES];
        for i in (0..N_AXES).rev() {
            d[i] = (index % radices[i]) as u32;
            index /= radices[i];
        }
        d
    }

    /// The index of `digits`.
    pub fn index(&self, digits: &[u32; N_AXES]) -> u64 {
        let radices = self.radices();
        digits
            .iter()
            .zip(radices)
            .fold(0u64, |acc, (d, r)| acc * r + *d as u64)
    }

    /// The layout at `digits`, or why it is not a layout to price. Memory is not checked here.
    pub fn candidate_at(&self, digits: &[u32; N_AXES]) -> Result<Candidate, Invalid> {
        let v = |axis: usize| self.axes[axis][digits[axis] as usize];
        let accelerator = v(AXIS_ACCELERATOR) as usize;
        let stack = v(AXIS_STACK) as usize;
        let stack_switches = &self.stacks[stack].training.stack;
        let (tp, pp, cp) = (v(AXIS_TP), v(AXIS_PP), v(AXIS_CP));
        let count = v(AXIS_COUNT) as u64;
        let model_parallel = tp as u64 * pp as u64 * cp as u64;
        if !count.is_multiple_of(model_parallel) {
            return Err(Invalid::Degrees);
        }
        let dp = (count / model_parallel) as u32;
        let sequence_parallel = v(AXIS_SP) == 1;
        if sequence_parallel && tp == 1 {
            return Err(Invalid::Layout);
        }
        let microbatch = v(AXIS_MICROBATCH);
        let interleave = v(AXIS_INTERLEAVE);
        let global_batch = if self.global_batch_bound {
            // The largest batch under the bound that dp * microbatch (and pp, to interleave) divide.
            let unit = dp as u64 * microbatch as u64 * if interleave > 1 { pp as u64 } else { 1 };
            let bound = v(AXIS_GLOBAL_BATCH) as u64;
            let gb = bound / unit * unit;
            if gb == 0 {
                return Err(Invalid::Layout);
            }
            gb as u32
        } else {
            v(AXIS_GLOBAL_BATCH)
        };
        let layout = Layout {
            tp,
            pp,
            dp,
            cp,
            ep: v(AXIS_EP),
            // Megatron-Core's default expert tensor parallelism: the profile of a layer depends
            // only on the outer axes, which folding (etp < tp, needing dp) would break.
            etp: tp,
            microbatch,
            interleave,
            recompute: Recompute::ALL[v(AXIS_RECOMPUTE) as usize],
            sequence_parallel,
            // TP overlap follows sequence parallelism wherever the stack can overlap.
            tp_overlap: sequence_parallel && stack_switches.tp_overlap,
            zero: v(AXIS_ZERO),
            recompute_layers: v(AXIS_RECOMPUTE_LAYERS),
            offload_layers: v(AXIS_OFFLOAD_LAYERS),
            // Hybrid sharding wherever the stack shards so (its default).
            hybrid_shard: stack_switches.hybrid_shard,
        };
        let training = Training {
            global_batch,
            ..self.stacks[stack].training
        };
        if check_layout(&self.model, &training, &layout).is_some()
            || check_placement(&self.accelerators[accelerator].hardware, &layout).is_some()
        {
            return Err(Invalid::Layout);
        }
        if !self.accelerators[accelerator].supports_dtype {
            return Err(Invalid::Dtype);
        }
        if check_stack(stack_switches, &self.model, &layout, training.dtype).is_some() {
            return Err(Invalid::Stack);
        }
        Ok(Candidate {
            accelerator,
            stack,
            layout,
            global_batch,
        })
    }

    /// The layout at `index`.
    pub fn candidate(&self, index: u64) -> Result<Candidate, Invalid> {
        self.candidate_at(&self.digits(index))
    }

    /// The run's training settings under a layout's stack, with its global batch.
    pub fn training_for(&self, c: &Candidate) -> Training {
        Training {
            global_batch: c.global_batch,
            ..self.stacks[c.stack].training
        }
    }

    /// The f64 estimate of a layout of the space (the reference every engine's ranking is
    /// re-priced in).
    pub fn estimate_of(&self, c: &Candidate) -> Estimate {
        let acc = &self.accelerators[c.accelerator];
        estimate(
            &self.model,
            &self.training_for(c),
            &acc.hardware,
            &acc.economics,
            &c.layout,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::scenario::ScenarioFile;

    fn space(search: &str) -> SearchSpace {
        let text = format!(
            "[model]\npreset = \"llama3-70b\"\n[training]\nglobal_batch = 1024\n[cluster]\naccelerator = \"h100-sxm\"\n[search]\n{search}"
        );
        let file = ScenarioFile::parse(&text, "t").unwrap();
        SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "t").unwrap()
    }

    #[test]
    fn divisors_of_a_32_bit_layer_count_come_fast_and_in_order() {
        assert_eq!(divisors(1), vec![1]);
        assert_eq!(divisors(36), vec![1, 2, 3, 4, 6, 9, 12, 18, 36]);
        assert_eq!(divisors(61), vec![1, 61]);
        // 2^32 - 1 = 3 * 5 * 17 * 257 * 65537: 32 divisors, found in a 65,536-step scan.
        let d = divisors(u32::MAX);
        assert_eq!(d.len(), 32);
        assert!(d.windows(2).all(|w| w[0] < w[1]) && d.iter().all(|x| u32::MAX.is_multiple_of(*x)));
    }

    #[test]
    fn digits_round_trip_and_the_size_is_the_product() {
        let s = space("counts = [512, 1024]\n");
        assert_eq!(s.size, s.radices().iter().product::<u64>());
        for index in [0, 1, 17, s.size / 3, s.size - 1] {
            assert_eq!(s.index(&s.digits(index)), index);
        }
    }

    #[test]
    fn defaults_cover_what_a_practitioner_would_try() {
        let s = space("");
        assert_eq!(s.axes[AXIS_TP], vec![1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(s.axes[AXIS_PP], vec![1, 2, 4, 5, 8, 10, 16, 20, 40, 80]);
        assert_eq!(s.axes[AXIS_ZERO], vec![0, 1, 2, 3]);
        assert_eq!(s.axes[AXIS_COUNT].len(), 14);
        assert!(s.global_batch_bound);
    }

    #[test]
    fn ranges_expand_arithmetically_and_geometrically() {
        let s = space(
            "counts = { from = 1024, to = 4096, step = 1024 }\ntp = { from = 1, to = 16, factor = 2 }\n",
        );
        assert_eq!(s.axes[AXIS_COUNT], vec![1024, 2048, 3072, 4096]);
        assert_eq!(s.axes[AXIS_TP], vec![1, 2, 4, 8, 16]);
    }

    #[test]
    fn bad_axis_names_the_key() {
        let text = "[model]\npreset = \"llama3-70b\"\n[training]\nglobal_batch = 1024\n[search]\ntp = { from = 4, to = 2 }\n";
        let file = ScenarioFile::parse(text, "t").unwrap();
        let msg = SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "t")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("[search] tp"), "{msg}");
    }

    #[test]
    fn a_known_layout_decodes_to_what_was_asked() {
        let s = space("counts = [2048]\ntp = [4]\npp = [4]\ncp = [2]\nmicrobatch = [1]\ninterleave = [5]\nrecompute = [\"none\"]\nsequence_parallel = [true]\nzero = [1]\n");
        assert_eq!(s.size, 1);
        let c = s.candidate(0).unwrap();
        assert_eq!(
            (c.layout.tp, c.layout.pp, c.layout.dp, c.layout.cp),
            (4, 4, 64, 2)
        );
        assert_eq!(c.global_batch, 1024);
        assert!(c.layout.tp_overlap);
    }

    #[test]
    fn invalid_layouts_say_why() {
        let s = space("counts = [24]\ntp = [16]\npp = [1]\ncp = [1]\n");
        assert_eq!(s.candidate(0), Err(Invalid::Degrees));
        let s = space("counts = [16]\ntp = [1]\npp = [1]\ncp = [1]\nsequence_parallel = [true]\n");
        assert_eq!(s.candidate(0), Err(Invalid::Layout));
    }

    #[test]
    fn batch_bound_rounds_down_to_a_multiple_of_dp_times_microbatch() {
        let s = space(
            "counts = [96]\ntp = [1]\npp = [1]\ncp = [1]\nmicrobatch = [2]\nsequence_parallel = [false]\n",
        );
        let c = s.candidate(0).unwrap();
        // dp 96, microbatch 2: 1024 rounds down to 960.
        assert_eq!(c.global_batch, 960);
    }
}
