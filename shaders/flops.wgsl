// Twin: src/model/flops.rs. FLOPs, bytes and parameters of each op of one layer, on one rank,
// for one microbatch.

struct LocalShape {
    tokens: f32,
    kv_tokens: f32,
    microbatch: f32,
    hidden: f32,
    heads: f32,
    kv_heads: f32,
    head_dim: f32,
    qk_head_dim: f32,
    v_head_dim: f32,
    q_lora_rank: f32,
    kv_lora_rank: f32,
    rope_head_dim: f32,
    window_tokens: f32,
    window_share: f32,
    ffn: f32,
    expert_ffn: f32,
    expert_tokens: f32,
    vocab: f32,
    replicated_hidden: f32,
    ffn_kind: u32,
}

fn local_shape(m: GpuModel, l: Layout) -> LocalShape {
    let tp = f32(l.tp);
    let hidden = f32(m.hidden);
    return LocalShape(
        f32(l.microbatch) * f32(m.seq_len) / f32(l.cp),
        f32(m.seq_len),
        f32(l.microbatch),
        hidden,
        f32(m.heads) / tp,
        max(f32(m.kv_heads) / tp, 1.0),
        head_dim(m),
        qk_head_dim(m),
        value_head_dim(m),
        f32(m.q_lora_rank),
        f32(m.kv_lora_rank),
        select(0.0, f32(m.qk_rope_head_dim), is_latent_attention(m)),
        f32(m.sliding_window),
        sliding_window_share(m),
        f32(m.ffn) / tp,
        f32(m.expert_ffn) / f32(l.etp),
        expert_tokens(m, l),
        f32(m.vocab) / tp,
        select(hidden, hidden / tp, l.sequence_parallel),
        m.ffn_kind,
    );
}

fn expert_tokens(m: GpuModel, l: Layout) -> f32 {
    let tokens = f32(l.microbatch) * f32(m.seq_len) / f32(l.cp);
    if l.sequence_parallel {
        return tokens * f32(l.etp) / f32(l.tp);
    }
    return tokens;
}

fn gemm_flops(m: f32, n: f32, k: f32) -> f32 {
    return 2.0 * m * n * k;
}

fn qkv_width(s: LocalShape) -> f32 {
    return s.heads * s.qk_head_dim + s.kv_heads * (s.qk_head_dim + s.v_head_dim);
}

fn attention_core_flops(s: LocalShape, kv_tokens: f32, causal: f32) -> f32 {
    return 2.0 * s.tokens * kv_tokens * s.heads * (s.qk_head_dim + s.v_head_dim) * causal;
}

fn windowed_causal_fraction(window_tokens: f32, seq_tokens: f32) -> f32 {
    return 1.0 - window_tokens / (2.0 * seq_tokens);
}

fn causal_fraction(t: Training) -> f32 {
    return select(1.0, 0.5, attention_is_fused(t.attention));
}

const FLASH_BACKWARD_RATIO: f32 = 2.5;

fn elementwise_forward_bytes(s: LocalShape, dtype: u32, ffn_width: f32) -> f32 {
    let act_bytes = 2.0;
    let norms_and_residuals = 10.0 * s.tokens * s.replicated_hidden;
    let activation = s.tokens * ffn_width * (1.0 + ffn_up_width(s.ffn_kind));
    var bytes = (norms_and_residuals + activation) * act_bytes;
    if is_low_precision(dtype) {
        let gemm_inputs = s.tokens * (2.0 * s.hidden + s.heads * s.v_head_dim + ffn_width);
        bytes += gemm_inputs * (act_bytes + gemm_input_bytes(dtype));
    }
    return bytes;
}

fn unfused_softmax_forward_bytes(s: LocalShape) -> f32 {
    return 8.0 * s.tokens * s.kv_tokens * s.heads;
}

fn moe_permute_forward_bytes(s: LocalShape, experts_per_token: f32) -> f32 {
    return 4.0 * s.tokens * experts_per_token * s.hidden * 2.0;
}

fn cross_entropy_bytes(s: LocalShape) -> f32 {
    return 16.0 * s.tokens * s.vocab;
}

fn attention_params(m: GpuModel) -> f32 {
    let h = f32(m.hidden);
    let heads = f32(m.heads);
    if is_latent_attention(m) {
        let qk = qk_head_dim(m);
        let v = value_head_dim(m);
        let q_lora = f32(m.q_lora_rank);
        let kv_lora = f32(m.kv_lora_rank);
        var query = h * heads * qk;
        if q_lora > 0.0 {
            query = h * q_lora + q_lora * heads * qk;
        }
        let key_value = h * (kv_lora + f32(m.qk_rope_head_dim)) + kv_lora * heads * (head_dim(m) + v);
        return query + key_value + heads * v * h;
    }
    return h * head_dim(m) * (2.0 * heads + 2.0 * f32(m.kv_heads));
}

fn tp_replicated_params(m: GpuModel) -> f32 {
    if is_latent_attention(m) {
        return f32(m.hidden) * (f32(m.q_lora_rank) + f32(m.kv_lora_rank) + f32(m.qk_rope_head_dim));
    }
    return 0.0;
}

