//! Operation counts: FLOPs, bytes and parameters of each op of one transformer layer, on one
//! accelerator, for one microbatch. Twin: `shaders/flops.wgsl`.
//!
//! Conventions (each function states its own):
//! - A GEMM of `m x k` by `k x n` costs `2 m n k` FLOPs.
//! - Attention scores and values cost `4 * q_tokens * kv_tokens * heads * head_dim` FLOPs in the
//!   forward pass; fused kernels skip the masked half of a causal square (`causal_fraction` 0.5).
//! - Backward of a GEMM costs twice its forward (input gradient and weight gradient).

use super::{Dtype, FfnKind, Layout, Recompute, Training, Transformer};

/// The shard of one layer that one accelerator holds, for one microbatch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocalShape {
    /// Tokens of one microbatch on this rank: `microbatch * seq_len / cp`.
    pub tokens: f64,
    /// Keys each query may attend to before causal masking: the full sequence.
    pub kv_tokens: f64,
    /// Sequences in the microbatch.
    pub microbatch: f64,
    pub hidden: f64,
    /// Attention heads on this rank: `heads / tp`.
    pub heads: f64,
    /// Key/value heads on this rank: `kv_heads / tp`, at least 1 (replicated when fewer than tp).
    pub kv_heads: f64,
    pub head_dim: f64,
    /// Widths of a query/key head and of a value head (both `head_dim` but under latent
    /// attention, where they are `qk_nope + qk_rope` and `v_head_dim`).
    pub qk_head_dim: f64,
    pub v_head_dim: f64,
    /// Latent attention's ranks and rotary width (0 for other attention): its down-projections
    /// are replicated over tensor parallelism (Megatron-Core builds them `duplicated`).
    pub q_lora_rank: f64,
    pub kv_lora_rank: f64,
    pub rope_head_dim: f64,
    /// Keys a windowed layer's query may attend to, and the share of layers that are windowed.
    pub window_tokens: f64,
    pub window_share: f64,
    /// Dense feed-forward width on this rank: `ffn / tp`.
    pub ffn: f64,
    /// Expert feed-forward width on this rank: `expert_ffn / etp`.
    pub expert_ffn: f64,
    /// Tokens of one microbatch that enter the routed experts on this rank: the sequence shard
    /// of the expert-tensor-parallel group (`tokens * etp / tp` under sequence parallelism).
    pub expert_tokens: f64,
    /// Vocabulary on this rank (vocab-parallel embedding and logits).
    pub vocab: f64,
    /// Hidden width of the tensors outside the tensor-parallel regions (norms, residuals):
    /// `hidden / tp` with sequence parallelism, `hidden` without.
    pub replicated_hidden: f64,
    pub ffn_kind: FfnKind,
}

/// The per-rank shard of a layer under `layout`.
pub fn local_shape(model: &Transformer, layout: &Layout) -> LocalShape {
    let tp = layout.tp as f64;
    let hidden = model.hidden as f64;
    LocalShape {
        tokens: layout.microbatch as f64 * model.seq_len as f64 / layout.cp as f64,
        kv_tokens: model.seq_len as f64,
        microbatch: layout.microbatch as f64,
        hidden,
        heads: model.heads as f64 / tp,
        kv_heads: (model.kv_heads as f64 / tp).max(1.0),
        head_dim: model.head_dim(),
        qk_head_dim: model.qk_head_dim(),
        v_head_dim: model.value_head_dim(),
        q_lora_rank: model.q_lora_rank as f64,
        kv_lora_rank: model.kv_lora_rank as f64,
        rope_head_dim: if model.is_latent_attention() {
            model.qk_rope_head_dim as f64
        } else {
            0.0
        },
        window_tokens: model.sliding_window as f64,
        window_share: model.sliding_window_share(),
        ffn: model.ffn as f64 / tp,
        expert_ffn: model.expert_ffn as f64 / layout.etp as f64,
        expert_tokens: expert_tokens(model, layout),
        vocab: model.vocab as f64 / tp,
        replicated_hidden: if layout.sequence_parallel {
            hidden / tp
        } else {
            hidden
        },
        ffn_kind: model.ffn_kind,
    }
}

