//! Bytes per accelerator, by kind. Twin: `shaders/memory.wgsl`.
//!
//! Activations follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
//! Transformer Models", Sec. 4), generalised to grouped-query attention, SwiGLU and fused
//! attention. For GPT (`kv_heads = heads`, `ffn = 4h`, dropout, unfused attention) a layer stores
//! `s b h (34 + 5 a s / h)` bytes without parallelism, `s b h (10 + 24/t + 5 a s/(h t))` with
//! tensor parallelism and `s b h (34/t + 5 a s/(h t))` with sequence parallelism too. Selective
//! recomputation drops the `5 a s / h` term (as fused attention does anyway); full recomputation
//! keeps only the layer input, `2 s b h` (divided by `t` with sequence parallelism).
//!
//! The fullest pipeline stage holds the activations of the microbatches in flight under 1F1B:
//! `min(m, pp)` of them, times `1 + (pp - 1) / (pp * interleave)` with interleaving (Korthikanti
//! Sec. 4.2.3). The first and last stages are both priced (embedding on the first, logits on the
//! last) and the larger is reported.

use super::flops::{qkv_width, LocalShape};
use super::{Layout, Recompute, Training, Transformer};
use serde::{Deserialize, Serialize};

/// Bytes per accelerator by kind, on the stage that needs the most.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryBreakdown {
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub weights_bytes: f64,
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub gradients_bytes: f64,
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub optimizer_bytes: f64,
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub activations_bytes: f64,
    /// Loss buffers of one microbatch's logits (last stage).
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub logits_bytes: f64,
    /// Runtime context, communication buffers and allocator slack.
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub reserve_bytes: f64,
    /// Activations offloaded to host memory (not in the device total; bounded by the host's).
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub offloaded_bytes: f64,
}

impl MemoryBreakdown {
    pub fn total_bytes(&self) -> f64 {
        self.weights_bytes
            + self.gradients_bytes
            + self.optimizer_bytes
            + self.activations_bytes
            + self.logits_bytes
            + self.reserve_bytes
    }

