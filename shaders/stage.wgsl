// Twin: src/model/stage.rs. The step and the memory of the slowest pipeline stage, from a layer
// profile.

fn offload_exposed_s(p: GpuProfile, hw: GpuAccelerator, l: Layout, layers: f32) -> f32 {
    let split = offloaded_split(l, layers);
    if split.x + split.y <= 0.0 {
        return 0.0;
    }
    return split.x * offload_layer_s(p, hw, p.full_activation_bytes) + split.y * offload_layer_s(p, hw, p.stored_activation_bytes);
}

// The closure `per_layer` of offload_exposed_s.
fn offload_layer_s(p: GpuProfile, hw: GpuAccelerator, bytes: f32) -> f32 {
    let copy = bytes / hw.host_link_bytes_per_s;
    return max(copy - p.forward_s, 0.0) + max(copy - p.backward_s, 0.0);
}

// The closure `sends_per_microbatch` of step_breakdown_with.
fn sends_per_microbatch(send: f32, chunk_forward: f32, chunk_backward: f32, t: Training, l: Layout) -> f32 {
    return f32(l.interleave) * (pipeline_send_exposed_s(send, chunk_forward, t, l)
        + pipeline_send_exposed_s(send, chunk_backward, t, l));
}

fn step_breakdown_with(p: GpuProfile, m: GpuModel, t: Training, hw: GpuAccelerator, l: Layout, shape: StageShape) -> StepBreakdown {
    let mbs = f32(microbatches(l, t));
    let layer = profile_layer(p);
    let fullest = shape.fullest_layers;
    let last = shape.last_layers;
    let params = vec2<f32>(shape.dense_params, shape.expert_params);
    let logits_fwd = p.logits_forward_s;
    let logits_bwd = p.logits_backward_s;

    let fullest_costs = stage_costs(layer, l, fullest);
    let last_costs = stage_costs(layer, l, last);
    let fullest_offload = offload_exposed_s(p, hw, l, fullest);
    let last_offload = offload_exposed_s(p, hw, l, last);
    let a2a = expert_all_to_all_s(p.expert_all_to_all_bytes, m, t, hw, l);
    let fullest_ep = stage_ep_exposed_s(a2a, fullest_costs, m, t, l, fullest);
    let last_ep = stage_ep_exposed_s(a2a, last_costs, m, t, l, last);
    let fullest_s = layer_costs_total_s(fullest_costs) + fullest_offload + fullest_ep;
    let last_s = layer_costs_total_s(last_costs) + last_offload + last_ep + logits_fwd + logits_bwd;
    var stage = fullest_costs;
    var stage_logits_fwd = 0.0;
    var stage_logits_bwd = 0.0;
    var stage_layers_n = fullest;
    var offload = fullest_offload;
    var ep_exposed = fullest_ep;
    if last_s >= fullest_s {
        stage = last_costs;
        stage_logits_fwd = logits_fwd;
        stage_logits_bwd = logits_bwd;
        stage_layers_n = last;
        offload = last_offload;
        ep_exposed = last_ep;
    }

    var sends = vec2<f32>(0.0, 0.0);
    if l.pp > 1u {
        sends = pipeline_sends_s(hw, p.pipeline_send_bytes, f32(l.pp), pipeline_stride(t, hw, l), l.interleave > 1u);
    }
    let v = f32(l.interleave);
    let chunk_forward = stage.forward_s / v;
    let chunk_backward = (stage.backward_s + stage.recompute_s) / v;
    let pp_p2p_per_microbatch = sends_per_microbatch(sends.x, chunk_forward, chunk_backward, t, l);

    let stage_s = layer_costs_total_s(stage) + stage_logits_fwd + stage_logits_bwd + offload + ep_exposed;
    let pp_bubble_s = pipeline_bubbles(t, l) * (stage_s + sends_per_microbatch(sends.y, chunk_forward, chunk_backward, t, l));

    let stage_forward = stage.forward_s + stage_logits_fwd;
    let stage_backward = stage.backward_s + stage.recompute_s + stage_logits_bwd;
    let dp_comm_s = data_parallel_exposed_s(m, t, hw, l, params, mbs, stage_forward, stage_backward, max(stage_layers_n, fullest));

    let compute_s = mbs * (stage.forward_s + stage.backward_s + stage.recompute_s + stage_logits_fwd + stage_logits_bwd);
    return StepBreakdown(
        mbs * stage_forward,
        mbs * (stage.backward_s + stage_logits_bwd),
        mbs * stage.recompute_s,
        mbs * stage.tp_comm_s,
        mbs * stage.cp_comm_s,
        mbs * ep_exposed,
        mbs * pp_p2p_per_microbatch,
        pp_bubble_s,
        dp_comm_s,
        optimizer_s(t, hw, l, params),
        hw.step_overhead_s,
        mbs * offload,
        mbs * stage.host_s,
        sync_jitter_s(hw, accelerators(l), compute_s),
    );
}