/// Tokens of one microbatch that enter the routed experts on one rank. Under sequence
/// parallelism each tensor-parallel rank holds `1/tp` of the tokens and the expert-tensor-parallel
/// group of `etp` ranks gathers its members' (Megatron-Core's all-to-all dispatcher); without it
/// every rank holds them all.
pub fn expert_tokens(model: &Transformer, layout: &Layout) -> f64 {
    let tokens = layout.microbatch as f64 * model.seq_len as f64 / layout.cp as f64;
    if layout.sequence_parallel {
        tokens * layout.etp as f64 / layout.tp as f64
    } else {
        tokens
    }
}

/// FLOPs of a GEMM `m x k` times `k x n`.
pub fn gemm_flops(m: f64, n: f64, k: f64) -> f64 {
    2.0 * m * n * k
}

/// Width of the queries, keys and values per token on this rank: the fused QKV projection's
/// output, or under latent attention the expanded heads the core reads.
pub fn qkv_width(shape: &LocalShape) -> f64 {
    shape.heads * shape.qk_head_dim + shape.kv_heads * (shape.qk_head_dim + shape.v_head_dim)
}

/// Forward FLOPs of the attention core (scores over `qk_head_dim`, weighted values over
/// `v_head_dim`) on this rank, with `kv_tokens` keys per query before `causal_fraction`.
pub fn attention_core_flops(shape: &LocalShape, kv_tokens: f64, causal_fraction: f64) -> f64 {
    2.0 * shape.tokens * kv_tokens * shape.heads * (shape.qk_head_dim + shape.v_head_dim) * causal_fraction
}

/// Fraction of a `window x seq` band that a fused kernel computes under a causal sliding
/// window: query `i` sees `min(i, window)` keys, `s w - w^2 / 2` of the `s w` band.
pub fn windowed_causal_fraction(window_tokens: f64, seq_tokens: f64) -> f64 {
    1.0 - window_tokens / (2.0 * seq_tokens)
}

/// Fraction of the score square that the attention kernel computes: fused kernels skip the
/// masked upper triangle of a causal mask, unfused ones compute it and mask afterwards.
pub fn causal_fraction(training: &Training) -> f64 {
    if training.attention.is_fused() {
        0.5
    } else {
        1.0
    }
}

/// Backward FLOPs of fused attention relative to its forward: five GEMMs against two
/// (the scores are recomputed in the backward kernel; Dao 2023, FlashAttention-2, Sec. 3.1.2).
pub const FLASH_BACKWARD_RATIO: f64 = 2.5;

/// Bytes that element-wise kernels move in the forward pass of one layer on this rank:
/// two norms (read + write), two residual adds (read two, write one), the activation
/// (GeLU reads and writes `ffn`; SwiGLU reads `2 ffn` and writes `ffn`), and for FP8/FP4 the casts
/// of the four GEMM inputs (read 2 bytes, write 1). Activations are 16-bit.
pub fn elementwise_forward_bytes(shape: &LocalShape, dtype: Dtype, ffn_width: f64) -> f64 {
    let act_bytes = 2.0;
    let norms_and_residuals = 10.0 * shape.tokens * shape.replicated_hidden;
    let activation = shape.tokens * ffn_width * (1.0 + shape.ffn_kind.up_width());
    let mut bytes = (norms_and_residuals + activation) * act_bytes;
    if dtype.is_low_precision() {
        let gemm_inputs = shape.tokens * (2.0 * shape.hidden + shape.heads * shape.v_head_dim + ffn_width);
        bytes += gemm_inputs * (act_bytes + dtype.gemm_input_bytes());
    }
    bytes
}

/// Bytes the unfused softmax, mask and dropout move over the score matrix, forward
/// (read and write the scores twice, once for softmax and once for dropout).
pub fn unfused_softmax_forward_bytes(shape: &LocalShape) -> f64 {
    8.0 * shape.tokens * shape.kv_tokens * shape.heads
}

