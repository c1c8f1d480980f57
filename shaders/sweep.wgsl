// Twin: src/engine/search.rs (digits, candidate_at), src/engine/sweep/mod.rs (objective_value),
// src/engine/sweep/gpu.rs (float_key) and src/engine/sweep/cpu.rs (the walk over a range). Three entry points:
// - profile_main: one profile per set of per-layer knobs the batch touches;
// - sweep_main: one layout per invocation, decoded from its 64-bit index, priced from its
//   profile; each workgroup reports its best `k` below the threshold and counts outcomes;
// - evaluate_main: every metric of given indices (the GPU-CPU parity tests).

const N_AXES: u32 = 15u;
const PROFILE_AXES: u32 = 8u;
const AXIS_ACCELERATOR: u32 = 0u;
const AXIS_STACK: u32 = 1u;
const AXIS_TP: u32 = 2u;
const AXIS_CP: u32 = 3u;
const AXIS_EP: u32 = 4u;
const AXIS_MICROBATCH: u32 = 5u;
const AXIS_SP: u32 = 6u;
const AXIS_RECOMPUTE: u32 = 7u;
const AXIS_COUNT: u32 = 8u;
const AXIS_PP: u32 = 9u;
const AXIS_INTERLEAVE: u32 = 10u;
const AXIS_ZERO: u32 = 11u;
const AXIS_RECOMPUTE_LAYERS: u32 = 12u;
const AXIS_OFFLOAD_LAYERS: u32 = 13u;
const AXIS_GLOBAL_BATCH: u32 = 14u;

// Outcomes (sweep::gpu::Outcome), as in Counts and Invalid. counters[o] counts outcome o.
const OUTCOME_VALID: u32 = 0u;
const OUTCOME_DEGREES: u32 = 1u;
const OUTCOME_LAYOUT: u32 = 2u;
const OUTCOME_DTYPE: u32 = 3u;
const OUTCOME_NO_FIT: u32 = 4u;
const OUTCOME_STACK: u32 = 5u;
const OUTCOME_PRUNED: u32 = 6u;
const N_OUTCOMES: u32 = 7u;

// Stands for infinity: no objective reaches it.
const NOT_RANKED: f32 = 3.0e38;
// counters[7] counts the hits reported.
const HITS_SLOT: u32 = 7u;
// Relative margin above the k-th best below which a layout is still reported (THRESHOLD_MARGIN).
const THRESHOLD_MARGIN: f32 = 1e-5;
// counters[8] holds the batch's running threshold as an order-preserving key (see float_key):
// a workgroup that fills its k reports lowers it for the workgroups after it.
const THRESHOLD_SLOT: u32 = 8u;
// Counter slots: the outcomes, the hits and the threshold (sweep::gpu::COUNTER_SLOTS).
const COUNTER_SLOTS: u32 = 9u;
// How far under its block's bounds objective_floor puts a block (sweep::FLOOR_MARGIN).
const FLOOR_MARGIN: f32 = 1e-5;

// A u32 whose unsigned order is the order of the f32 `x` (negatives reversed, sign flipped).
fn float_key(x: f32) -> u32 {
    let bits = bitcast<u32>(x);
    return select(~bits, bits | 0x80000000u, x >= 0.0);
}

fn key_float(key: u32) -> f32 {
    return bitcast<f32>(select(~key, key & 0x7fffffffu, (key & 0x80000000u) != 0u));
}
const WORKGROUP: u32 = 256u;

struct GpuAxes {
    radix: array<u32, 15>,
    offset: array<u32, 15>,
}

struct GpuBatch {
    base_lo: u32,
    base_hi: u32,
    count: u32,
    k: u32,
    threshold: f32,
    outer_start: u32,
    outer_count: u32,
    workgroups_x: u32,
    prune: u32,
    eval_per_draw: u32,
    accelerators_per_draw: u32,
}

struct GpuHit {
    index_lo: u32,
    index_hi: u32,
    objective: f32,
    pad0: u32,
}

struct GpuMetrics {
    outcome: u32,
    step_time_s: f32,
    tokens_per_s: f32,
    mfu: f32,
    hfu: f32,
    memory_per_accelerator_bytes: f32,
    time_to_train_s: f32,
    power_mw: f32,
    energy_mwh: f32,
    cost_usd: f32,
    objective: f32,
    pad0: u32,
}