fn dense_ffn_params(m: GpuModel) -> f32 {
    return f32(m.hidden) * f32(m.ffn) * ffn_matrices(m.ffn_kind);
}

fn expert_params(m: GpuModel) -> f32 {
    return f32(m.hidden) * f32(m.expert_ffn) * ffn_matrices(m.ffn_kind);
}

fn router_params(m: GpuModel) -> f32 {
    return f32(m.hidden) * f32(m.experts);
}

fn norm_params(m: GpuModel) -> f32 {
    var latent = 0.0;
    if is_latent_attention(m) {
        latent = f32(m.q_lora_rank) + f32(m.kv_lora_rank);
    }
    return 2.0 * f32(m.hidden) + latent;
}

fn tensors_per_layer(m: GpuModel) -> f32 {
    return select(12.0, 9.0, m.ffn_kind == FFN_SWIGLU);
}

fn embedding_params(m: GpuModel) -> f32 {
    let one = f32(m.vocab) * f32(m.hidden);
    return select(2.0 * one, one, m.tied_embeddings != 0u);
}

fn dense_params_total(m: GpuModel) -> f32 {
    let per_layer = attention_params(m) + norm_params(m);
    let moe = f32(moe_layers(m));
    let dense = f32(dense_ffn_layers(m));
    return f32(m.layers) * per_layer + dense * dense_ffn_params(m)
        + moe * (router_params(m) + f32(m.shared_experts) * expert_params(m)) + embedding_params(m);
}

fn expert_params_total(m: GpuModel) -> f32 {
    return f32(moe_layers(m)) * f32(m.experts) * expert_params(m);
}

fn total_params(m: GpuModel) -> f32 {
    return dense_params_total(m) + expert_params_total(m);
}

fn active_params(m: GpuModel) -> f32 {
    return dense_params_total(m) + f32(moe_layers(m)) * f32(m.experts_per_token) * expert_params(m);
}

fn attention_forward_flops_per_sequence(m: GpuModel, kv_tokens: f32) -> f32 {
    let s = f32(m.seq_len);
    return 2.0 * s * kv_tokens * f32(m.heads) * (qk_head_dim(m) + value_head_dim(m));
}

fn attention_forward_flops_all_layers(m: GpuModel) -> f32 {
    let s = f32(m.seq_len);
    let layers = f32(m.layers);
    let windowed = sliding_window_share(m) * layers;
    return (layers - windowed) * attention_forward_flops_per_sequence(m, s)
        + windowed * attention_forward_flops_per_sequence(m, min(f32(m.sliding_window), s));
}

fn mtp_forward_flops_per_sequence(m: GpuModel) -> f32 {
    let s = f32(m.seq_len);
    let h = f32(m.hidden);
    var ffn = dense_ffn_params(m);
    if is_moe(m) {
        ffn = router_params(m) + (f32(m.experts_per_token) + f32(m.shared_experts)) * expert_params(m);
    }
    return 2.0 * s * (attention_params(m) + ffn + 2.0 * h * h) + attention_forward_flops_per_sequence(m, s)
        + 2.0 * s * h * f32(m.vocab);
}

fn model_forward_flops_per_sequence(m: GpuModel) -> f32 {
    let s = f32(m.seq_len);
    let h = f32(m.hidden);
    let v = f32(m.vocab);
    let matmul_params = active_params(m) - embedding_params(m) - f32(m.layers) * norm_params(m);
    return 2.0 * s * matmul_params + attention_forward_flops_all_layers(m) + 2.0 * s * h * v
        + f32(m.mtp_layers) * mtp_forward_flops_per_sequence(m);
}

// The model's totals, which no layout changes: each layout reads them from its profile.
struct ModelTotals {
    dense_params: f32,
    expert_params: f32,
    forward_flops_per_sequence: f32,
    attention_forward_flops_per_sequence: f32,
}

fn model_totals(m: GpuModel) -> ModelTotals {
    return ModelTotals(
        dense_params_total(m),
        expert_params_total(m),
        model_forward_flops_per_sequence(m),
        attention_forward_flops_all_layers(m),
    );
}

fn model_flops_per_step(totals: ModelTotals, t: Training) -> f32 {
    return 3.0 * totals.forward_flops_per_sequence * f32(t.global_batch);
}

fn hardware_flops_per_step(m: GpuModel, totals: ModelTotals, t: Training, l: Layout, model_flops: f32) -> f32 {
    let s = f32(m.seq_len);
    let logits = 2.0 * s * f32(m.hidden) * f32(m.vocab);
    var recomputed = 0.0;
    if l.recompute == RECOMPUTE_SELECTIVE {
        recomputed = totals.attention_forward_flops_per_sequence;
    } else if l.recompute == RECOMPUTE_FULL {
        recomputed = totals.forward_flops_per_sequence - logits * (1.0 + f32(m.mtp_layers));
    }
    return model_flops + recomputed * f32(t.global_batch);
}