// (device, host) activation bytes of a stage for one microbatch.
fn stage_activation_bytes(p: GpuProfile, l: Layout, layers: f32) -> vec2<f32> {
    let recomputed = recomputed_layers(l, layers);
    let kept = layers - recomputed;
    let stored = recomputed * p.stored_activation_bytes + kept * p.full_activation_bytes;
    let split = offloaded_split(l, layers);
    let host = split.x * p.full_activation_bytes + split.y * p.stored_activation_bytes;
    var in_flight = 0.0;
    if split.x > 0.0 {
        in_flight = p.full_activation_bytes;
    } else if split.y > 0.0 {
        in_flight = p.stored_activation_bytes;
    }
    return vec2<f32>(stored - host + in_flight, host);
}

// The closure `shard` of memory_breakdown_with.
fn zero_shard(l: Layout, stage: u32, dense: f32, experts: f32, group: f32, expert_group: f32) -> f32 {
    if l.zero >= stage {
        return dense / group + experts / expert_group;
    }
    return dense + experts;
}

fn memory_breakdown_with(p: GpuProfile, t: Training, hw: GpuAccelerator, l: Layout, shape: StageShape) -> MemoryBreakdown {
    let dense = shape.dense_params;
    let experts = shape.expert_params;
    let group = zero_shard_group(t, hw, l);
    let expert_group = expert_data_parallel(l);
    let params = dense + experts;

    var weight_bytes = t.weight_bytes;
    if is_low_precision(t.dtype) {
        weight_bytes = 2.0 * gemm_input_bytes(t.dtype);
    }
    let whole_for_step = l.zero >= 2u && zero_once_per_step(t.stack, l);
    let weights_stage = select(3u, 4u, whole_for_step);
    let gradients_stage = select(2u, 4u, whole_for_step);
    var persistent_weight_bytes = weight_bytes;
    if l.zero >= 3u && t.stack.zero3_master_only != 0u && !whole_for_step {
        persistent_weight_bytes = 0.0;
    }
    var weights_bytes = zero_shard(l, weights_stage, dense, experts, group, expert_group) * persistent_weight_bytes;
    let fullest = shape.fullest_layers;
    let last = shape.last_layers;
    if l.zero >= 3u && !whole_for_step {
        let layer_params = params / max(fullest, 1.0);
        weights_bytes += 2.0 * layer_params * gathered_weight_bytes(t);
        weights_bytes += layer_params * t.grad_bytes;
    }
    let gradients_bytes = zero_shard(l, gradients_stage, dense, experts, group, expert_group) * t.grad_bytes;
    let optimizer_bytes = zero_shard(l, 1u, dense, experts, group, expert_group) * t.optimizer_state_bytes;

    let working_layer = select(0.0, p.full_activation_bytes, l.recompute == RECOMPUTE_FULL);
    let mbs = f32(microbatches(l, t));
    let first_stage = stage_activation_bytes(p, l, fullest);
    let last_stage_bytes = stage_activation_bytes(p, l, last);
    let in_flight = microbatches_in_flight(l, mbs);
    let logits_bytes = p.loss_buffer_bytes;

    let first = MemoryBreakdown(
        weights_bytes,
        gradients_bytes,
        optimizer_bytes,
        first_stage.x * in_flight + working_layer,
        select(0.0, logits_bytes, l.pp == 1u),
        hw.memory_reserve_bytes,
        first_stage.y * in_flight,
    );
    if l.pp == 1u {
        return first;
    }
    let last_stage = MemoryBreakdown(
        weights_bytes,
        gradients_bytes,
        optimizer_bytes,
        last_stage_bytes.x + working_layer,
        logits_bytes,
        hw.memory_reserve_bytes,
        last_stage_bytes.y,
    );
    if memory_breakdown_total_bytes(last_stage) > memory_breakdown_total_bytes(first) {
        return last_stage;
    }
    return first;
}

// Twin of step_s_per_sequence_floor: the fullest stage's layers in each microbatch, per sequence.
fn step_s_per_sequence_floor(p: GpuProfile, l: Layout, fullest_layers: f32) -> f32 {
    return layer_costs_total_s(stage_costs(profile_layer(p), l, fullest_layers)) / (f32(l.dp) * f32(l.microbatch));
}