/// Bytes of the token permutation around the experts of one MoE layer, forward:
/// every routed copy of a token is written and read once on the way in and once on the way out.
pub fn moe_permute_forward_bytes(shape: &LocalShape, experts_per_token: f64) -> f64 {
    4.0 * shape.tokens * experts_per_token * shape.hidden * 2.0
}

/// Bytes of the vocab-parallel cross-entropy over one microbatch's logits on this rank, forward
/// and backward together: read the 16-bit logits, write and re-read fp32 probabilities (10 bytes
/// per logit forward), then read them and write the 16-bit gradient (6 bytes backward).
pub fn cross_entropy_bytes(shape: &LocalShape) -> f64 {
    16.0 * shape.tokens * shape.vocab
}

/// Parameters of the attention block of one layer (whole model, not sharded):
/// Q and O are `hidden x heads*head_dim`, K and V `hidden x kv_heads*head_dim`. Latent attention
/// (DeepSeek-V2 Sec. 2.1.2) has the query down/up projections `hidden x q_lora` and
/// `q_lora x heads*qk` (or one `hidden x heads*qk` without a query rank), the key/value down
/// projection `hidden x (kv_lora + qk_rope)`, its up projection `kv_lora x heads*(qk_nope + v)`,
/// and the output `heads*v x hidden`: 187M per layer for DeepSeek-V3.
pub fn attention_params(model: &Transformer) -> f64 {
    let h = model.hidden as f64;
    let heads = model.heads as f64;
    if model.is_latent_attention() {
        let qk = model.qk_head_dim();
        let v = model.value_head_dim();
        let q_lora = model.q_lora_rank as f64;
        let kv_lora = model.kv_lora_rank as f64;
        let query = if q_lora > 0.0 {
            h * q_lora + q_lora * heads * qk
        } else {
            h * heads * qk
        };
        let key_value =
            h * (kv_lora + model.qk_rope_head_dim as f64) + kv_lora * heads * (model.head_dim() + v);
        query + key_value + heads * v * h
    } else {
        let d = model.head_dim();
        h * d * (2.0 * heads + 2.0 * model.kv_heads as f64)
    }
}

/// Parameters of one layer's attention that every tensor-parallel rank holds whole: latent
/// attention's down projections.
pub fn tp_replicated_params(model: &Transformer) -> f64 {
    if model.is_latent_attention() {
        model.hidden as f64
            * (model.q_lora_rank as f64 + model.kv_lora_rank as f64 + model.qk_rope_head_dim as f64)
    } else {
        0.0
    }
}

/// Parameters of one dense feed-forward block.
pub fn dense_ffn_params(model: &Transformer) -> f64 {
    model.hidden as f64 * model.ffn as f64 * model.ffn_kind.matrices()
}

/// Parameters of one expert.
pub fn expert_params(model: &Transformer) -> f64 {
    model.hidden as f64 * model.expert_ffn as f64 * model.ffn_kind.matrices()
}

/// Parameters of the router of one MoE layer.
pub fn router_params(model: &Transformer) -> f64 {
    model.hidden as f64 * model.experts as f64
}

/// Parameters of the norms of a layer: two, and latent attention's norms of its two latents.
pub fn norm_params(model: &Transformer) -> f64 {
    let latent = if model.is_latent_attention() {
        model.q_lora_rank as f64 + model.kv_lora_rank as f64
    } else {
        0.0
    };
    2.0 * model.hidden as f64 + latent
}

/// Parameter tensors of one layer, as frameworks allocate them: GPT-2/3 (MLP) layers as
/// Megatron-LM builds them have 12 (fused QKV weight and bias, output projection weight and bias,
/// FC1 and FC2 weights and biases, two LayerNorms' weight and bias); LLaMA-style (SwiGLU) layers
/// have 9 without biases (Q, K, V, O, gate, up, down, two RMSNorm weights). What a stack that
/// gathers tensor by tensor pays latency for.
pub fn tensors_per_layer(model: &Transformer) -> f64 {
    match model.ffn_kind {
        FfnKind::Mlp => 12.0,
        FfnKind::Swiglu => 9.0,
    }
}