@group(0) @binding(0) var<storage, read> model: GpuModel;
@group(0) @binding(1) var<storage, read> run: GpuTraining;
@group(0) @binding(2) var<storage, read> accelerator_table: array<GpuAccelerator>;
@group(0) @binding(3) var<storage, read> axes: GpuAxes;
@group(0) @binding(4) var<storage, read> axis_values: array<u32>;
@group(0) @binding(5) var<uniform> batch: GpuBatch;
@group(0) @binding(6) var<storage, read_write> profiles: array<GpuProfile>;
@group(0) @binding(7) var<storage, read_write> counters: array<atomic<u32>, COUNTER_SLOTS>;
@group(0) @binding(8) var<storage, read_write> hits: array<GpuHit>;
@group(0) @binding(9) var<storage, read> eval_indices: array<vec2<u32>>;
@group(0) @binding(10) var<storage, read_write> eval_out: array<GpuMetrics>;
@group(0) @binding(11) var<storage, read> stack_table: array<GpuStack>;

// A 64-bit index as (hi, lo).
struct Index64 {
    hi: u32,
    lo: u32,
}

fn index_add(base: Index64, offset: u32) -> Index64 {
    let lo = base.lo + offset;
    return Index64(base.hi + select(0u, 1u, lo < base.lo), lo);
}

// Twin of SearchSpace::digits: divide the 64-bit index by each radix (at most 65,536, so 16-bit
// long division stays within 32 bits), innermost axis first.
fn digits(index: Index64) -> array<u32, 15> {
    var d: array<u32, 15>;
    var hi = index.hi;
    var lo = index.lo;
    for (var j = 0u; j < N_AXES; j++) {
        let i = N_AXES - 1u - j;
        let r = axes.radix[i];
        let q_hi = hi / r;
        var rem = hi % r;
        let mid = (rem << 16u) | (lo >> 16u);
        let q1 = mid / r;
        rem = mid % r;
        let low = (rem << 16u) | (lo & 0xffffu);
        let q0 = low / r;
        d[i] = low % r;
        hi = q_hi;
        lo = (q1 << 16u) | q0;
    }
    return d;
}

// One odometer wheel: `carry` added to `digit` of radix `r`; returns (new digit, carry on).
fn odometer_wheel(digit: u32, carry: u32, r: u32) -> vec2<u32> {
    if carry == 0u {
        return vec2<u32>(digit, 0u);
    }
    let sum = digit + carry;
    if sum < r {
        return vec2<u32>(sum, 0u);
    }
    let next = udiv(sum, r);
    return vec2<u32>(sum - next * r, next);
}

// The digits of the number `d` plus `offset`, carrying from the innermost axis outwards (the
// odometer of src/engine/sweep/cpu.rs, stepped `offset` at once). Written out axis by axis: constant
// indices keep the digits in registers on SIMD back ends.
fn digits_plus(d: array<u32, 15>, offset: u32) -> array<u32, 15> {
    var out = d;
    var w = vec2<u32>(0u, offset);
    w = odometer_wheel(out[14], w.y, axes.radix[14]);
    out[14] = w.x;
    w = odometer_wheel(out[13], w.y, axes.radix[13]);
    out[13] = w.x;
    w = odometer_wheel(out[12], w.y, axes.radix[12]);
    out[12] = w.x;
    w = odometer_wheel(out[11], w.y, axes.radix[11]);
    out[11] = w.x;
    w = odometer_wheel(out[10], w.y, axes.radix[10]);
    out[10] = w.x;
    w = odometer_wheel(out[9], w.y, axes.radix[9]);
    out[9] = w.x;
    w = odometer_wheel(out[8], w.y, axes.radix[8]);
    out[8] = w.x;
    w = odometer_wheel(out[7], w.y, axes.radix[7]);
    out[7] = w.x;
    w = odometer_wheel(out[6], w.y, axes.radix[6]);
    out[6] = w.x;
    w = odometer_wheel(out[5], w.y, axes.radix[5]);
    out[5] = w.x;
    w = odometer_wheel(out[4], w.y, axes.radix[4]);
    out[4] = w.x;
    w = odometer_wheel(out[3], w.y, axes.radix[3]);
    out[3] = w.x;
    w = odometer_wheel(out[2], w.y, axes.radix[2]);
    out[2] = w.x;
    w = odometer_wheel(out[1], w.y, axes.radix[1]);
    out[1] = w.x;
    w = odometer_wheel(out[0], w.y, axes.radix[0]);
    out[0] = w.x;
    return out;
}

