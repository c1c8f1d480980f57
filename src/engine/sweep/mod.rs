//! Sweeps: evaluate every layout of a [`SearchSpace`], keep the best by the objective.
//!
//! This module owns what a sweep returns (counts by outcome, the ranked top layouts), how
//! partial results merge (across threads, GPU workgroups, adapters, shards and machines: the
//! top-k of a union is the top-k of the parts' top-ks), and the driver that picks a backend.
//! The engines are [`cpu`] (the f64 model over all cores) and [`gpu`] (WGSL through wgpu).
//! Memory stays bounded however large the space: only counters and k entries are kept.

pub mod bench;
pub mod cpu;
pub mod driver;
pub mod gpu;
pub mod gpu_types;

use crate::engine::search::{Invalid, Objective, SearchSpace};
use crate::model::run::{Estimate, RunBounds};
use crate::model::Recompute;
use serde::{Deserialize, Serialize};
use std::collections::BinaryHeap;

/// How many layouts ended how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Counts {
    /// Every decoded layout (pruned ones are not).
    pub evaluated: u64,
    /// Layouts skipped unseen, in blocks whose bound on the objective could not enter the top k
    /// (see `cpu::evaluate_range`): `evaluated + pruned` is the slice's size.
    #[serde(default)]
    pub pruned: u64,
    /// `count` not a multiple of `tp * pp * cp`.
    pub invalid_degrees: u64,
    /// Breaks a rule of the model (a degree that does not divide, a batch it cannot split, ...).
    pub invalid_layout: u64,
    /// The accelerator has no rate for the run's format.
    pub invalid_dtype: u64,
    /// The stack cannot run the layout (see `check_stack`).
    #[serde(default)]
    pub invalid_stack: u64,
    /// A valid layout that does not fit in memory.
    pub did_not_fit: u64,
    /// Valid layouts that fit: the ones ranked.
    pub valid: u64,
}

impl Counts {
    pub fn invalid(&self) -> u64 {
        self.invalid_degrees + self.invalid_layout + self.invalid_dtype + self.invalid_stack
    }
    pub fn add(&mut self, o: &Counts) {
        self.evaluated += o.evaluated;
        self.pruned += o.pruned;
        self.invalid_degrees += o.invalid_degrees;
        self.invalid_layout += o.invalid_layout;
        self.invalid_dtype += o.invalid_dtype;
        self.invalid_stack += o.invalid_stack;
        self.did_not_fit += o.did_not_fit;
        self.valid += o.valid;
    }
    pub fn count_invalid(&mut self, why: Invalid) {
        match why {
            Invalid::Degrees => self.invalid_degrees += 1,
            Invalid::Layout => self.invalid_layout += 1,
            Invalid::Dtype => self.invalid_dtype += 1,
            Invalid::Stack => self.invalid_stack += 1,
        }
    }
}

/// One ranked layout: its index in the space and its objective value (lower is better).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Ranked {
    pub index: u64,
    pub objective: f64,
}

impl Eq for Ranked {}
impl Ord for Ranked {
    /// Worse is greater: a larger objective, then (for ties) a larger index.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.objective
            .total_cmp(&o.objective)
            .then(self.index.cmp(&o.index))
    }
}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// The best `k` layouts seen so far (a max-heap of the kept ones, worst on top).
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Ranked>,
}

impl TopK {
    pub fn new(k: usize) -> TopK {
        TopK {
            k: k.max(1),
            heap: BinaryHeap::with_capacity(k.max(1) + 1),
        }
    }

    /// The objective a layout must beat to enter: the worst kept once full, else infinity.
    pub fn threshold(&self) -> f64 {
        if self.heap.len() < self.k {
            f64::INFINITY
        } else {
            self.heap.peek().map_or(f64::INFINITY, |r| r.objective)
        }
    }

    pub fn push(&mut self, r: Ranked) {
        if !r.objective.is_finite() {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(r);
        } else if let Some(worst) = self.heap.peek() {
            if r < *worst {
                self.heap.pop();
                self.heap.push(r);
            }
        }
    }

    pub fn merge(&mut self, other: TopK) {
        for r in other.heap {
            self.push(r);
        }
    }

