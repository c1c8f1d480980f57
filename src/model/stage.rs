//! The step and the memory of the slowest pipeline stage, from a layer profile: the part of the
//! model that depends on the whole layout (pipeline depth, interleave, data parallelism, ZeRO,
//! the batch). Twin: `shaders/stage.wgsl`.
//!
//! It sits above [`super::profile`], which prices one layer with [`super::step`]'s and
//! [`super::memory`]'s per-layer functions: a sweep computes a profile once per set of
//! per-layer knobs and runs these functions for every layout that shares it.

use super::comm::pipeline_sends_s;
use super::memory::{microbatches_in_flight, MemoryBreakdown};
use super::profile::{profile, Profile};
use super::step::{
    data_parallel_exposed_s, expert_all_to_all_s, gathered_weight_bytes, offloaded_split, optimizer_s,
    pipeline_bubbles, pipeline_send_exposed_s, pipeline_stride, stage_costs, stage_ep_exposed_s, stage_shape,
    sync_jitter_s, zero_shard_group, StageShape, StepBreakdown,
};
use super::{Hardware, Layout, Recompute, Training, Transformer};

/// Exposed seconds per microbatch of a stage of `layers` layers moving its offloaded layers'
/// activations to host memory during the forward and back during the backward, over the host
/// link: each copy hides behind the next layer's compute in its pass, `max(0, bytes / link -
/// compute)` each way (Megatron-Core and Transformer Engine's CPU offloading overlap the copies
/// with the neighbouring layers).
pub fn offload_exposed_s(p: &Profile, hw: &Hardware, layout: &Layout, layers: f64) -> f64 {
    let (kept, recomputed) = offloaded_split(layout, layers);
    if kept + recomputed <= 0.0 {
        return 0.0;
    }
    let per_layer = |bytes: f64| {
        let copy = bytes / hw.host_link_bytes_per_s;
        (copy - p.layer.forward_s).max(0.0) + (copy - p.layer.backward_s).max(0.0)
    };
    kept * per_layer(p.full_activation_bytes) + recomputed * per_layer(p.stored_activation_bytes)
}

/// The step, term by term, on the slowest pipeline stage.
pub fn step_breakdown(
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    layout: &Layout,
) -> StepBreakdown {
    let p = profile(model, training, hw, layout);
    let stage = stage_shape(model, training, layout, &p.totals);
    step_breakdown_with(&p, model, training, hw, layout, &stage)
}