/// Parameters of the input embedding and the output projection.
pub fn embedding_params(model: &Transformer) -> f64 {
    let one = model.vocab as f64 * model.hidden as f64;
    if model.tied_embeddings {
        one
    } else {
        2.0 * one
    }
}

/// Parameters that every rank of a layer's data-parallel group holds in common: all but the
/// routed experts, summed over the whole model.
pub fn dense_params_total(model: &Transformer) -> f64 {
    let per_layer = attention_params(model) + norm_params(model);
    let moe_layers = model.moe_layers() as f64;
    let dense_layers = model.dense_ffn_layers() as f64;
    model.layers as f64 * per_layer
        + dense_layers * dense_ffn_params(model)
        + moe_layers * (router_params(model) + model.shared_experts as f64 * expert_params(model))
        + embedding_params(model)
}

/// Routed-expert parameters of the whole model.
pub fn expert_params_total(model: &Transformer) -> f64 {
    model.moe_layers() as f64 * model.experts as f64 * expert_params(model)
}

/// All parameters of the model.
pub fn total_params(model: &Transformer) -> f64 {
    dense_params_total(model) + expert_params_total(model)
}

/// Parameters one token activates (the routed experts it visits, not all of them).
pub fn active_params(model: &Transformer) -> f64 {
    dense_params_total(model)
        + model.moe_layers() as f64 * model.experts_per_token as f64 * expert_params(model)
}

/// Forward FLOPs of one layer's attention core over one sequence, without causal savings:
/// `2 s k heads (qk + v)` for `k` keys per query (the sequence, or the window).
pub fn attention_forward_flops_per_sequence(model: &Transformer, kv_tokens: f64) -> f64 {
    let s = model.seq_len as f64;
    2.0 * s * kv_tokens * model.heads as f64 * (model.qk_head_dim() + model.value_head_dim())
}

/// Attention-core forward FLOPs of all layers over one sequence: windowed layers attend to
/// their window, the rest to the whole sequence.
pub fn attention_forward_flops_all_layers(model: &Transformer) -> f64 {
    let s = model.seq_len as f64;
    let layers = model.layers as f64;
    let windowed = model.sliding_window_share() * layers;
    (layers - windowed) * attention_forward_flops_per_sequence(model, s)
        + windowed * attention_forward_flops_per_sequence(model, (model.sliding_window as f64).min(s))
}

/// Forward FLOPs of one multi-token-prediction module over one sequence: its layer's active
/// weights, the `2h x h` projection, full attention and another pass of the output head.
pub fn mtp_forward_flops_per_sequence(model: &Transformer) -> f64 {
    let s = model.seq_len as f64;
    let h = model.hidden as f64;
    let ffn = if model.is_moe() {
        router_params(model)
            + (model.experts_per_token as f64 + model.shared_experts as f64) * expert_params(model)
    } else {
        dense_ffn_params(model)
    };
    2.0 * s * (attention_params(model) + ffn + 2.0 * h * h)
        + attention_forward_flops_per_sequence(model, s)
        + 2.0 * s * h * model.vocab as f64
}

/// Model FLOPs of the forward pass of one sequence, in the convention of Megatron, NeMo and
/// MosaicML: `2 * tokens` per weight that the token multiplies (the input embedding, a lookup, is
/// excluded; the logits are included), plus `2 * s * k * heads * (qk + v)` per layer for attention
/// over `k` keys (the sequence, or a sliding window) counted without causal savings, plus the
/// multi-token-prediction modules (Megatron-Bridge's FLOP count includes them).
pub fn model_forward_flops_per_sequence(model: &Transformer) -> f64 {
    let s = model.seq_len as f64;
    let h = model.hidden as f64;
    let v = model.vocab as f64;
    let matmul_params =
        active_params(model) - embedding_params(model) - model.layers as f64 * norm_params(model);
    2.0 * s * matmul_params
        + attention_forward_flops_all_layers(model)
        + 2.0 * s * h * v
        + model.mtp_layers as f64 * mtp_forward_flops_per_sequence(model)
}

