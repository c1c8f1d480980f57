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
fn average_layer_activation_bytes(m: GpuModel, t: Training, l: Layout, shape: LocalShape) -> vec2<f32> {
    let k = f32(m.experts_per_token);
    let moe_share = f32(moe_layers(m)) / f32(m.layers);
    let dense_layer = layer_activation_bytes(shape, t, false, k);
    var full_layer = dense_layer;
    if is_moe(m) {
        full_layer = (1.0 - moe_share) * dense_layer + moe_share * layer_activation_bytes(shape, t, true, k);
    }
    return vec2<f32>(full_layer, stored_layer_activation_bytes(full_layer, shape, t, l.recompute));
}

fn loss_buffer_bytes(shape: LocalShape) -> f32 {
    return 4.0 * shape.tokens * shape.vocab;
}
