//! The whole run: throughput, utilisation, time to train, energy and cost of one layout.
//! Twin: `shaders/run.wgsl`.
//!
//! FLOP convention (stated once, used everywhere): model FLOPs count `2` per weight per token
//! forward and twice that backward, with attention's `4 s^2 h` per layer counted without causal
//! savings and the input embedding (a lookup) excluded, as Megatron-LM, NeMo and MosaicML report.
//! MFU divides model FLOPs per second by the dense peak of the run's format (FP8 runs against the
//! FP8 peak, as NVIDIA's DGX Cloud benchmarks and MosaicML do). HFU adds the recomputed forward.

use super::flops::{hardware_flops_per_step, model_flops_per_step};
use super::memory::MemoryBreakdown;
use super::profile::{profile, Profile};
use super::stage::{memory_breakdown_with, step_breakdown_with};
use super::step::{stage_shape, StageShape, StepBreakdown};
use super::{Hardware, Layout, Training, Transformer};
use serde::{Deserialize, Serialize};

/// How the run pays for its accelerators.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Pricing {
    /// Accelerator-hours at the rental price (power and facility included in the price): what a
    /// scenario that names no pricing pays.
    #[default]
    Rental = 0,
    /// Purchase price of the accelerators plus the electricity the run draws.
    Capex = 1,
}

impl Pricing {
    pub const ALL: [Pricing; 2] = [Pricing::Rental, Pricing::Capex];
    /// The code the shaders use (`PRICING_*` in shaders/model.wgsl).
    pub fn code(self) -> u32 {
        self as u32
    }
    /// The scenario key's value (`[cluster] pricing`).
    pub fn name(self) -> &'static str {
        match self {
            Pricing::Rental => "rental",
            Pricing::Capex => "capex",
        }
    }
    /// The price this pricing needs, in words.
    pub fn price_kind(self) -> &'static str {
        match self {
            Pricing::Rental => "rental",
            Pricing::Capex => "purchase",
        }
    }
    /// The `[cluster]` key that sets that price.
    pub fn price_key(self) -> &'static str {
        match self {
            Pricing::Rental => "price_per_hour_usd",
            Pricing::Capex => "price_usd",
        }
    }
}

/// Power and money facts of one accelerator in one facility.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Economics {
    /// IT power per accelerator at nameplate: its share of host, NICs, fans and switches.
    pub power_all_in_w: f64,
    /// Average draw during training as a fraction of nameplate.
    pub average_power_fraction: f64,
    /// Power usage effectiveness of the facility.
    pub pue: f64,
    pub electricity_usd_per_mwh: f64,
    pub price_usd: f64,
    pub price_per_hour_usd: f64,
    /// Capital cost per accelerator: its share of servers, network and facility included.
    pub capex_per_accelerator_usd: f64,
    /// Unexpected interruptions per accelerator-hour.
    pub failure_rate_per_hour: f64,
    /// Checkpoint write bandwidth per accelerator.
    pub checkpoint_bytes_per_s: f64,
    /// Seconds from an interruption to training again.
    pub restart_s: f64,
    pub pricing: Pricing,
}

/// Everything `clustersweep estimate` reports about one layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Estimate {
    pub step_time_s: f64,
    pub tokens_per_s: f64,
    pub tokens_per_s_per_accelerator: f64,
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub model_flops_per_step: f64,
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub hardware_flops_per_step: f64,
    /// Model FLOPs per second over the peak: a fraction, as its JSON name says.
    #[serde(rename = "mfu_fraction")]
    pub mfu: f64,
    /// Hardware FLOPs (recomputation included) per second over the peak.
    #[serde(rename = "hfu_fraction")]
    pub hfu: f64,
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub memory_per_accelerator_bytes: f64,
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub memory_capacity_bytes: f64,
    pub fits: bool,
    /// Bytes over capacity when the layout does not fit (0 when it fits).
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub memory_excess_bytes: f64,
    /// Fraction of wall-clock time that trains, after checkpoints, lost work and restarts.
    #[serde(rename = "goodput_fraction")]
    pub goodput: f64,
    /// The checkpoint interval that maximises goodput.
    pub checkpoint_interval_s: f64,
    /// Wall-clock time to train the token budget, goodput included.
    pub time_to_train_s: f64,
    /// Facility power of the cluster at nameplate, PUE included.
    pub power_mw: f64,
    pub energy_mwh: f64,
    pub cost_usd: f64,
    pub breakdown: StepBreakdown,
    pub memory: MemoryBreakdown,
}