    /// The best objective kept, if any.
    pub fn best(&self) -> Option<f64> {
        self.heap.iter().map(|r| r.objective).min_by(f64::total_cmp)
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<Ranked> {
        self.heap.into_sorted_vec()
    }
}

/// The outcome of evaluating part of a space.
#[derive(Clone, Debug)]
pub struct Partial {
    pub counts: Counts,
    pub top: TopK,
}

impl Partial {
    pub fn new(k: usize) -> Partial {
        Partial {
            counts: Counts::default(),
            top: TopK::new(k),
        }
    }
    pub fn merge(mut self, o: Partial) -> Partial {
        self.counts.add(&o.counts);
        self.top.merge(o.top);
        self
    }
}

/// The value a sweep minimises for an estimate.
pub fn objective_value(objective: Objective, e: &Estimate) -> f64 {
    match objective {
        Objective::Time => e.time_to_train_s,
        Objective::Cost => e.cost_usd,
        Objective::Energy => e.energy_mwh,
        Objective::Mfu => -e.mfu,
    }
}

/// How far under its block's bounds [`objective_floor`] puts a block (relative): more than the
/// rounding of f32 on the GPU, so that the bound and a layout's own figures, computed in
/// different orders, never prune a layout exactly at them (`FLOOR_MARGIN` in the shaders).
pub const FLOOR_MARGIN: f64 = 1e-5;

/// The best objective value any layout of a block can reach, from the block's bounds: the floor
/// of time, cost or energy, or the ceiling of MFU negated, less [`FLOOR_MARGIN`].
/// Twin: `objective_floor` in `shaders/sweep.wgsl`.
pub fn objective_floor(objective: Objective, b: &RunBounds) -> f64 {
    let value = match objective {
        Objective::Time => b.time_to_train_s,
        Objective::Cost => b.cost_usd,
        Objective::Energy => b.energy_mwh,
        Objective::Mfu => -b.mfu,
    };
    value - value.abs() * FLOOR_MARGIN
}

/// A ranked layout as `sweep --json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SweepLayout {
    pub accelerator: String,
    /// The network the accelerators run on.
    pub network: crate::input::catalog::Network,
    pub stack: String,
    pub count: u64,
    pub tp: u32,
    pub pp: u32,
    pub dp: u32,
    pub cp: u32,
    pub ep: u32,
    /// Expert tensor parallelism (sweeps keep Megatron-Core's default, tp).
    pub etp: u32,
    pub microbatch: u32,
    pub interleave: u32,
    pub recompute: Recompute,
    pub sequence_parallel: bool,
    pub zero: u32,
    /// Layers per stage that recompute under full recomputation (0: all).
    #[serde(default)]
    pub recompute_layers: u32,
    /// Layers per stage offloaded to host memory.
    #[serde(default)]
    pub offload_layers: u32,
    pub global_batch: u32,
}

/// One entry of the top list: the layout, its objective, and every field of `estimate --json`
/// (recomputed in f64 whatever backend ranked it).
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TopEntry {
    pub rank: usize,
    pub index: u64,
    pub objective: f64,
    pub layout: SweepLayout,
    #[serde(flatten)]
    pub estimate: Estimate,
    /// `[low, high]` of the step time and the time to train at the default confidence (the
    /// model's held-out error; see `uncertainty`), filled in by the command that reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_time_s_interval: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_train_s_interval: Option<[f64; 2]>,
    /// With `--uncertainty`: the share of draws of the assumptions in which this layout is the
    /// best of the top ones, and whether it is statistically tied with the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_best: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tied_with_best: Option<bool>,
}

/// Rebuild the f64 estimate of a ranked index.
pub fn top_entry(space: &SearchSpace, rank: usize, r: &Ranked) -> Option<TopEntry> {
    let c = space.candidate(r.index).ok()?;
    let acc = &space.accelerators[c.accelerator];
    let e = space.estimate_of(&c);
    let layout = SweepLayout {
        accelerator: acc.spec.id.clone(),
        network: acc.network,
        stack: space.stacks[c.stack].spec.id.clone(),
        count: c.layout.accelerators(),
        tp: c.layout.tp,
        pp: c.layout.pp,
        dp: c.layout.dp,
        cp: c.layout.cp,
        ep: c.layout.ep,
        etp: c.layout.etp,
        microbatch: c.layout.microbatch,
        interleave: c.layout.interleave,
        recompute: c.layout.recompute,
        sequence_parallel: c.layout.sequence_parallel,
        zero: c.layout.zero,
        recompute_layers: c.layout.recompute_layers,
        offload_layers: c.layout.offload_layers,
        global_batch: c.global_batch,
    };
    Some(TopEntry {
        rank,
        index: r.index,
        objective: objective_value(space.objective, &e),
        layout,
        estimate: e,
        step_time_s_interval: None,
        time_to_train_s_interval: None,
        p_best: None,
        tied_with_best: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(index: u64, objective: f64) -> Ranked {
        Ranked { index, objective }
    }

    #[test]
    fn top_k_keeps_the_best_and_breaks_ties_by_index() {
        let mut t = TopK::new(3);
        for (i, v) in [
            (0, 5.0),
            (1, 3.0),
            (2, 9.0),
            (3, 1.0),
            (4, 3.0),
            (5, f64::INFINITY),
            (6, f64::NAN),
        ] {
            t.push(r(i, v));
        }
        assert_eq!(t.threshold(), 3.0);
        assert_eq!(t.into_sorted(), vec![r(3, 1.0), r(1, 3.0), r(4, 3.0)]);
    }

    #[test]
    fn merging_parts_gives_the_top_of_the_union() {
        let values: Vec<f64> = (0..100).map(|i| ((i * 37) % 101) as f64).collect();
        let mut whole = TopK::new(5);
        let mut a = TopK::new(5);
        let mut b = TopK::new(5);
        for (i, v) in values.iter().enumerate() {
            whole.push(r(i as u64, *v));
            if i % 3 == 0 {
                a.push(r(i as u64, *v))
            } else {
                b.push(r(i as u64, *v))
            }
        }
        a.merge(b);
        assert_eq!(a.into_sorted(), whole.into_sorted());
    }
}