/// The step from a layer profile computed for the same per-layer knobs (see
/// [`super::profile::profile`]): what a sweep reuses across pipeline, data-parallel and ZeRO
/// choices.
pub fn step_breakdown_with(
    p: &Profile,
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    layout: &Layout,
    shape: &StageShape,
) -> StepBreakdown {
    let m = layout.microbatches(training) as f64;
    let layer = p.layer;
    let (fullest, last) = (shape.fullest_layers, shape.last_layers);
    let stage_params = shape.params();
    let (logits_fwd, logits_bwd) = (p.logits_forward_s, p.logits_backward_s);

    // The slowest stage: the fullest one, or the last one with the output layer.
    let (fullest_costs, last_costs) = (
        stage_costs(&layer, layout, fullest),
        stage_costs(&layer, layout, last),
    );
    let fullest_offload = offload_exposed_s(p, hw, layout, fullest);
    let last_offload = offload_exposed_s(p, hw, layout, last);
    let a2a = expert_all_to_all_s(p.expert_all_to_all_bytes, model, training, hw, layout);
    let fullest_ep = stage_ep_exposed_s(a2a, &fullest_costs, model, training, layout, fullest);
    let last_ep = stage_ep_exposed_s(a2a, &last_costs, model, training, layout, last);
    let fullest_s = fullest_costs.total_s() + fullest_offload + fullest_ep;
    let last_s = last_costs.total_s() + last_offload + last_ep + logits_fwd + logits_bwd;
    let (stage, stage_logits_fwd, stage_logits_bwd, stage_layers_n, offload, ep_exposed) =
        if last_s >= fullest_s {
            (last_costs, logits_fwd, logits_bwd, last, last_offload, last_ep)
        } else {
            (fullest_costs, 0.0, 0.0, fullest, fullest_offload, fullest_ep)
        };

    // Pipeline sends: activations of one microbatch, scattered over the tensor-parallel ranks,
    // forward and backward, once per virtual stage, each boundary on the tier it crosses. The
    // steady state runs at the pace of the slowest boundary; the fill and drain cross every
    // boundary once, at their mean.
    let (slowest_send, mean_send) = if layout.pp > 1 {
        pipeline_sends_s(
            hw,
            p.pipeline_send_bytes,
            layout.pp as f64,
            pipeline_stride(training, hw, layout),
            layout.interleave > 1,
        )
    } else {
        (0.0, 0.0)
    };
    let v = layout.interleave as f64;
    let (chunk_forward, chunk_backward) = (stage.forward_s / v, (stage.backward_s + stage.recompute_s) / v);
    let sends_per_microbatch = |send: f64| {
        v * (pipeline_send_exposed_s(send, chunk_forward, training, layout)
            + pipeline_send_exposed_s(send, chunk_backward, training, layout))
    };
    let pp_p2p_per_microbatch = sends_per_microbatch(slowest_send);

    let stage_s = stage.total_s() + stage_logits_fwd + stage_logits_bwd + offload + ep_exposed;
    let pp_bubble_s = pipeline_bubbles(training, layout) * (stage_s + sends_per_microbatch(mean_send));

    let stage_forward = stage.forward_s + stage_logits_fwd;
    let stage_backward = stage.backward_s + stage.recompute_s + stage_logits_bwd;
    let dp_comm_s = data_parallel_exposed_s(
        model,
        training,
        hw,
        layout,
        stage_params,
        m,
        stage_forward,
        stage_backward,
        stage_layers_n.max(fullest),
    );

    let compute_s =
        m * (stage.forward_s + stage.backward_s + stage.recompute_s + stage_logits_fwd + stage_logits_bwd);
    StepBreakdown {
        sync_jitter_s: sync_jitter_s(hw, layout.accelerators() as f64, compute_s),
        host_overhead_s: m * stage.host_s,
        forward_s: m * stage_forward,
        backward_s: m * (stage.backward_s + stage_logits_bwd),
        recompute_s: m * stage.recompute_s,
        tp_comm_s: m * stage.tp_comm_s,
        cp_comm_s: m * stage.cp_comm_s,
        ep_comm_s: m * ep_exposed,
        pp_p2p_exposed_s: m * pp_p2p_per_microbatch,
        offload_s: m * offload,
        pp_bubble_s,
        dp_comm_s,
        optimizer_s: optimizer_s(training, hw, layout, stage_params),
        step_overhead_s: hw.efficiency.step_overhead_s,
    }
}

/// A floor under the step's seconds per sequence of the batch, for a layout whose fullest
/// pipeline stage holds `fullest_layers`: each of the step's `batch / (dp * microbatch)`
/// microbatches runs that stage's layers (compute and per-layer communication;
/// [`step_breakdown_with`]'s slowest stage is at least that), and every other term of the step is
/// at least zero. A sweep bounds a block of layouts by the least of it over the block's
/// interleaves and recomputed layers, and skips the block if that cannot enter its top k, so it
/// must never exceed a layout's step.
pub fn step_s_per_sequence_floor(p: &Profile, layout: &Layout, fullest_layers: f64) -> f64 {
    stage_costs(&p.layer, layout, fullest_layers).total_s() / (layout.dp as f64 * layout.microbatch as f64)
}

/// Activation bytes a stage of `layers` layers keeps for one microbatch, on the device and in
/// host memory: the layers that recompute keep what their recomputation needs, the others all
/// they produce; offloaded layers keep theirs on the host, and the device holds one offloaded
/// layer's worth in flight (the copy being made or prefetched).
pub fn stage_activation_bytes(p: &Profile, layout: &Layout, layers: f64) -> (f64, f64) {
    let recomputed = layout.recomputed_layers(layers);
    let kept = layers - recomputed;
    let stored = recomputed * p.stored_activation_bytes + kept * p.full_activation_bytes;
    let (kept_off, recomputed_off) = offloaded_split(layout, layers);
    let host = kept_off * p.full_activation_bytes + recomputed_off * p.stored_activation_bytes;
    let in_flight = if kept_off > 0.0 {
        p.full_activation_bytes
    } else if recomputed_off > 0.0 {
        p.stored_activation_bytes
    } else {
        0.0
    };
    (stored - host + in_flight, host)
}