impl Estimate {
    /// The first number of the estimate that is not finite, by name: inputs too extreme for
    /// f64 (an override of 1e308 bytes, a peak of 1e-300 FLOP/s) overflow or underflow a term,
    /// and such an estimate must not be printed as if it were one.
    pub fn non_finite_term(&self) -> Option<&'static str> {
        let totals = [
            ("step_time_s", self.step_time_s),
            ("tokens_per_s", self.tokens_per_s),
            ("tokens_per_s_per_accelerator", self.tokens_per_s_per_accelerator),
            ("model_flops_per_step", self.model_flops_per_step),
            ("hardware_flops_per_step", self.hardware_flops_per_step),
            ("mfu_fraction", self.mfu),
            ("hfu_fraction", self.hfu),
            ("memory_per_accelerator_bytes", self.memory_per_accelerator_bytes),
            ("memory_capacity_bytes", self.memory_capacity_bytes),
            ("memory_excess_bytes", self.memory_excess_bytes),
            ("goodput_fraction", self.goodput),
            ("checkpoint_interval_s", self.checkpoint_interval_s),
            ("time_to_train_s", self.time_to_train_s),
            ("power_mw", self.power_mw),
            ("energy_mwh", self.energy_mwh),
            ("cost_usd", self.cost_usd),
        ];
        totals
            .into_iter()
            .chain(self.breakdown.terms())
            .find(|(_, v)| !v.is_finite())
            .map(|(name, _)| name)
    }
}

/// Goodput under failures, and the checkpoint interval that gives it (Young 1974, "A first
/// order approximation to the optimum checkpoint interval"; Daly 2006). Interruptions come every
/// `M = 1 / (n * rate)`; each rank writes its shard of the weights and optimizer state in `d`;
/// checkpointing every `tau = sqrt(2 d M)` wastes `d / tau` writing, `tau / (2 M)` redoing lost
/// work and `R / M` restarting, so goodput is `1 - sqrt(2 d / M) - R / M` (at least 1e-6: a
/// cluster that fails faster than it restarts makes no progress to speak of).
pub fn goodput(
    accelerators: f64,
    total_params: f64,
    training: &Training,
    economics: &Economics,
) -> (f64, f64) {
    let rate_per_s = economics.failure_rate_per_hour / 3600.0;
    if rate_per_s <= 0.0 {
        return (1.0, 0.0);
    }
    let mtti_s = 1.0 / (accelerators * rate_per_s);
    let shard_bytes = total_params * (training.weight_bytes + training.optimizer_state_bytes) / accelerators;
    let checkpoint_s = shard_bytes / economics.checkpoint_bytes_per_s;
    let interval_s = (2.0 * checkpoint_s * mtti_s).sqrt();
    let waste = checkpoint_s / interval_s + (interval_s / 2.0 + economics.restart_s) / mtti_s;
    ((1.0 - waste).max(1e-6), interval_s)
}

/// Facility power of `accelerators`: all-in nameplate power (host, network and cooling share
/// included) times the PUE, MW. The planner bounds cluster sizes by it.
pub fn facility_power_mw(accelerators: f64, economics: &Economics) -> f64 {
    accelerators * economics.power_all_in_w * economics.pue / 1e6
}

/// The energy (MWh) and the cost (USD) of a run of `time_to_train_s` on `accelerators` drawing
/// `power_mw` at nameplate: both rise with the time (a rental by the hour; a purchase by the
/// electricity on top of the capital).
pub fn energy_and_cost(
    accelerators: f64,
    power_mw: f64,
    time_to_train_s: f64,
    economics: &Economics,
) -> (f64, f64) {
    let energy_mwh = power_mw * economics.average_power_fraction * time_to_train_s / 3600.0;
    let cost_usd = match economics.pricing {
        Pricing::Rental => accelerators * economics.price_per_hour_usd * time_to_train_s / 3600.0,
        Pricing::Capex => {
            accelerators * economics.capex_per_accelerator_usd
                + energy_mwh * economics.electricity_usd_per_mwh
        }
    };
    (energy_mwh, cost_usd)
}

/// Bounds on what any layout of a block can achieve: floors under its time to train, energy and
/// cost, a ceiling over its MFU. A sweep skips a block whose floor cannot enter its top k.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunBounds {
    pub time_to_train_s: f64,
    pub energy_mwh: f64,
    pub cost_usd: f64,
    pub mfu: f64,
}