/// What the whole model holds and costs, which no layout changes. A sweep prices millions of
/// layouts of one model; each reads these from its profile instead of summing the layers again
/// (they were an eighth of the CPU engine's time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelTotals {
    /// [`dense_params_total`] and [`expert_params_total`].
    pub dense_params: f64,
    pub expert_params: f64,
    /// [`model_forward_flops_per_sequence`].
    pub forward_flops_per_sequence: f64,
    /// [`attention_forward_flops_all_layers`]: what selective recomputation repeats.
    pub attention_forward_flops_per_sequence: f64,
}

impl ModelTotals {
    /// All parameters of the model ([`total_params`]).
    pub fn params(&self) -> f64 {
        self.dense_params + self.expert_params
    }
}

/// The model's totals.
pub fn model_totals(model: &Transformer) -> ModelTotals {
    ModelTotals {
        dense_params: dense_params_total(model),
        expert_params: expert_params_total(model),
        forward_flops_per_sequence: model_forward_flops_per_sequence(model),
        attention_forward_flops_per_sequence: attention_forward_flops_all_layers(model),
    }
}

/// Model FLOPs of one optimizer step: forward and backward (three forwards) of every sequence.
pub fn model_flops_per_step(totals: &ModelTotals, training: &Training) -> f64 {
    3.0 * totals.forward_flops_per_sequence * training.global_batch as f64
}