/// Memory per accelerator on the stage that needs the most.
pub fn memory_breakdown(
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    layout: &Layout,
) -> MemoryBreakdown {
    let p = profile(model, training, hw, layout);
    let stage = stage_shape(model, training, layout, &p.totals);
    memory_breakdown_with(&p, training, hw, layout, &stage)
}

/// Memory from a layer profile computed for the same per-layer knobs.
pub fn memory_breakdown_with(
    p: &Profile,
    training: &Training,
    hw: &Hardware,
    layout: &Layout,
    shape: &StageShape,
) -> MemoryBreakdown {
    let (dense, experts) = shape.params();
    let group = zero_shard_group(training, hw, layout);
    let expert_group = layout.expert_data_parallel();
    let shard = |stage: u32| -> f64 {
        if layout.zero >= stage {
            dense / group + experts / expert_group
        } else {
            dense + experts
        }
    };
    let params = dense + experts;

    // Low-precision runs hold their working weights in the GEMM format with a transposed copy
    // for the backward GEMMs (Transformer Engine's FP8 parameters), in place of the 16-bit copy.
    let weight_bytes = if training.dtype.is_low_precision() {
        2.0 * training.dtype.gemm_input_bytes()
    } else {
        training.weight_bytes
    };
    // A stack that gathers ZeRO-2/3 parameters once per step keeps them, and the gradients they
    // accumulate, whole for the step (FSDP without resharding between microbatches).
    let whole_for_step = layout.zero >= 2 && training.stack.zero_once_per_step(layout);
    let (weights_stage, gradients_stage) = if whole_for_step { (4, 4) } else { (3, 2) };
    // FSDP under mixed precision holds no 16-bit shard: its fp32 flat parameter is the master
    // copy the optimizer state counts.
    let persistent_weight_bytes = if layout.zero >= 3 && training.stack.zero3_master_only && !whole_for_step {
        0.0
    } else {
        weight_bytes
    };
    let mut weights_bytes = shard(weights_stage) * persistent_weight_bytes;
    let (fullest, last) = (shape.fullest_layers, shape.last_layers);
    if layout.zero >= 3 && !whole_for_step {
        // Two layers gathered at once (the one computing and the one prefetched), and one layer's
        // unsharded gradient before its reduce-scatter.
        let layer_params = params / fullest.max(1.0);
        weights_bytes += 2.0 * layer_params * gathered_weight_bytes(training);
        weights_bytes += layer_params * training.grad_bytes;
    }
    let gradients_bytes = shard(gradients_stage) * training.grad_bytes;
    let optimizer_bytes = shard(1) * training.optimizer_state_bytes;

    // The layer being recomputed holds its full activations while its backward runs.
    let working_layer = if layout.recompute == Recompute::Full {
        p.full_activation_bytes
    } else {
        0.0
    };
    let m = layout.microbatches(training) as f64;
    let (first_device, first_host) = stage_activation_bytes(p, layout, fullest);
    let (last_device, last_host) = stage_activation_bytes(p, layout, last);
    let in_flight = microbatches_in_flight(layout, m);
    let logits_bytes = p.loss_buffer_bytes;

    let first = MemoryBreakdown {
        weights_bytes,
        gradients_bytes,
        optimizer_bytes,
        activations_bytes: first_device * in_flight + working_layer,
        logits_bytes: if layout.pp == 1 { logits_bytes } else { 0.0 },
        reserve_bytes: hw.memory_reserve_bytes,
        offloaded_bytes: first_host * in_flight,
    };
    if layout.pp == 1 {
        return first;
    }
    let last_stage = MemoryBreakdown {
        activations_bytes: last_device + working_layer,
        logits_bytes,
        offloaded_bytes: last_host,
        ..first
    };
    if last_stage.total_bytes() > first.total_bytes() {
        last_stage
    } else {
        first
    }
}