/// The bounds of layouts on `accelerators` whose step takes at least `step_s_per_sequence`
/// seconds per sequence of the batch (see [`super::stage::step_s_per_sequence_floor`]): time to
/// train is `tokens / seq_len * step per sequence / goodput`, and goodput depends on the count
/// alone; energy and cost rise with the time; MFU falls with the step.
pub fn run_bounds(
    step_s_per_sequence: f64,
    accelerators: f64,
    p: &Profile,
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    economics: &Economics,
) -> RunBounds {
    let (goodput, _) = goodput(accelerators, p.totals.params(), training, economics);
    let time_to_train_s = training.tokens * step_s_per_sequence / model.seq_len as f64 / goodput;
    let power_mw = facility_power_mw(accelerators, economics);
    let (energy_mwh, cost_usd) = energy_and_cost(accelerators, power_mw, time_to_train_s, economics);
    let peak = hw.peak(training.dtype) * accelerators;
    RunBounds {
        time_to_train_s,
        energy_mwh,
        cost_usd,
        // The estimate's MFU with its step at the floor.
        mfu: model_flops_per_step(&p.totals, training)
            / (step_s_per_sequence * training.global_batch as f64)
            / peak,
    }
}

/// Estimate one layout end to end.
pub fn estimate(
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    economics: &Economics,
    layout: &Layout,
) -> Estimate {
    estimate_with(
        &profile(model, training, hw, layout),
        model,
        training,
        hw,
        economics,
        layout,
    )
}

/// Estimate one layout from a layer profile computed for the same per-layer knobs.
pub fn estimate_with(
    p: &Profile,
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    economics: &Economics,
    layout: &Layout,
) -> Estimate {
    let memory = layout_memory(p, model, training, hw, layout);
    estimate_with_memory(p, model, training, hw, economics, layout, &memory)
}

/// A layout's stages and its memory per accelerator: what decides whether it fits, before its
/// step is priced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayoutMemory {
    /// The fullest and last stages' layers and parameters, once for the step's and the memory's terms.
    pub stage: StageShape,
    pub memory: MemoryBreakdown,
}

impl LayoutMemory {
    /// Whether the layout fits: its memory within the accelerator's, and its offloaded
    /// activations within the host's share of memory.
    pub fn fits(&self, hw: &Hardware) -> bool {
        self.memory.total_bytes() <= hw.hbm_bytes && self.memory.offloaded_bytes <= hw.host_memory_bytes
    }
}

/// The memory of `layout` from its profile. The engines check it first: a quarter of a sweep's
/// layouts do not fit, and their steps need no pricing.
pub fn layout_memory(
    p: &Profile,
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    layout: &Layout,
) -> LayoutMemory {
    let stage = stage_shape(model, training, layout, &p.totals);
    LayoutMemory {
        stage,
        memory: memory_breakdown_with(p, training, hw, layout, &stage),
    }
}