fn axis_value(axis: u32, digit: u32) -> u32 {
    return axis_values[axes.offset[axis] + digit];
}

// The profile key of a layout: the mixed-radix number of its outer eight digits (written out
// for constant indices, as digits_plus).
fn outer_key(d: array<u32, 15>) -> u32 {
    var key = d[0];
    key = key * axes.radix[1] + d[1];
    key = key * axes.radix[2] + d[2];
    key = key * axes.radix[3] + d[3];
    key = key * axes.radix[4] + d[4];
    key = key * axes.radix[5] + d[5];
    key = key * axes.radix[6] + d[6];
    key = key * axes.radix[7] + d[7];
    return key;
}

// Twin of SearchSpace::training_for: the run's settings under stack `stack` with a layout's
// global batch.
fn run_training(global_batch: u32, stack: u32) -> Training {
    let st = stack_table[stack];
    return Training(
        global_batch,
        run.tokens,
        run.dtype,
        st.weight_bytes,
        st.grad_bytes,
        st.optimizer_state_bytes,
        st.grad_reduce_bytes,
        st.attention,
        st.dropout != 0u,
        st,
        run.moe_imbalance,
    );
}

struct Candidate {
    outcome: u32,
    accelerator: u32,
    stack: u32,
    parallel: Layout,
    global_batch: u32,
}

// Twin of SearchSpace::candidate_at (memory is checked by the caller).
// `table_rows_before`: where this layout's draw's rows start in accelerator_table (0 in a
// sweep; several draws evaluated at once stack their tables, see drawn_table_rows), so that
// c.accelerator is the row of the layout's accelerator in its own draw.
fn candidate_at(d: array<u32, 15>, table_rows_before: u32) -> Candidate {
    var c: Candidate;
    c.accelerator = table_rows_before + axis_value(AXIS_ACCELERATOR, d[AXIS_ACCELERATOR]);
    c.stack = axis_value(AXIS_STACK, d[AXIS_STACK]);
    let st = stack_table[c.stack];
    let tp = axis_value(AXIS_TP, d[AXIS_TP]);
    let pp = axis_value(AXIS_PP, d[AXIS_PP]);
    let cp = axis_value(AXIS_CP, d[AXIS_CP]);
    let count = axis_value(AXIS_COUNT, d[AXIS_COUNT]);
    // tp * pp * cp may pass 2^32 for absurd axes; such a product never divides a 32-bit count.
    let mp_f = f32(tp) * f32(pp) * f32(cp);
    if mp_f > 4294967295.0 || urem(count, tp * pp * cp) != 0u {
        c.outcome = OUTCOME_DEGREES;
        return c;
    }
    let dp = udiv(count, tp * pp * cp);
    let sequence_parallel = axis_value(AXIS_SP, d[AXIS_SP]) == 1u;
    if sequence_parallel && tp == 1u {
        c.outcome = OUTCOME_LAYOUT;
        return c;
    }
    let microbatch = axis_value(AXIS_MICROBATCH, d[AXIS_MICROBATCH]);
    let interleave = axis_value(AXIS_INTERLEAVE, d[AXIS_INTERLEAVE]);
    var global_batch = axis_value(AXIS_GLOBAL_BATCH, d[AXIS_GLOBAL_BATCH]);
    if run.global_batch_bound != 0u {
        let unit_f = f32(dp) * f32(microbatch) * select(1.0, f32(pp), interleave > 1u);
        if unit_f > f32(global_batch) {
            c.outcome = OUTCOME_LAYOUT;
            return c;
        }
        let unit = dp * microbatch * select(1u, pp, interleave > 1u);
        global_batch = udiv(global_batch, unit) * unit;
    }
    c.parallel = Layout(
        tp,
        pp,
        dp,
        cp,
        axis_value(AXIS_EP, d[AXIS_EP]),
        // Sweeps keep Megatron-Core's default expert tensor parallelism (etp = tp): the profile
        // of a layer must not depend on the inner axes (dp), which folding would need.
        tp,
        microbatch,
        interleave,
        axis_value(AXIS_RECOMPUTE, d[AXIS_RECOMPUTE]),
        sequence_parallel,
        sequence_parallel && st.tp_overlap != 0u,
        axis_value(AXIS_ZERO, d[AXIS_ZERO]),
        axis_value(AXIS_RECOMPUTE_LAYERS, d[AXIS_RECOMPUTE_LAYERS]),
        axis_value(AXIS_OFFLOAD_LAYERS, d[AXIS_OFFLOAD_LAYERS]),
        // Hybrid sharding wherever the stack shards so (its default).
        st.hybrid_shard != 0u,
    );
    c.global_batch = global_batch;
    if check_layout(model, run_training(global_batch, c.stack), c.parallel) != 0u
        || check_placement(accelerator_table[c.accelerator], c.parallel) != 0u {
        c.outcome = OUTCOME_LAYOUT;
        return c;
    }
    if accelerator_table[c.accelerator].supports_dtype == 0u {
        c.outcome = OUTCOME_DTYPE;
        return c;
    }
    if check_stack(st, model, c.parallel, run.dtype) != 0u {
        c.outcome = OUTCOME_STACK;
        return c;
    }
    c.outcome = OUTCOME_VALID;
    return c;
}

