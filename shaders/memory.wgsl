// Twin: src/model/memory.rs. Bytes per accelerator, by kind.

struct MemoryBreakdown {
    weights_bytes: f32,
    gradients_bytes: f32,
    optimizer_bytes: f32,
    activations_bytes: f32,
    logits_bytes: f32,
    reserve_bytes: f32,
    offloaded_bytes: f32,
}

fn memory_breakdown_total_bytes(b: MemoryBreakdown) -> f32 {
    return b.weights_bytes + b.gradients_bytes + b.optimizer_bytes + b.activations_bytes + b.logits_bytes
        + b.reserve_bytes;
}

fn layer_activation_bytes(s: LocalShape, t: Training, moe: bool, experts_per_token: f32) -> f32 {
    let tk = s.tokens;
    let r = s.replicated_hidden;
    let mask = select(0.0, 1.0, t.dropout);
    let attn_out = s.heads * s.v_head_dim;
    let gemm_in = gemm_input_bytes(t.dtype);
    var projection_input = 2.0 * tk * attn_out;
    if attention_is_fused(t.attention) && is_low_precision(t.dtype) {
        projection_input = (2.0 + gemm_in) * tk * attn_out;
    }
    let latents = 4.0 * tk * (s.q_lora_rank + s.kv_lora_rank + s.rope_head_dim);
    let lean = t.stack.lean_activations != 0u;
    var norm_output = gemm_in * tk * r;
    var qkv = 2.0 * tk * qkv_width(s);
    if lean {
        norm_output = 0.0;
        qkv = 0.0;
    }
    let attention_block = 4.0 * tk * r + norm_output + qkv + latents + projection_input + mask * tk * r;
    var core = (2.0 + 3.0 * mask) * tk * s.kv_tokens * s.heads;
    if attention_is_fused(t.attention) {
        core = 4.0 * tk * s.heads;
    }
    var width = s.ffn;
    var routed_input = 0.0;
    if moe {
        let routed = s.expert_tokens * experts_per_token * t.moe_imbalance;
        width = s.expert_ffn * routed / tk;
        routed_input = gemm_in * routed * s.hidden;
    }
    let swiglu_input = select(2.0, gemm_in, lean);
    let ffn_block = norm_output + routed_input + swiglu_input * tk * width * ffn_up_width(s.ffn_kind) + gemm_in * tk * width
        + mask * tk * r;
    return attention_block + core + ffn_block;
}

fn stored_layer_activation_bytes(full: f32, s: LocalShape, t: Training, recompute: u32) -> f32 {
    if recompute == RECOMPUTE_SELECTIVE {
        if attention_is_fused(t.attention) {
            return full;
        }
        let mask = select(0.0, 1.0, t.dropout);
        return full - (2.0 + 3.0 * mask) * s.tokens * s.kv_tokens * s.heads;
    }
    if recompute == RECOMPUTE_FULL {
        return 2.0 * s.tokens * s.replicated_hidden;
    }
    return full;
}

fn microbatches_in_flight(l: Layout, mbs: f32) -> f32 {
    if l.pp <= 1u {
        return 1.0;
    }
    let pp = f32(l.pp);
    let v = f32(l.interleave);
    let base = min(mbs, pp);
    if l.interleave > 1u {
        return base * (1.0 + (pp - 1.0) / (pp * v));
    }
    return base;
}

// (all a layer produces, what it keeps) for the average layer and one microbatch.
fn average_layer_activation_bytes(m: GpuModel, t: Training, l: Layout) -> vec2<f32> {
    let shape = local_shape(m, l);
    let k = f32(m.experts_per_token);
    let moe_share = f32(moe_layers(m)) / f32(m.layers);
    let dense_layer = layer_activation_bytes(shape, t, false, k);
    var full_layer = dense_layer;
    if is_moe(m) {
        full_layer = (1.0 - moe_share) * dense_layer + moe_share * layer_activation_bytes(shape, t, true, k);
    }
    return vec2<f32>(full_layer, stored_layer_activation_bytes(full_layer, shape, t, l.recompute));
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

fn loss_buffer_bytes(m: GpuModel, l: Layout) -> f32 {
    let shape = local_shape(m, l);
    return 4.0 * shape.tokens * shape.vocab;
}

// The closure `shard` of memory_breakdown_with.
fn zero_shard(l: Layout, stage: u32, dense: f32, experts: f32, group: f32, expert_group: f32) -> f32 {
    if l.zero >= stage {
        return dense / group + experts / expert_group;
    }
    return dense + experts;
}

fn memory_breakdown_with(p: GpuProfile, m: GpuModel, t: Training, hw: GpuAccelerator, l: Layout) -> MemoryBreakdown {
    let params2 = stage_params(m, t, l);
    let dense = params2.x;
    let experts = params2.y;
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
    let stages = stage_layers(m, l);
    let fullest = stages.x;
    let last = stages.y;
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