/// The estimate of a layout whose memory is known.
pub fn estimate_with_memory(
    p: &Profile,
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    economics: &Economics,
    layout: &Layout,
    layout_memory: &LayoutMemory,
) -> Estimate {
    let memory = layout_memory.memory;
    let breakdown = step_breakdown_with(p, model, training, hw, layout, &layout_memory.stage);
    let step_time_s = breakdown.total_s();
    let accelerators = layout.accelerators() as f64;
    let tokens_per_step = training.global_batch as f64 * model.seq_len as f64;
    let tokens_per_s = tokens_per_step / step_time_s;
    let model_flops = model_flops_per_step(&p.totals, training);
    let hardware_flops = hardware_flops_per_step(model, &p.totals, training, layout, model_flops);
    let peak = hw.peak(training.dtype) * accelerators;
    let used = memory.total_bytes();
    let (goodput, checkpoint_interval_s) = goodput(accelerators, p.totals.params(), training, economics);
    let time_to_train_s = training.tokens / tokens_per_s / goodput;
    let power_mw = facility_power_mw(accelerators, economics);
    let (energy_mwh, cost_usd) = energy_and_cost(accelerators, power_mw, time_to_train_s, economics);
    Estimate {
        step_time_s,
        tokens_per_s,
        tokens_per_s_per_accelerator: tokens_per_s / accelerators,
        model_flops_per_step: model_flops,
        hardware_flops_per_step: hardware_flops,
        mfu: model_flops / step_time_s / peak,
        hfu: hardware_flops / step_time_s / peak,
        memory_per_accelerator_bytes: used,
        memory_capacity_bytes: hw.hbm_bytes,
        fits: layout_memory.fits(hw),
        memory_excess_bytes: (used - hw.hbm_bytes)
            .max(memory.offloaded_bytes - hw.host_memory_bytes)
            .max(0.0),
        goodput,
        checkpoint_interval_s,
        time_to_train_s,
        power_mw,
        energy_mwh,
        cost_usd,
        breakdown,
        memory,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flops::total_params;
    use crate::model::test_support::{economics, h100, llama3_8b, plain_layout, training};

    #[test]
    fn throughput_and_mfu_follow_from_step_time() {
        let m = llama3_8b();
        let t = training();
        let mut layout = plain_layout();
        layout.dp = 8;
        let mut t8 = t;
        t8.global_batch = 8 * t.global_batch;
        let e = estimate(&m, &t8, &h100(), &economics(), &layout);
        let tokens = t8.global_batch as f64 * m.seq_len as f64;
        assert!((e.tokens_per_s * e.step_time_s / tokens - 1.0).abs() < 1e-12);
        assert!((e.tokens_per_s_per_accelerator * 8.0 / e.tokens_per_s - 1.0).abs() < 1e-12);
        let mfu = e.model_flops_per_step / e.step_time_s / (8.0 * 989.4e12);
        assert!((e.mfu / mfu - 1.0).abs() < 1e-12);
        assert!(e.mfu > 0.0 && e.mfu < 1.0 && e.hfu >= e.mfu);
    }

    #[test]
    fn energy_and_rental_cost_by_hand() {
        let m = llama3_8b();
        let mut t = training();
        t.tokens = 1e12;
        let layout = plain_layout();
        let econ = economics();
        let e = estimate(&m, &t, &h100(), &econ, &layout);
        let hours = e.time_to_train_s / 3600.0;
        // One accelerator at 1275 W all-in, PUE 1.2, 75 % average draw.
        assert!((e.power_mw - 1275.0 * 1.2 / 1e6).abs() < 1e-15);
        assert!((e.energy_mwh - e.power_mw * 0.75 * hours).abs() < 1e-9);
        assert!((e.cost_usd - 2.0 * hours).abs() < 1e-6);
        let mut capex = econ;
        capex.pricing = Pricing::Capex;
        let c = estimate(&m, &t, &h100(), &capex, &layout);
        // Capex: the accelerator's all-in capital cost plus the electricity the run draws.
        assert!((c.cost_usd - (60000.0 + c.energy_mwh * 80.0)).abs() < 1e-6);
    }

    #[test]
    fn goodput_by_hand_at_llama3_scale() {
        // 16,384 accelerators at 1.97e-5 interruptions per hour: one every 11,154 s (Llama 3's
        // ~3.1 h). An 8.03B model's 14 bytes per parameter over 16,384 ranks at 1 GB/s: 6.86 ms.
        let m = llama3_8b();
        let t = training();
        let mut econ = economics();
        econ.failure_rate_per_hour = 1.97e-5;
        let (g, tau) = goodput(16384.0, total_params(&m), &t, &econ);
        let mtti: f64 = 3600.0 / (16384.0 * 1.97e-5);
        let delta = total_params(&m) * 14.0 / 16384.0 / 1e9;
        assert!((tau - (2.0 * delta * mtti).sqrt()).abs() < 1e-9);
        let expected = 1.0 - delta / tau - (tau / 2.0 + 600.0) / mtti;
        assert!((g - expected).abs() < 1e-12);
        assert!((g - 0.9451).abs() < 1e-3, "{g}");
        // Failing faster than restarting leaves no progress to speak of.
        let (g, _) = goodput(1e7, total_params(&m), &t, &econ);
        assert_eq!(g, 1e-6);
        // No failures, no waste.
        econ.failure_rate_per_hour = 0.0;
        assert_eq!(goodput(16384.0, total_params(&m), &t, &econ).0, 1.0);
    }

    #[test]
    fn time_to_train_includes_goodput() {
        let m = llama3_8b();
        let t = training();
        let mut econ = economics();
        let perfect = estimate(&m, &t, &h100(), &econ, &plain_layout());
        econ.failure_rate_per_hour = 1e-3;
        let failing = estimate(&m, &t, &h100(), &econ, &plain_layout());
        assert!(failing.goodput < 1.0);
        assert!(
            (failing.time_to_train_s * failing.goodput - perfect.time_to_train_s).abs()
                < 1e-6 * perfect.time_to_train_s
        );
    }

    #[test]
    fn a_layout_too_big_reports_by_how_much() {
        let mut m = llama3_8b();
        m.layers = 320; // ~70B params on one GPU: cannot fit.
        let e = estimate(&m, &training(), &h100(), &economics(), &plain_layout());
        assert!(!e.fits);
        assert!((e.memory_excess_bytes - (e.memory_per_accelerator_bytes - 80e9)).abs() < 1.0);
    }
}