// Objective codes: the discriminants of Objective (src/engine/search.rs).
const OBJECTIVE_TIME: u32 = 0u;
const OBJECTIVE_COST: u32 = 1u;
const OBJECTIVE_ENERGY: u32 = 2u;
const OBJECTIVE_MFU: u32 = 3u;

// Twin of objective_floor: the best objective a block's bounds allow, less FLOOR_MARGIN.
fn objective_floor(objective: u32, b: RunBounds) -> f32 {
    var value = b.time_to_train_s;
    if objective == OBJECTIVE_COST {
        value = b.cost_usd;
    } else if objective == OBJECTIVE_ENERGY {
        value = b.energy_mwh;
    } else if objective == OBJECTIVE_MFU {
        value = -b.mfu;
    }
    return value - abs(value) * FLOOR_MARGIN;
}

// Twin of block_floor_s (src/engine/sweep/cpu.rs): the least step_s_per_sequence_floor over the
// block's interleaves (those a layout may take) and recomputed layers.
fn block_floor_s(c: Candidate, p: GpuProfile) -> f32 {
    var floor = NOT_RANKED;
    for (var i = 0u; i < axes.radix[AXIS_INTERLEAVE]; i++) {
        var l = c.parallel;
        l.interleave = axis_value(AXIS_INTERLEAVE, i);
        if !interleave_fits_layers(model, l) {
            continue;
        }
        let fullest = stage_layers(model, l).x;
        for (var r = 0u; r < axes.radix[AXIS_RECOMPUTE_LAYERS]; r++) {
            l.recompute_layers = axis_value(AXIS_RECOMPUTE_LAYERS, r);
            floor = min(floor, step_s_per_sequence_floor(p, l, fullest));
        }
    }
    return floor;
}

// Twin of block_bounds (src/engine/sweep/cpu.rs).
fn block_bounds(c: Candidate, p: GpuProfile, t: Training, hw: GpuAccelerator) -> RunBounds {
    return run_bounds(block_floor_s(c, p), accelerators(c.parallel), p, model, t, hw);
}

// Twin of objective_value: the value a sweep minimises.
fn objective_value(objective: u32, e: Estimate) -> f32 {
    switch objective {
        case OBJECTIVE_TIME: {
            return e.time_to_train_s;
        }
        case OBJECTIVE_COST: {
            return e.cost_usd;
        }
        case OBJECTIVE_ENERGY: {
            return e.energy_mwh;
        }
        case OBJECTIVE_MFU: {
            return -e.mfu;
        }
        default: {
            return NOT_RANKED;
        }
    }
}