    /// (name, bytes) of each kind on the device, in a stable order.
    pub fn kinds(&self) -> [(&'static str, f64); 6] {
        [
            ("weights_bytes", self.weights_bytes),
            ("gradients_bytes", self.gradients_bytes),
            ("optimizer_bytes", self.optimizer_bytes),
            ("activations_bytes", self.activations_bytes),
            ("logits_bytes", self.logits_bytes),
            ("reserve_bytes", self.reserve_bytes),
        ]
    }
}

/// Activation bytes one layer stores for its backward pass, for one microbatch on one rank,
/// with no recomputation. The inputs of the four GEMMs (QKV, output projection, FC1, FC2) are
/// saved in the GEMM's format: FP8/FP4 runs keep the cast copies (Transformer Engine does).
pub fn layer_activation_bytes(
    shape: &LocalShape,
    training: &Training,
    moe: bool,
    experts_per_token: f64,
) -> f64 {
    let t = shape.tokens;
    let r = shape.replicated_hidden;
    let mask = if training.dropout { 1.0 } else { 0.0 };
    let attn_out = shape.heads * shape.v_head_dim;
    let gemm_in = training.dtype.gemm_input_bytes();
    // The output-projection input is the attention output. Fused attention also keeps that
    // output (16-bit) for its own backward; in 16-bit runs the two are one tensor.
    let projection_input = if training.attention.is_fused() && training.dtype.is_low_precision() {
        (2.0 + gemm_in) * t * attn_out
    } else {
        2.0 * t * attn_out
    };
    // Latent attention also keeps its two latents, as the inputs of their norms and of the up
    // projections (16-bit, whole on every tensor-parallel rank).
    let latents = 4.0 * t * (shape.q_lora_rank + shape.kv_lora_rank + shape.rope_head_dim);
    // Where the stack recomputes the norms and up-projections, the norm outputs (the QKV and
    // FC1 inputs) and Q/K/V are rebuilt from the norm inputs and the latents in the backward.
    let lean = training.stack.lean_activations;
    let (norm_output, qkv) = if lean {
        (0.0, 0.0)
    } else {
        (gemm_in * t * r, 2.0 * t * qkv_width(shape))
    };
    // Two norm inputs, the QKV input, Q/K/V, the projection input and the dropout mask.
    let attention_block = 4.0 * t * r + norm_output + qkv + latents + projection_input + mask * t * r;
    let core = if training.attention.is_fused() {
        // Softmax statistics (fp32 log-sum-exp per query and head).
        4.0 * t * shape.heads
    } else {
        // Softmax output (2 bytes), dropout mask (1) and dropout output (2) per score.
        (2.0 + 3.0 * mask) * t * shape.kv_tokens * shape.heads
    };
    // FC1 input (and its permuted copies for routed experts), the FC1 output (gate and up for
    // SwiGLU, kept 16-bit for the activation's backward), the FC2 input and the dropout mask.
    let (width, routed_input) = if moe {
        // The busiest expert-parallel rank keeps the most.
        let routed = shape.expert_tokens * experts_per_token * training.moe_imbalance;
        (shape.expert_ffn * routed / t, gemm_in * routed * shape.hidden)
    } else {
        (shape.ffn, 0.0)
    };
    let swiglu_input = if lean { gemm_in } else { 2.0 };
    let ffn_block = norm_output
        + routed_input
        + swiglu_input * t * width * shape.ffn_kind.up_width()
        + gemm_in * t * width
        + mask * t * r;
    attention_block + core + ffn_block
}

/// Activation bytes one layer keeps between its forward and backward under `recompute`.
pub fn stored_layer_activation_bytes(
    full: f64,
    shape: &LocalShape,
    training: &Training,
    recompute: Recompute,
) -> f64 {
    match recompute {
        Recompute::None => full,
        Recompute::Selective => {
            if training.attention.is_fused() {
                full
            } else {
                let mask = if training.dropout { 1.0 } else { 0.0 };
                full - (2.0 + 3.0 * mask) * shape.tokens * shape.kv_tokens * shape.heads
            }
        }
        Recompute::Full => 2.0 * shape.tokens * shape.replicated_hidden,
    }
}

/// Microbatches whose activations the first pipeline stage holds at once.
pub fn microbatches_in_flight(layout: &Layout, microbatches: f64) -> f64 {
    if layout.pp <= 1 {
        return 1.0;
    }
    let pp = layout.pp as f64;
    let v = layout.interleave as f64;
    let base = microbatches.min(pp);
    if layout.interleave > 1 {
        base * (1.0 + (pp - 1.0) / (pp * v))
    } else {
        base
    }
}

/// Activation bytes of the average layer (dense and MoE layers weighted by their counts) for one
/// microbatch: (all it produces, what it keeps under the layout's recomputation).
pub fn average_layer_activation_bytes(
    model: &Transformer,
    training: &Training,
    layout: &Layout,
    shape: &LocalShape,
) -> (f64, f64) {
    let k = model.experts_per_token as f64;
    let moe_share = model.moe_layers() as f64 / model.layers as f64;
    let dense_layer = layer_activation_bytes(shape, training, false, k);
    let full_layer = if model.is_moe() {
        (1.0 - moe_share) * dense_layer + moe_share * layer_activation_bytes(shape, training, true, k)
    } else {
        dense_layer
    };
    (
        full_layer,
        stored_layer_activation_bytes(full_layer, shape, training, layout.recompute),
    )
}

/// Bytes of the fp32 probabilities that the cross-entropy keeps for its backward, for one
/// microbatch on the last stage (Megatron's vocab-parallel cross-entropy saves them; the 16-bit
/// logits are freed).
pub fn loss_buffer_bytes(shape: &LocalShape) -> f64 {
    4.0 * shape.tokens * shape.vocab
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flops::local_shape;
    // The stage-level memory these per-layer bytes add up to.
    use crate::model::stage::memory_breakdown;
    use crate::model::test_support::{gpt3_175b, h100, llama3_8b, plain_layout, training};

    fn gpt_training() -> Training {
        let mut t = training();
        t.attention = crate::model::AttentionKernel::Unfused;
        t.dropout = true;
        t
    }

    #[test]
    fn gpt_activations_match_korthikanti_without_parallelism() {
        let m = gpt3_175b();
        let layout = plain_layout();
        let shape = local_shape(&m, &layout);
        let (s, b, h, a) = (2048.0, 1.0, 12288.0, 96.0);
        let expected = s * b * h * (34.0 + 5.0 * a * s / h);
        let got = layer_activation_bytes(&shape, &gpt_training(), false, 0.0);
        assert!((got / expected - 1.0).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn gpt_activations_match_korthikanti_with_tensor_parallelism() {
        let m = gpt3_175b();
        let mut layout = plain_layout();
        layout.tp = 8;
        let (s, b, h, a, t) = (2048.0, 1.0, 12288.0, 96.0, 8.0);
        let shape = local_shape(&m, &layout);
        let got = layer_activation_bytes(&shape, &gpt_training(), false, 0.0);
        let expected = s * b * h * (10.0 + 24.0 / t + 5.0 * a * s / (h * t));
        assert!((got / expected - 1.0).abs() < 1e-12, "{got} vs {expected}");
        layout.sequence_parallel = true;
        let shape = local_shape(&m, &layout);
        let got = layer_activation_bytes(&shape, &gpt_training(), false, 0.0);
        let expected = s * b * h * (34.0 / t + 5.0 * a * s / (h * t));
        assert!((got / expected - 1.0).abs() < 1e-12, "{got} vs {expected}");
        // Selective recomputation: 34 s b h / t.
        let sel = stored_layer_activation_bytes(got, &shape, &gpt_training(), Recompute::Selective);
        assert!((sel / (s * b * h * 34.0 / t) - 1.0).abs() < 1e-12);
        // Full recomputation: 2 s b h / t.
        let full = stored_layer_activation_bytes(got, &shape, &gpt_training(), Recompute::Full);
        assert!((full / (2.0 * s * b * h / t) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn in_flight_microbatches_under_1f1b_and_interleaving() {
        let mut layout = plain_layout();
        assert_eq!(microbatches_in_flight(&layout, 64.0), 1.0);
        layout.pp = 8;
        assert_eq!(microbatches_in_flight(&layout, 64.0), 8.0);
        assert_eq!(microbatches_in_flight(&layout, 4.0), 4.0);
        layout.interleave = 2;
        assert_eq!(microbatches_in_flight(&layout, 64.0), 8.0 * (1.0 + 7.0 / 16.0));
    }

    #[test]
    fn mixed_precision_adam_is_18_bytes_per_parameter_unsharded() {
        // 2 (bf16 weights) + 4 (fp32 main grads) + 12 (fp32 master, m, v).
        let m = llama3_8b();
        let layout = plain_layout();
        let mem = memory_breakdown(&m, &training(), &h100(), &layout);
        let states = mem.weights_bytes + mem.gradients_bytes + mem.optimizer_bytes;
        assert!((states / 8.03e9 - 18.0).abs() < 0.05, "{}", states / 8.03e9);
    }

    #[test]
    fn zero_stages_shard_progressively() {
        let m = llama3_8b();
        let mut layout = plain_layout();
        layout.dp = 8;
        let hw = h100();
        let t = training();
        let z: Vec<MemoryBreakdown> = (0..4)
            .map(|zero| {
                layout.zero = zero;
                memory_breakdown(&m, &t, &hw, &layout)
            })
            .collect();
        assert!((z[0].optimizer_bytes / z[1].optimizer_bytes - 8.0).abs() < 1e-9);
        assert!((z[1].gradients_bytes / z[2].gradients_bytes - 8.0).abs() < 1e-9);
        assert!(z[3].weights_bytes < z[2].weights_bytes);
        assert!(z[3].total_bytes() < z[0].total_bytes());
    }

    #[test]
    fn offloaded_layers_move_their_activations_to_the_host() {
        let m = llama3_8b();
        let hw = h100();
        let t = training();
        let mut layout = plain_layout();
        let kept = memory_breakdown(&m, &t, &hw, &layout);
        layout.offload_layers = 8;
        let off = memory_breakdown(&m, &t, &hw, &layout);
        let p = crate::model::profile::profile(&m, &t, &hw, &layout);
        // Eight layers leave for the host; one layer's worth stays in flight.
        assert!((off.offloaded_bytes - 8.0 * p.full_activation_bytes).abs() < 1.0);
        let expected = kept.activations_bytes - 7.0 * p.full_activation_bytes;
        assert!(
            (off.activations_bytes - expected).abs() < 1.0,
            "{} vs {expected}",
            off.activations_bytes
        );
        // The host's memory bounds it: a host too small does not fit.
        let mut small = hw;
        small.host_memory_bytes = off.offloaded_bytes / 2.0;
        let e =
            crate::model::run::estimate(&m, &t, &small, &crate::model::test_support::economics(), &layout);
        assert!(!e.fits);
    }

    #[test]
    fn recompute_reduces_activations() {
        let m = llama3_8b();
        let mut layout = plain_layout();
        let hw = h100();
        let t = training();
        let none = memory_breakdown(&m, &t, &hw, &layout).activations_bytes;
        layout.recompute = Recompute::Full;
        let full = memory_breakdown(&m, &t, &hw, &layout).activations_bytes;
        assert!(full < none / 5.0, "{full} vs {none}");
    }
}
