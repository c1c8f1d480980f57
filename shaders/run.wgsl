// Twin: src/model/run.rs. The whole run: throughput, utilisation, time to train, energy, cost.
// (The breakdown and memory-by-kind stay on the host: the sweep ranks and counts, the host
// rebuilds the f64 estimate of each winner.)

struct Estimate {
    step_time_s: f32,
    tokens_per_s: f32,
    tokens_per_s_per_accelerator: f32,
    model_flops_per_step: f32,
    hardware_flops_per_step: f32,
    mfu: f32,
    hfu: f32,
    memory_per_accelerator_bytes: f32,
    memory_capacity_bytes: f32,
    fits: bool,
    memory_excess_bytes: f32,
    goodput: f32,
    checkpoint_interval_s: f32,
    time_to_train_s: f32,
    power_mw: f32,
    energy_mwh: f32,
    cost_usd: f32,
}

// Twin of goodput: (goodput, checkpoint interval) under failures (Young 1974).
fn goodput(accs: f32, total_params: f32, t: Training, hw: GpuAccelerator) -> vec2<f32> {
    let rate_per_s = hw.failure_rate_per_hour / 3600.0;
    if rate_per_s <= 0.0 {
        return vec2<f32>(1.0, 0.0);
    }
    let mtti_s = 1.0 / (accs * rate_per_s);
    let shard_bytes = total_params * (t.weight_bytes + t.optimizer_state_bytes) / accs;
    let checkpoint_s = shard_bytes / hw.checkpoint_bytes_per_s;
    let interval_s = sqrt(2.0 * checkpoint_s * mtti_s);
    let waste = checkpoint_s / interval_s + (interval_s / 2.0 + hw.restart_s) / mtti_s;
    return vec2<f32>(max(1.0 - waste, 1e-6), interval_s);
}

// Twin of facility_power_mw: all-in power times the PUE, MW.
fn facility_power_mw(accs: f32, hw: GpuAccelerator) -> f32 {
    return accs * hw.power_all_in_w * hw.pue / 1e6;
}

// Twin of energy_and_cost: (energy MWh, cost USD) of a run of time_to_train_s.
fn energy_and_cost(accs: f32, power_mw: f32, time_to_train_s: f32, hw: GpuAccelerator) -> vec2<f32> {
    let energy_mwh = power_mw * hw.average_power_fraction * time_to_train_s / 3600.0;
    var cost_usd = accs * hw.price_per_hour_usd * time_to_train_s / 3600.0;
    if hw.pricing == PRICING_CAPEX {
        cost_usd = accs * hw.capex_per_accelerator_usd + energy_mwh * hw.electricity_usd_per_mwh;
    }
    return vec2<f32>(energy_mwh, cost_usd);
}

// Twin of RunBounds: floors under time, energy and cost, a ceiling over MFU.
struct RunBounds {
    time_to_train_s: f32,
    energy_mwh: f32,
    cost_usd: f32,
    mfu: f32,
}

fn run_bounds(step_s_per_sequence: f32, accs: f32, p: GpuProfile, m: GpuModel, t: Training, hw: GpuAccelerator) -> RunBounds {
    let totals = profile_totals(p);
    let good = goodput(accs, totals.dense_params + totals.expert_params, t, hw);
    let time_to_train_s = t.tokens * step_s_per_sequence / f32(m.seq_len) / good.x;
    let power_mw = facility_power_mw(accs, hw);
    let energy_and_cost_of_run = energy_and_cost(accs, power_mw, time_to_train_s, hw);
    let peak_total = peak(hw, t.dtype) * accs;
    return RunBounds(time_to_train_s, energy_and_cost_of_run.x, energy_and_cost_of_run.y,
        model_flops_per_step(totals, t) / (step_s_per_sequence * f32(t.global_batch)) / peak_total);
}

fn estimate_with(p: GpuProfile, m: GpuModel, t: Training, hw: GpuAccelerator, l: Layout) -> Estimate {
    return estimate_with_memory(p, m, t, hw, l, layout_memory(p, m, t, hw, l));
}

// A layout's stages and memory per accelerator: what decides whether it fits.
struct LayoutMemory {
    stage: StageShape,
    memory: MemoryBreakdown,
}

// Twin of LayoutMemory::fits.
fn layout_memory_fits(lm: LayoutMemory, hw: GpuAccelerator) -> bool {
    return memory_breakdown_total_bytes(lm.memory) <= hw.hbm_bytes && lm.memory.offloaded_bytes <= hw.host_memory_bytes;
}

fn layout_memory(p: GpuProfile, m: GpuModel, t: Training, hw: GpuAccelerator, l: Layout) -> LayoutMemory {
    let stage = stage_shape(m, t, l, profile_totals(p));
    return LayoutMemory(stage, memory_breakdown_with(p, t, hw, l, stage));
}

fn estimate_with_memory(p: GpuProfile, m: GpuModel, t: Training, hw: GpuAccelerator, l: Layout, lm: LayoutMemory) -> Estimate {
    let totals = profile_totals(p);
    let memory = lm.memory;
    let breakdown = step_breakdown_with(p, m, t, hw, l, lm.stage);
    let step_time_s = step_breakdown_total_s(breakdown);
    let accs = accelerators(l);
    let tokens_per_step = f32(t.global_batch) * f32(m.seq_len);
    let tokens_per_s = tokens_per_step / step_time_s;
    let model_flops = model_flops_per_step(totals, t);
    let hardware_flops = hardware_flops_per_step(m, totals, t, l, model_flops);
    let peak_total = peak(hw, t.dtype) * accs;
    let used = memory_breakdown_total_bytes(memory);
    let good = goodput(accs, totals.dense_params + totals.expert_params, t, hw);
    let time_to_train_s = t.tokens / tokens_per_s / good.x;
    let power_mw = facility_power_mw(accs, hw);
    let energy_and_cost_of_run = energy_and_cost(accs, power_mw, time_to_train_s, hw);
    let energy_mwh = energy_and_cost_of_run.x;
    let cost_usd = energy_and_cost_of_run.y;
    return Estimate(
        step_time_s,
        tokens_per_s,
        tokens_per_s / accs,
        model_flops,
        hardware_flops,
        model_flops / step_time_s / peak_total,
        hardware_flops / step_time_s / peak_total,
        used,
        hw.hbm_bytes,
        layout_memory_fits(lm, hw),
        max(max(used - hw.hbm_bytes, memory.offloaded_bytes - hw.host_memory_bytes), 0.0),
        good.x,
        good.y,
        time_to_train_s,
        power_mw,
        energy_mwh,
        cost_usd,
    );
}