@compute @workgroup_size(64)
fn profile_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let slot = gid.x;
    if slot >= batch.outer_count {
        return;
    }
    // The outer digits of key outer_start + slot.
    var key = batch.outer_start + slot;
    var d: array<u32, 15>;
    for (var j = 0u; j < PROFILE_AXES; j++) {
        let i = PROFILE_AXES - 1u - j;
        d[i] = key % axes.radix[i];
        key = key / axes.radix[i];
    }
    let sp = axis_value(AXIS_SP, d[AXIS_SP]) == 1u;
    let stack = axis_value(AXIS_STACK, d[AXIS_STACK]);
    // Only the per-layer knobs matter to a profile; the rest are placeholders.
    let l = Layout(
        axis_value(AXIS_TP, d[AXIS_TP]),
        1u,
        1u,
        axis_value(AXIS_CP, d[AXIS_CP]),
        axis_value(AXIS_EP, d[AXIS_EP]),
        axis_value(AXIS_TP, d[AXIS_TP]),
        axis_value(AXIS_MICROBATCH, d[AXIS_MICROBATCH]),
        1u,
        axis_value(AXIS_RECOMPUTE, d[AXIS_RECOMPUTE]),
        sp,
        sp && stack_table[stack].tp_overlap != 0u,
        0u,
        0u,
        0u,
        stack_table[stack].hybrid_shard != 0u,
    );
    let hw = accelerator_table[axis_value(AXIS_ACCELERATOR, d[AXIS_ACCELERATOR])];
    profiles[slot] = profile(model, run_training(1u, stack), hw, l);
}

var<workgroup> wg_objective: array<f32, 256>;
var<workgroup> wg_best: array<f32, 256>;
var<workgroup> wg_lane: array<u32, 256>;
var<workgroup> wg_counts: array<atomic<u32>, N_OUTCOMES>;
// Lanes with an objective below the threshold: the reduction is skipped when none has one.
var<workgroup> wg_ranked: atomic<u32>;
// The digits of the workgroup's first index, decoded once by lane 0.
var<workgroup> wg_digits: array<u32, 15>;

@compute @workgroup_size(256)
fn sweep_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = wid.y * batch.workgroups_x + wid.x;
    let linear = group * WORKGROUP + lid;
    if lid < N_OUTCOMES {
        atomicStore(&wg_counts[lid], 0u);
    }
    if lid == 0u {
        atomicStore(&wg_ranked, 0u);
        wg_digits = digits(index_add(Index64(batch.base_hi, batch.base_lo), group * WORKGROUP));
    }
    workgroupBarrier();

    let threshold = min(batch.threshold, key_float(atomicLoad(&counters[THRESHOLD_SLOT])));
    var objective = NOT_RANKED;
    if linear < batch.count {
        let d = digits_plus(wg_digits, lid);
        let c = candidate_at(d, 0u);
        if c.outcome != OUTCOME_VALID {
            atomicAdd(&wg_counts[c.outcome], 1u);
        } else {
            let p = profiles[outer_key(d) - batch.outer_start];
            let t = run_training(c.global_batch, c.stack);
            let hw = accelerator_table[c.accelerator];
            // A layout that cannot beat the threshold would not be reported: with pruning, one
            // whose block's bound cannot is skipped unseen.
            let pruned = batch.prune != 0u && threshold < NOT_RANKED
                && objective_floor(run.objective, block_bounds(c, p, t, hw)) >= threshold;
            if pruned {
                atomicAdd(&wg_counts[OUTCOME_PRUNED], 1u);
            } else {
                // The memory first: a layout that does not fit needs no step.
                let lm = layout_memory(p, model, t, hw, c.parallel);
                if layout_memory_fits(lm, hw) {
                    atomicAdd(&wg_counts[OUTCOME_VALID], 1u);
                    let value = objective_value(run.objective, estimate_with_memory(p, model, t, hw, c.parallel, lm));
                    if value < threshold {
                        objective = value;
                        atomicAdd(&wg_ranked, 1u);
                    }
                } else {
                    atomicAdd(&wg_counts[OUTCOME_NO_FIT], 1u);
                }
            }
        }
    }
    wg_objective[lid] = objective;
    workgroupBarrier();
    if lid < N_OUTCOMES {
        let n = atomicLoad(&wg_counts[lid]);
        if n > 0u {
            atomicAdd(&counters[lid], n);
        }
    }

    // The workgroup's best k below the threshold: k rounds of a tree arg-min, ties to the lower
    // lane (the lower index), as TopK breaks them.
    let capacity = arrayLength(&hits);
    let rounds = min(batch.k, workgroupUniformLoad(&wg_ranked));
    var kth = NOT_RANKED;
    for (var round = 0u; round < rounds; round++) {
        wg_best[lid] = wg_objective[lid];
        wg_lane[lid] = lid;
        workgroupBarrier();
        for (var stride = WORKGROUP / 2u; stride > 0u; stride = stride >> 1u) {
            if lid < stride {
                let other = wg_best[lid + stride];
                let mine = wg_best[lid];
                if other < mine || (other == mine && wg_lane[lid + stride] < wg_lane[lid]) {
                    wg_best[lid] = other;
                    wg_lane[lid] = wg_lane[lid + stride];
                }
            }
            workgroupBarrier();
        }
        let best = workgroupUniformLoad(&wg_best[0]);
        if best >= NOT_RANKED {
            break;
        }
        kth = best;
        if lid == 0u {
            let lane = wg_lane[0];
            let slot = atomicAdd(&counters[HITS_SLOT], 1u);
            if slot < capacity {
                let index = index_add(Index64(batch.base_hi, batch.base_lo), group * WORKGROUP + lane);
                hits[slot] = GpuHit(index.lo, index.hi, best, 0u);
            }
            wg_objective[lane] = NOT_RANKED;
        }
        workgroupBarrier();
    }
    // k reports from this workgroup alone: no layout worse than the k-th can rank. (The margin
    // keeps near-ties, which the host ranks in order, as the host's threshold does.)
    if lid == 0u && rounds == batch.k && kth < NOT_RANKED {
        atomicMin(&counters[THRESHOLD_SLOT], float_key(kth + abs(kth) * THRESHOLD_MARGIN));
    }
}