/// Hardware FLOPs of one step: its `model_flops` (see [`model_flops_per_step`]) plus the forward
/// work that recomputation repeats (whole layers for full recompute, the attention core for
/// selective), same attention convention.
pub fn hardware_flops_per_step(
    model: &Transformer,
    totals: &ModelTotals,
    training: &Training,
    layout: &Layout,
    model_flops: f64,
) -> f64 {
    let s = model.seq_len as f64;
    let logits = 2.0 * s * model.hidden as f64 * model.vocab as f64;
    let recomputed = match layout.recompute {
        Recompute::None => 0.0,
        Recompute::Selective => totals.attention_forward_flops_per_sequence,
        Recompute::Full => totals.forward_flops_per_sequence - logits * (1.0 + model.mtp_layers as f64),
    };
    model_flops + recomputed * training.global_batch as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_support::{gpt3_175b, llama3_8b, mixtral_like, plain_layout, training};

    #[test]
    fn gemm_flops_is_two_m_n_k() {
        assert_eq!(gemm_flops(2.0, 3.0, 4.0), 48.0);
    }

    #[test]
    fn gpt3_parameter_count_matches_the_paper() {
        // Brown et al. 2020: 175.0B parameters (they count the 2048 x 12288 position table too).
        let p = total_params(&gpt3_175b());
        assert!((p / 1e9 - 174.6).abs() < 0.2, "{p}");
    }

    #[test]
    fn llama3_8b_parameter_count_matches_the_model_card() {
        // Meta's model card: 8.03B parameters, untied embeddings.
        let p = total_params(&llama3_8b());
        assert!((p / 1e9 - 8.03).abs() < 0.01, "{p}");
    }

    #[test]
    fn forward_flops_match_narayanan_equation_3() {
        // Narayanan et al. 2021 eq. 3 without recompute: 72 B s l h^2 (1 + s/(6h) + V/(12 l h)).
        let m = gpt3_175b();
        let (s, l, h, v) = (2048.0, 96.0, 12288.0, 51200.0);
        let expected = 72.0 * s * l * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l * h));
        let mut t = training();
        t.global_batch = 1;
        let got = model_flops_per_step(&model_totals(&m), &t);
        // Narayanan's count ignores the norms' and biases' few parameters; ours ignores biases.
        assert!((got / expected - 1.0).abs() < 1e-3, "{got} vs {expected}");
    }

    #[test]
    fn full_recompute_adds_one_forward_of_the_layers() {
        let m = gpt3_175b();
        let t = training();
        let mut layout = plain_layout();
        layout.recompute = Recompute::Full;
        let (s, l, h, v) = (2048.0, 96.0, 12288.0, 51200.0);
        // eq. 3 with recompute: 96 B s l h^2 (1 + s/(6h) + V/(16 l h)).
        let b = t.global_batch as f64;
        let expected = 96.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l * h));
        let totals = model_totals(&m);
        let got = hardware_flops_per_step(&m, &totals, &t, &layout, model_flops_per_step(&totals, &t));
        assert!((got / expected - 1.0).abs() < 1e-3, "{got} vs {expected}");
    }

    #[test]
    fn local_shape_shards_heads_ffn_and_vocab_by_tp() {
        let m = gpt3_175b();
        let mut layout = plain_layout();
        layout.tp = 8;
        layout.cp = 2;
        layout.microbatch = 2;
        let s = local_shape(&m, &layout);
        assert_eq!(s.tokens, 2048.0);
        assert_eq!(s.heads, 12.0);
        assert_eq!(s.ffn, 6144.0);
        assert_eq!(s.vocab, 6400.0);
        assert_eq!(s.replicated_hidden, 12288.0);
        layout.sequence_parallel = true;
        assert_eq!(local_shape(&m, &layout).replicated_hidden, 1536.0);
    }

    #[test]
    fn gqa_kv_heads_replicate_when_fewer_than_tp() {
        let m = llama3_8b(); // 8 KV heads
        let mut layout = plain_layout();
        layout.tp = 16;
        assert_eq!(local_shape(&m, &layout).kv_heads, 1.0);
        layout.tp = 4;
        assert_eq!(local_shape(&m, &layout).kv_heads, 2.0);
    }

    #[test]
    fn attention_core_flops_by_hand() {
        let s = LocalShape {
            tokens: 4.0,
            kv_tokens: 8.0,
            microbatch: 1.0,
            hidden: 32.0,
            heads: 2.0,
            kv_heads: 1.0,
            head_dim: 16.0,
            qk_head_dim: 16.0,
            v_head_dim: 16.0,
            q_lora_rank: 0.0,
            kv_lora_rank: 0.0,
            rope_head_dim: 0.0,
            window_tokens: 0.0,
            window_share: 0.0,
            ffn: 64.0,
            expert_ffn: 0.0,
            expert_tokens: 0.0,
            vocab: 100.0,
            replicated_hidden: 32.0,
            ffn_kind: FfnKind::Mlp,
        };
        assert_eq!(
            attention_core_flops(&s, s.kv_tokens, 0.5),
            4.0 * 4.0 * 8.0 * 2.0 * 16.0 * 0.5
        );
        assert_eq!(qkv_width(&s), (2.0 + 2.0) * 16.0);
        // 10 * tokens * hidden for norms/residuals + 2 * tokens * ffn for GeLU, 2 bytes each.
        assert_eq!(
            elementwise_forward_bytes(&s, Dtype::Bf16, 64.0),
            (10.0 * 4.0 * 32.0 + 2.0 * 4.0 * 64.0) * 2.0
        );
        // FP8 adds the casts of qkv input, out-proj input, fc1 input and fc2 input at 3 bytes.
        let casts = 4.0 * (2.0 * 32.0 + 2.0 * 16.0 + 64.0) * 3.0;
        assert_eq!(
            elementwise_forward_bytes(&s, Dtype::Fp8, 64.0),
            (10.0 * 4.0 * 32.0 + 2.0 * 4.0 * 64.0) * 2.0 + casts
        );
        assert_eq!(cross_entropy_bytes(&s), 16.0 * 4.0 * 100.0);
    }

    #[test]
    fn moe_counts_only_visited_experts_as_active() {
        let m = mixtral_like();
        let expert = expert_params(&m);
        let moe_layers = m.moe_layers() as f64;
        let inactive = moe_layers * (m.experts - m.experts_per_token) as f64 * expert;
        assert!((total_params(&m) - active_params(&m) - inactive).abs() < 1.0);
        // Mixtral 8x22B: 141B total, 39B active (Mistral AI announcement).
        assert!(
            (total_params(&m) / 1e9 - 140.6).abs() < 1.0,
            "{}",
            total_params(&m)
        );
        assert!(
            (active_params(&m) / 1e9 - 39.2).abs() < 1.0,
            "{}",
            active_params(&m)
        );
    }
}