// The profile of each layout evaluate_main prices, one slot per index. A kernel of its own, as
// profile_main is for sweep_main: inlining profile() into the estimate makes the kernel so large
// that lavapipe's LLVM takes tens of times longer to compile it.
@compute @workgroup_size(64)
fn evaluate_profile_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= arrayLength(&eval_indices) {
        return;
    }
    let index = eval_indices[i];
    let c = candidate_at(digits(Index64(index.x, index.y)), drawn_table_rows(i));
    if c.outcome == OUTCOME_VALID {
        let t = run_training(c.global_batch, c.stack);
        profiles[i] = profile(model, t, accelerator_table[c.accelerator], c.parallel);
    }
}

// Where the accelerator rows of entry `i`'s draw start: several draws evaluated at once stack
// their accelerator tables (every other table is the same in every draw; a draw moves prices,
// efficiencies and power, and with them how many accelerators a site holds).
fn drawn_table_rows(i: u32) -> u32 {
    if batch.eval_per_draw == 0u {
        return 0u;
    }
    return (i / batch.eval_per_draw) * batch.accelerators_per_draw;
}

@compute @workgroup_size(64)
fn evaluate_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= arrayLength(&eval_indices) {
        return;
    }
    let index = eval_indices[i];
    let d = digits(Index64(index.x, index.y));
    let c = candidate_at(d, drawn_table_rows(i));
    var out: GpuMetrics;
    out.outcome = c.outcome;
    if c.outcome == OUTCOME_VALID {
        let t = run_training(c.global_batch, c.stack);
        let hw = accelerator_table[c.accelerator];
        let e = estimate_with(profiles[i], model, t, hw, c.parallel);
        out.outcome = select(OUTCOME_NO_FIT, OUTCOME_VALID, e.fits);
        out.step_time_s = e.step_time_s;
        out.tokens_per_s = e.tokens_per_s;
        out.mfu = e.mfu;
        out.hfu = e.hfu;
        out.memory_per_accelerator_bytes = e.memory_per_accelerator_bytes;
        out.time_to_train_s = e.time_to_train_s;
        out.power_mw = e.power_mw;
        out.energy_mwh = e.energy_mwh;
        out.cost_usd = e.cost_usd;
        out.objective = objective_value(run.objective, e);
    }
    eval_out[i] = out;
}
