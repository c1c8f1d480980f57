//! One optimizer step's pieces: per-layer costs, the pipeline schedule, data-parallel
//! synchronisation and the optimizer; [`super::stage`] adds them up for a layout. Twin:
//! `shaders/step.wgsl`.
//!
//! The step is priced on its slowest pipeline stage:
//!
//! ```text
//! step = m * stage + (pp - 1) / interleave * stage + exposed data-parallel comm + optimizer
//! stage = layers_on_stage * (forward + backward + recompute + exposed TP/CP/EP comm)
//!         [+ logits on the last stage] + point-to-point sends
//! ```
//!
//! where `m` is the number of microbatches. The bubble is the 1F1B / interleaved-1F1B bubble of
//! Narayanan et al. 2021, `(pp - 1) / (interleave * m)` of the useful time.

use super::comm::{
    all_gather_s, all_reduce_s, all_to_all_s, crosses_domain, members_per_domain, point_to_point_s,
};
use super::compute::{attention_time_s, gemm_time_s, memory_time_s};
use super::flops::{
    attention_core_flops, causal_fraction, cross_entropy_bytes, elementwise_forward_bytes, embedding_params,
    moe_permute_forward_bytes, qkv_width, tensors_per_layer, tp_replicated_params,
    unfused_softmax_forward_bytes, windowed_causal_fraction, LocalShape, ModelTotals, FLASH_BACKWARD_RATIO,
};
use super::{Dtype, Hardware, Layout, Recompute, Training, Transformer};
use serde::{Deserialize, Serialize};

/// Seconds of one layer for one microbatch on one rank.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LayerCosts {
    pub forward_s: f64,
    pub backward_s: f64,
    pub recompute_s: f64,
    /// Exposed tensor-parallel collectives (forward, backward and recomputed forward).
    pub tp_comm_s: f64,
    /// Exposed context-parallel K/V ring exchange.
    pub cp_comm_s: f64,
    /// Time the device waits for the host to issue the layer's kernels (all passes).
    pub host_s: f64,
}

impl LayerCosts {
    pub fn total_s(&self) -> f64 {
        self.forward_s + self.backward_s + self.recompute_s + self.tp_comm_s + self.cp_comm_s + self.host_s
    }
    fn scaled(&self, k: f64) -> LayerCosts {
        LayerCosts {
            forward_s: self.forward_s * k,
            backward_s: self.backward_s * k,
            recompute_s: self.recompute_s * k,
            tp_comm_s: self.tp_comm_s * k,
            cp_comm_s: self.cp_comm_s * k,
            host_s: self.host_s * k,
        }
    }
    fn plus(&self, o: &LayerCosts) -> LayerCosts {
        LayerCosts {
            forward_s: self.forward_s + o.forward_s,
            backward_s: self.backward_s + o.backward_s,
            recompute_s: self.recompute_s + o.recompute_s,
            tp_comm_s: self.tp_comm_s + o.tp_comm_s,
            cp_comm_s: self.cp_comm_s + o.cp_comm_s,
            host_s: self.host_s + o.host_s,
        }
    }
}

/// Seconds the device waits on the host in one layer's passes, (forward and backward, the
/// recomputed forward): the host issues a forward's `kernels` in `kernels * launch` (twice as
/// many in the backward, again for a recomputed forward); where the device would finish a pass
/// sooner, it idles for the rest (the launch bound that makes tiny microbatches and thin shards
/// slow). CUDA graphs issue a layer's kernels at the graph rate.
pub fn host_bound_s(
    training: &Training,
    hw: &Hardware,
    forward_s: f64,
    backward_s: f64,
    recompute_s: f64,
) -> (f64, f64) {
    let stack = &training.stack;
    let launch = if stack.cuda_graphs {
        hw.efficiency.graph_launch_overhead_s
    } else {
        hw.efficiency.launch_overhead_s
    };
    let issue = stack.kernels_per_layer * launch;
    let recompute = if recompute_s > 0.0 {
        (issue - recompute_s).max(0.0)
    } else {
        0.0
    };
    (
        (issue - forward_s).max(0.0) + (2.0 * issue - backward_s).max(0.0),
        recompute,
    )
}

/// Forward seconds of the attention core of one layer over `kv_tokens` keys per query, of which a
/// fused kernel computes `fused_fraction`.
pub fn attention_core_span_s(
    shape: &LocalShape,
    kv_tokens: f64,
    fused_fraction: f64,
    training: &Training,
    hw: &Hardware,
) -> f64 {
    let q_tokens = shape.tokens / shape.microbatch;
    if training.attention.is_fused() {
        let flops = attention_core_flops(shape, kv_tokens, fused_fraction);
        attention_time_s(
            flops,
            shape.qk_head_dim,
            q_tokens,
            hw,
            training.dtype,
            training.attention,
        )
    } else {
        // Unfused: two batched GEMMs per (sequence, head) and a memory-bound softmax over the
        // whole square (a window is a mask on it).
        let act = training.dtype.activation_dtype();
        let batch = shape.microbatch * shape.heads;
        let scores = gemm_time_s(q_tokens, shape.kv_tokens, shape.qk_head_dim, hw, act);
        let values = gemm_time_s(q_tokens, shape.v_head_dim, shape.kv_tokens, hw, act);
        batch * (scores + values) + memory_time_s(unfused_softmax_forward_bytes(shape), hw)
    }
}

/// Forward seconds of the attention core of the average layer (what selective recomputation
/// repeats): full causal attention, and on the windowed share of the layers a fused kernel's
/// causal band of the window.
pub fn attention_core_forward_s(shape: &LocalShape, training: &Training, hw: &Hardware) -> f64 {
    let full = attention_core_span_s(shape, shape.kv_tokens, causal_fraction(training), training, hw);
    if shape.window_share > 0.0 && training.attention.is_fused() {
        let band = windowed_causal_fraction(shape.window_tokens, shape.kv_tokens);
        let windowed = attention_core_span_s(shape, shape.window_tokens, band, training, hw);
        (1.0 - shape.window_share) * full + shape.window_share * windowed
    } else {
        full
    }
}

/// Forward seconds of the attention block's projections on this rank: the fused QKV and the
/// output projection; under latent attention the replicated down projections of the query and
/// key/value latents, their column-parallel up projections and the output projection.
pub fn attention_projections_s(shape: &LocalShape, hw: &Hardware, dtype: Dtype) -> f64 {
    let t = shape.tokens;
    let h = shape.hidden;
    let output = gemm_time_s(t, h, shape.heads * shape.v_head_dim, hw, dtype);
    if shape.kv_lora_rank > 0.0 {
        let down = gemm_time_s(
            t,
            shape.q_lora_rank + shape.kv_lora_rank + shape.rope_head_dim,
            h,
            hw,
            dtype,
        );
        let query_in = if shape.q_lora_rank > 0.0 {
            shape.q_lora_rank
        } else {
            h
        };
        let query_up = gemm_time_s(t, shape.heads * shape.qk_head_dim, query_in, hw, dtype);
        let kv_up = gemm_time_s(
            t,
            shape.heads * (shape.head_dim + shape.v_head_dim),
            shape.kv_lora_rank,
            hw,
            dtype,
        );
        down + query_up + kv_up + output
    } else {
        gemm_time_s(t, qkv_width(shape), h, hw, dtype) + output
    }
}

/// Backward seconds of the attention core.
pub fn attention_core_backward_s(forward_s: f64, training: &Training) -> f64 {
    if training.attention.is_fused() {
        FLASH_BACKWARD_RATIO * forward_s
    } else {
        2.0 * forward_s
    }
}

/// True when the cluster outgrows one site.
pub fn spans_sites(hw: &Hardware, layout: &Layout) -> bool {
    layout.accelerators() as f64 > hw.site_size
}

/// True when ranks are ordered tp, cp, pp, dp (data parallelism outermost) instead of
/// Megatron-Core's tp, cp, dp, pp: where the stack places them so (Llama 3), and on several
/// sites, so that only data parallelism crosses them.
pub fn data_parallel_outermost(training: &Training, hw: &Hardware, layout: &Layout) -> bool {
    training.stack.data_parallel_outermost || spans_sites(hw, layout)
}

/// Stride of the data-parallel group (with context parallelism folded in, as Megatron-Core
/// reduces gradients over dp x cp).
pub fn data_parallel_stride(training: &Training, hw: &Hardware, layout: &Layout) -> f64 {
    if data_parallel_outermost(training, hw, layout) {
        layout.tp as f64 * layout.pp as f64
    } else {
        layout.tp as f64
    }
}

/// Bytes per parameter that sharded data parallelism gathers: the 16-bit compute copy, even
/// where the shards are fp32 (FSDP's `MixedPrecision(param_dtype)` casts before its all-gather;
/// XLA's convert mover hoists MaxText's bf16 cast of its fp32 weights above the all-gather).
pub fn gathered_weight_bytes(training: &Training) -> f64 {
    training.weight_bytes.min(2.0)
}

/// Ranks a ZeRO stage shards the dense parameters over: the data-parallel group (dp x cp), or
/// under hybrid sharding its members inside one scale-up domain.
pub fn zero_shard_group(training: &Training, hw: &Hardware, layout: &Layout) -> f64 {
    let group = layout.dp as f64 * layout.cp as f64;
    if layout.hybrid_shard {
        members_per_domain(
            group,
            data_parallel_stride(training, hw, layout),
            hw.scale_up_domain as f64,
        )
    } else {
        group
    }
}

/// Stride of the pipeline group.
pub fn pipeline_stride(training: &Training, hw: &Hardware, layout: &Layout) -> f64 {
    let model_parallel = layout.tp as f64 * layout.cp as f64;
    if data_parallel_outermost(training, hw, layout) {
        model_parallel
    } else {
        model_parallel * layout.dp as f64
    }
}

/// Stride of the expert-parallel group: the expert ranks are ordered etp, ep, edp over the
/// tensor- and data-parallel ranks (parallel folding), so ep members sit `etp` ranks apart, and
/// `etp * pp` apart where data parallelism is outermost.
pub fn expert_parallel_stride(training: &Training, hw: &Hardware, layout: &Layout) -> f64 {
    let etp = layout.etp as f64;
    if data_parallel_outermost(training, hw, layout) {
        etp * layout.pp as f64
    } else {
        etp
    }
}

/// Costs of one layer (dense or MoE) for one microbatch on one rank.
pub fn layer_costs(
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    layout: &Layout,
    shape: &LocalShape,
    moe: bool,
) -> LayerCosts {
    let dtype = training.dtype;
    let act = dtype.activation_dtype();
    let t = shape.tokens;
    let h = shape.hidden;
    let up = shape.ffn_kind.up_width();

    // Attention block GEMMs.
    let attention_gemms = attention_projections_s(shape, hw, dtype);

    // Feed-forward GEMMs and the width of the activation per token.
    let (ffn_gemms, ffn_width, moe_extra_fwd) = if moe {
        let k = model.experts_per_token as f64;
        let local_experts = model.experts as f64 / layout.ep as f64;
        // Routed copies per token of the microbatch, for the per-token byte counts.
        let routed_per_token = k * shape.expert_tokens / t;
        // The busiest expert-parallel rank sets the pace.
        let tokens_per_expert = shape.expert_tokens * k / local_experts * training.moe_imbalance;
        let fe = shape.expert_ffn;
        let routed = local_experts
            * (gemm_time_s(tokens_per_expert, fe * up, h, hw, dtype)
                + gemm_time_s(tokens_per_expert, h, fe, hw, dtype));
        // Shared experts run as a dense block under the layer's tensor parallelism.
        let shared_width = model.expert_ffn as f64 / layout.tp as f64 * model.shared_experts as f64;
        let shared = if model.shared_experts > 0 {
            gemm_time_s(t, shared_width * up, h, hw, dtype) + gemm_time_s(t, h, shared_width, hw, dtype)
        } else {
            0.0
        };
        let router = gemm_time_s(t, model.experts as f64, h, hw, act);
        let permute = memory_time_s(moe_permute_forward_bytes(shape, routed_per_token), hw);
        (
            routed + shared,
            fe * routed_per_token + shared_width,
            router + permute,
        )
    } else {
        let f = shape.ffn;
        (
            gemm_time_s(t, f * up, h, hw, dtype) + gemm_time_s(t, h, f, hw, dtype),
            f,
            0.0,
        )
    };

    let gemms = attention_gemms + ffn_gemms;
    let attention_fwd = attention_core_forward_s(shape, training, hw);
    let attention_bwd = attention_core_backward_s(attention_fwd, training);
    let elementwise = memory_time_s(elementwise_forward_bytes(shape, dtype, ffn_width), hw);

    let overhead = hw.efficiency.layer_overhead_s;
    let forward_s = gemms + attention_fwd + elementwise + moe_extra_fwd + overhead;
    let backward_s = 2.0 * (gemms + elementwise + moe_extra_fwd + overhead) + attention_bwd;
    let recompute_compute_s = match layout.recompute {
        Recompute::None => 0.0,
        Recompute::Selective => attention_fwd,
        Recompute::Full => forward_s,
    };
    let full = layout.recompute == Recompute::Full;

    // Tensor parallelism: two all-reduces forward and two backward (or, with sequence
    // parallelism, reduce-scatter + all-gather pairs that move the same bytes), on the
    // 16-bit activations of the layer.
    let tp = layout.tp as f64;
    let tp_bytes = t * h * 2.0;
    let tp_pass = 2.0 * all_reduce_s(hw, tp_bytes, tp, 1.0);
    let (tp_forward, tp_backward) = if tp_overlap_applies(hw, layout) {
        (
            tp_overlapped_s(tp_pass, gemms, tp),
            tp_overlapped_s(tp_pass, 2.0 * gemms, tp),
        )
    } else {
        (tp_pass, tp_pass)
    };

    // Context parallelism: a ring passes each rank's K/V chunk cp-1 times, each transfer hidden
    // behind the attention of the chunk in hand; backward moves K/V and their gradients.
    let cp = layout.cp as f64;
    let (cp_forward, cp_backward) = if layout.cp > 1 {
        let chunk_bytes = t * shape.kv_heads * (shape.qk_head_dim + shape.v_head_dim) * 2.0;
        let hop = point_to_point_s(hw, chunk_bytes, cp * tp);
        (
            (cp - 1.0) * (hop - attention_fwd / cp).max(0.0),
            (cp - 1.0) * (2.0 * hop - attention_bwd / cp).max(0.0),
        )
    } else {
        (0.0, 0.0)
    };

    // The recomputed forward repeats its compute and, for whole layers, the layer's forward
    // communication (the attention core's K/V exchange under selective recomputation too). The
    // expert all-to-all depends on the pipeline and the cluster, so the step prices it (see
    // `expert_all_to_all_s`).
    let recompute_comm_s = if full {
        tp_forward + cp_forward
    } else if layout.recompute == Recompute::Selective {
        cp_forward
    } else {
        0.0
    };
    let (host_s, host_recompute_s) = host_bound_s(training, hw, forward_s, backward_s, recompute_compute_s);

    LayerCosts {
        host_s,
        forward_s,
        backward_s,
        recompute_s: recompute_compute_s + recompute_comm_s + host_recompute_s,
        tp_comm_s: tp_forward + tp_backward,
        cp_comm_s: cp_forward + cp_backward,
    }
}

/// Bytes the busiest rank receives in one all-to-all (the dispatch or the combine) of one MoE
/// layer for one microbatch, 16-bit: each rank's tokens (scattered over tp under sequence
/// parallelism) once per routed expert, times the load imbalance.
pub fn expert_all_to_all_bytes(
    model: &Transformer,
    training: &Training,
    layout: &Layout,
    shape: &LocalShape,
) -> f64 {
    if !model.is_moe() || layout.ep <= 1 {
        return 0.0;
    }
    let tokens = if layout.sequence_parallel {
        shape.tokens / layout.tp as f64
    } else {
        shape.tokens
    };
    tokens * model.experts_per_token as f64 * shape.hidden * 2.0 * training.moe_imbalance
}

/// Of a token's `k` copies that cross the network, the share a per-domain dispatch still sends
/// (see `Stack::dispatch_per_node`): one copy per distinct scale-up domain among its experts.
/// With the EP group over `domains` domains, and group-limited routing reaching `topk_group` of
/// `n_group` groups (each group on `domains / n_group` of them), `reach` domains can hold a
/// token's experts, and `k` balanced draws hit `reach * (1 - (1 - 1/reach)^k)` of them.
pub fn dispatch_copies_share(model: &Transformer, domains: f64) -> f64 {
    let k = model.experts_per_token as f64;
    let mut reach = domains;
    if model.n_group > 0 && model.topk_group > 0 && model.topk_group < model.n_group {
        reach = (domains * model.topk_group as f64 / model.n_group as f64).clamp(1.0, domains);
    }
    let distinct = reach * (1.0 - (1.0 - 1.0 / reach).powf(k));
    (distinct / k).min(1.0)
}

/// Seconds of the expert all-to-alls of one MoE layer for one microbatch, (forward, backward):
/// the dispatch and the combine in each pass over the tiers the EP group spans, with the
/// expert ranks at their stride for this pipeline and cluster. The forward dispatch moves FP8
/// where the stack does (1 byte and a 4-byte scale per 128 elements, DeepSeek-V3 Sec. 3.3.2).
pub fn expert_all_to_all_s(
    bytes: f64,
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    layout: &Layout,
) -> (f64, f64) {
    if bytes <= 0.0 {
        return (0.0, 0.0);
    }
    let size = layout.ep as f64;
    let stride = expert_parallel_stride(training, hw, layout);
    let network_share = if training.stack.dispatch_per_node {
        let in_domain = members_per_domain(size, stride, hw.scale_up_domain as f64);
        dispatch_copies_share(model, size / in_domain)
    } else {
        1.0
    };
    let a2a = |b: f64| expert_all_to_all_transfer_s(hw, b, size, stride, network_share);
    let combine = a2a(bytes);
    let dispatch = if training.stack.fp8_dispatch && training.dtype == Dtype::Fp8 {
        a2a(bytes * FP8_DISPATCH_BYTES_PER_ELEMENT / 2.0)
    } else {
        combine
    };
    (dispatch + combine, 2.0 * combine)
}

/// Bytes per element of an FP8 dispatch: the value and one fp32 scale per 1 x 128 tile
/// (DeepSeek-V3 Sec. 3.3.2).
pub const FP8_DISPATCH_BYTES_PER_ELEMENT: f64 = 1.0 + 4.0 / 128.0;

/// One all-to-all of `bytes` per rank over `size` ranks `stride` apart, with the copies that
/// cross the network cut to `network_share` (a per-domain dispatch; 1 for plain all-to-all):
/// `all_to_all_s` with the network tiers' shares scaled.
pub fn expert_all_to_all_transfer_s(
    hw: &Hardware,
    bytes: f64,
    size: f64,
    stride: f64,
    network_share: f64,
) -> f64 {
    if network_share >= 1.0 {
        return all_to_all_s(hw, bytes, size, stride);
    }
    let inside = all_to_all_s(
        hw,
        bytes,
        size.min(members_per_domain(size, stride, hw.scale_up_domain as f64)),
        stride,
    );
    let network = all_to_all_s(hw, bytes * network_share, size, stride);
    inside.max(network)
}

/// Share of the time an overlapped all-to-all takes from the compute it runs beside: the
/// streaming multiprocessors its kernels occupy, 20 of an H800's 132 (DeepSeek-V3 Sec. 3.2.2;
/// Megatron-Core's `--moe-deepep-num-sms` defaults to 20).
pub const COMM_SM_FRACTION: f64 = 20.0 / 132.0;

/// Exposed seconds of `comm_s` of expert all-to-all where the stack overlaps it with `window_s`
/// of another microbatch's compute: what the window does not hide, and the compute slowed by
/// the SMs the communication holds while they overlap. Without overlap, all of it.
pub fn ep_exposed_s(comm_s: f64, window_s: f64, overlaps: bool) -> f64 {
    if !overlaps {
        return comm_s;
    }
    (comm_s - window_s).max(0.0) + COMM_SM_FRACTION * comm_s.min(window_s)
}

/// True when the layout's tensor-parallel collectives overlap their GEMMs: asked for (with
/// sequence parallelism, which the chunked all-gather/reduce-scatter pipelines need), and the
/// tensor-parallel group inside one scale-up domain. No stack overlaps TP traffic that crosses
/// NICs: Transformer Engine's userbuffers and PyTorch's async TP both move chunks by peer
/// copies over NVLink (TE `initialize_ub`; torch `_micro_pipeline_tp` over symmetric memory).
pub fn tp_overlap_applies(hw: &Hardware, layout: &Layout) -> bool {
    layout.tp_overlap
        && layout.sequence_parallel
        && layout.tp > 1
        && !crosses_domain(layout.tp as f64, 1.0, hw)
}

/// Exposed seconds of one pass's tensor-parallel collectives (`comm_s`) when they are split
/// into `tp` chunks and pipelined with the GEMMs they feed (`gemm_s`), as Transformer Engine's
/// userbuffers do (Wang et al. 2022, "Overlap Communication with Dependent Computation via
/// Decomposition"): the first chunk cannot overlap, and what the GEMMs cannot cover shows.
pub fn tp_overlapped_s(comm_s: f64, gemm_s: f64, tp: f64) -> f64 {
    comm_s / tp + (comm_s - gemm_s).max(0.0) * (tp - 1.0) / tp
}

/// Seconds a synchronous step over `ranks` accelerators waits for its slowest rank: the expected
/// maximum of `ranks` rank times spread by `sync_jitter` around `compute_s` is
/// `compute_s * sync_jitter * sqrt(2 ln ranks)` (the extreme of a normal sample). MegaScale
/// measured the stragglers of a 10K-GPU job at about 1 % of its step (Jiang et al. 2024,
/// Sec. 4.3); the family's value is fitted to the weak-scaling rows of the calibration set.
pub fn sync_jitter_s(hw: &Hardware, ranks: f64, compute_s: f64) -> f64 {
    if ranks <= 1.0 {
        return 0.0;
    }
    compute_s * hw.efficiency.sync_jitter * (2.0 * ranks.ln()).sqrt()
}

/// Costs of a pipeline stage of `layers` layers for one microbatch: the average layer's, with
/// the recomputation of the layers that recompute (all, or `recompute_layers` of them).
pub fn stage_costs(layer: &LayerCosts, layout: &Layout, layers: f64) -> LayerCosts {
    LayerCosts {
        recompute_s: layer.recompute_s * layout.recomputed_layers(layers),
        ..layer.scaled(layers)
    }
}

/// Of a stage's offloaded layers, those that keep all their activations and those that keep
/// only their input (recomputed): offloading takes the largest first.
pub fn offloaded_split(layout: &Layout, layers: f64) -> (f64, f64) {
    let offloaded = layout.offloaded_layers(layers);
    let kept = offloaded.min(layers - layout.recomputed_layers(layers));
    (kept, offloaded - kept)
}

/// Exposed seconds of one pipeline send of `send_s` beside a chunk's `chunk_s` of compute: with
/// the interleaved schedule's overlapped sends (Megatron-Core `overlap_p2p_comm`, where the stack
/// has it), what the next chunk's compute does not hide; otherwise the whole send, as 1F1B's
/// blocking send-and-receive pairs pay it.
pub fn pipeline_send_exposed_s(send_s: f64, chunk_s: f64, training: &Training, layout: &Layout) -> f64 {
    exposed_s(
        send_s,
        chunk_s,
        training.stack.pp_overlap && layout.interleave > 1,
    )
}

/// Costs of the output layer (logits and cross-entropy) for one microbatch on the last stage:
/// (forward, backward).
pub fn logits_costs(
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    shape: &LocalShape,
) -> (f64, f64) {
    let gemm = gemm_time_s(
        shape.tokens,
        shape.vocab,
        shape.hidden,
        hw,
        training.dtype.activation_dtype(),
    );
    let loss = memory_time_s(cross_entropy_bytes(shape), hw);
    // Each multi-token-prediction module runs the shared output head once more.
    let heads = 1.0 + model.mtp_layers as f64;
    (
        heads * (gemm + loss * 10.0 / 16.0),
        heads * (2.0 * gemm + loss * 6.0 / 16.0),
    )
}

/// Transformer layers on the fullest pipeline stage and on the last stage (which also holds the
/// output layer). The layers are spread over the `pp * interleave` virtual stages as evenly as
/// possible, the first virtual stages taking the remainder; where they do not divide evenly the
/// embedding and the loss count as a layer each on the first and last stage (Megatron-Core's
/// `account_for_embedding_in_pipeline_split` and `account_for_loss_in_pipeline_split`; Llama 3
/// takes one layer from each, Sec. 3.3.2), so that 126 layers on 16 stages run 7, 8, ..., 8, 7.
pub fn stage_layers(model: &Transformer, layout: &Layout) -> (f64, f64) {
    let layers = model.layers;
    // Multi-token-prediction modules sit after the output layer, on the last stage
    // (Megatron-Core's `mtp_num_layers`).
    let mtp = model.mtp_layers;
    if layout.pp <= 1 {
        return ((layers + mtp) as f64, (layers + mtp) as f64);
    }
    // Whole numbers throughout: exact in both twins, and no float rounding at the boundaries.
    let pp = layout.pp;
    let virtual_stages = pp * layout.interleave;
    let reserved = u32::from(!layers.is_multiple_of(virtual_stages));
    let units = layers + 2 * reserved;
    let base = units / virtual_stages;
    let remainder = units % virtual_stages;
    let per_device = |device: u32| layout.interleave * base + stage_extra(device, remainder, pp);
    let first = per_device(0) - reserved;
    let last = per_device(pp - 1) - reserved + mtp;
    let middle = if pp > 2 { per_device(1) } else { 0 };
    (first.max(middle).max(last) as f64, last as f64)
}

/// Exposed expert all-to-all seconds per microbatch of a stage of `layers` layers, given one MoE
/// layer's (forward, backward) all-to-all seconds: the MoE share of its layers in both passes
/// and, under full recomputation, again in the recomputed forwards. Where the stack overlaps
/// them, the window is the stage's compute in the same microbatch slot (the paired
/// microbatch's forward and backward, DualPipe's and Megatron-Core's combined 1F1B).
pub fn stage_ep_exposed_s(
    a2a: (f64, f64),
    stage: &LayerCosts,
    model: &Transformer,
    training: &Training,
    layout: &Layout,
    layers: f64,
) -> f64 {
    let (forward, backward) = a2a;
    if forward + backward <= 0.0 {
        return 0.0;
    }
    let share = model.moe_layer_share();
    let recomputed = if layout.recompute == Recompute::Full {
        layout.recomputed_layers(layers)
    } else {
        0.0
    };
    let comm_s = share * (layers * (forward + backward) + recomputed * forward);
    let window_s = stage.forward_s + stage.backward_s + stage.recompute_s;
    ep_exposed_s(comm_s, window_s, training.stack.ep_overlap)
}

/// The pipeline bubble in stage times (one microbatch's stage work): `(pp - 1) / interleave`
/// for 1F1B and interleaved 1F1B (Narayanan et al. 2021); for DualPipe, `(pp/2 - 1)` slots of
/// `F&B + B - 3W` (DeepSeek-V3 Table 2), which with the backward's input and weight halves each
/// as long as the forward (`B = 2F`, `W = F`, `F&B = F + B`) is `2F`, two thirds of a stage time.
pub fn pipeline_bubbles(training: &Training, layout: &Layout) -> f64 {
    let pp = layout.pp as f64;
    if training.stack.dualpipe && layout.pp > 1 {
        (pp / 2.0 - 1.0).max(0.0) * 2.0 / 3.0
    } else {
        (pp - 1.0) / layout.interleave as f64
    }
}

/// Layers a device gains from the remainder of [`stage_layers`]'s split: device `d` holds
/// virtual stages `d, d + pp, ...`, and those below the remainder take one more layer each.
pub fn stage_extra(device: u32, remainder: u32, pp: u32) -> u32 {
    if device < remainder {
        (remainder - device).div_ceil(pp)
    } else {
        0
    }
}

/// Parameters held by one rank of the fullest stage: (shared with the data-parallel group,
/// routed experts). Embedding and output matrices sit on the first and last stage. Under
/// DualPipe each device holds two stages (stage `i` and `pp - 1 - i`), so twice as many.
pub fn stage_params(
    model: &Transformer,
    training: &Training,
    layout: &Layout,
    totals: &ModelTotals,
    fullest: f64,
) -> (f64, f64) {
    let share = fullest / model.layers as f64;
    let tp = layout.tp as f64;
    let embeddings = embedding_params(model);
    let on_stage_embeddings = if layout.pp > 1 {
        model.vocab as f64 * model.hidden as f64
    } else {
        embeddings
    };
    // Latent attention's down projections are whole on every tensor-parallel rank.
    let replicated = model.layers as f64 * tp_replicated_params(model);
    let dense = ((totals.dense_params - embeddings - replicated) * share + on_stage_embeddings) / tp
        + replicated * share;
    let experts = totals.expert_params * share / (layout.etp as f64 * layout.ep as f64);
    let copies = if training.stack.dualpipe && layout.pp > 1 {
        2.0
    } else {
        1.0
    };
    (dense * copies, experts * copies)
}

/// The fullest and the last pipeline stage of a layout: their layers ([`stage_layers`]) and the
/// parameters a rank of the fullest holds ([`stage_params`]), once per layout for the step's and
/// the memory's terms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageShape {
    pub fullest_layers: f64,
    pub last_layers: f64,
    /// Parameters shared with the data-parallel group, and routed experts.
    pub dense_params: f64,
    pub expert_params: f64,
}

impl StageShape {
    /// (shared with the data-parallel group, routed experts), as [`stage_params`] gives them.
    pub fn params(&self) -> (f64, f64) {
        (self.dense_params, self.expert_params)
    }
}

/// The stage shape of `layout`.
pub fn stage_shape(
    model: &Transformer,
    training: &Training,
    layout: &Layout,
    totals: &ModelTotals,
) -> StageShape {
    let (fullest_layers, last_layers) = stage_layers(model, layout);
    let (dense_params, expert_params) = stage_params(model, training, layout, totals, fullest_layers);
    StageShape {
        fullest_layers,
        last_layers,
        dense_params,
        expert_params,
    }
}

/// The breakdown of one step on the slowest stage, seconds. The terms add up to `step_time_s`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepBreakdown {
    pub forward_s: f64,
    pub backward_s: f64,
    pub recompute_s: f64,
    pub tp_comm_s: f64,
    pub cp_comm_s: f64,
    pub ep_comm_s: f64,
    pub pp_p2p_exposed_s: f64,
    pub pp_bubble_s: f64,
    pub dp_comm_s: f64,
    pub optimizer_s: f64,
    /// Fixed per-step work outside the model (see `Efficiency::step_overhead_s`).
    pub step_overhead_s: f64,
    /// Activation transfers to and from host memory that compute does not hide.
    pub offload_s: f64,
    /// Waiting on the host to issue kernels (see [`host_bound_s`]).
    pub host_overhead_s: f64,
    /// Waiting for the slowest rank at each synchronous step (see [`sync_jitter_s`]).
    pub sync_jitter_s: f64,
}

impl StepBreakdown {
    pub fn total_s(&self) -> f64 {
        self.forward_s
            + self.backward_s
            + self.recompute_s
            + self.tp_comm_s
            + self.cp_comm_s
            + self.ep_comm_s
            + self.pp_p2p_exposed_s
            + self.pp_bubble_s
            + self.dp_comm_s
            + self.optimizer_s
            + self.step_overhead_s
            + self.offload_s
            + self.host_overhead_s
            + self.sync_jitter_s
    }

    /// (name, seconds) of each term, in a stable order.
    pub fn terms(&self) -> [(&'static str, f64); 14] {
        [
            ("forward_s", self.forward_s),
            ("backward_s", self.backward_s),
            ("recompute_s", self.recompute_s),
            ("tp_comm_s", self.tp_comm_s),
            ("cp_comm_s", self.cp_comm_s),
            ("ep_comm_s", self.ep_comm_s),
            ("pp_p2p_exposed_s", self.pp_p2p_exposed_s),
            ("pp_bubble_s", self.pp_bubble_s),
            ("dp_comm_s", self.dp_comm_s),
            ("optimizer_s", self.optimizer_s),
            ("step_overhead_s", self.step_overhead_s),
            ("offload_s", self.offload_s),
            ("host_overhead_s", self.host_overhead_s),
            ("sync_jitter_s", self.sync_jitter_s),
        ]
    }
}

/// Exposed seconds of data-parallel synchronisation (gradient reduction, ZeRO gathers) per step.
///
/// - ZeRO 0: one all-reduce of the gradients, overlapped with the last microbatch's backward
///   where the stack reduces bucket by bucket during it (`grad_reduce_overlap`), else after it.
/// - ZeRO 1: reduce-scatter of the gradients (as ZeRO 0) and all-gather of the updated
///   parameters, overlapped with the next step's first forward where the stack does so
///   (`param_gather_overlap`), as Megatron's distributed optimizer does.
/// - ZeRO 2 (FSDP `SHARD_GRAD_OP`): every microbatch gathers the parameters before its forward
///   and reduce-scatters its gradients during its backward.
/// - ZeRO 3 (FSDP `FULL_SHARD`): every microbatch gathers the parameters before its forward and
///   again before its backward (and, where the stack releases them after every forward, again
///   for a recomputed forward), and reduce-scatters the gradients.
///
/// ZeRO 2/3 gather and reduce layer by layer. With `param_gather_overlap` the transfers are
/// prefetched a layer ahead: the first layer's gather is exposed, the rest hides behind the
/// compute it overlaps; without it every transfer waits. Where the stack gathers once per step
/// (`zero_sync`: parameters kept across microbatches, gradients reduced on the last),
/// the traffic is paid once, behind the first microbatch's forward and the last one's backward.
#[allow(clippy::too_many_arguments)]
pub fn data_parallel_exposed_s(
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    layout: &Layout,
    stage_params: (f64, f64),
    microbatches: f64,
    stage_forward_s: f64,
    stage_backward_s: f64,
    stage_layer_count: f64,
) -> f64 {
    let stack = &training.stack;
    let (dense, experts) = stage_params;
    let stride = data_parallel_stride(training, hw, layout);
    let replicated = layout.dp as f64 * layout.cp as f64;
    // ZeRO's collectives run over the shard group; under hybrid sharding the replicas of each
    // shard then all-reduce its gradients once per step, during the last backward.
    let group = if layout.zero >= 1 {
        zero_shard_group(training, hw, layout)
    } else {
        replicated
    };
    let replicas = replicated / group;
    let replica_reduce_s = if replicas > 1.0 {
        let ar = all_reduce_s(
            hw,
            dense / group * training.grad_reduce_bytes,
            replicas,
            stride * group,
        );
        exposed_s(ar, stage_backward_s, stack.grad_reduce_overlap)
    } else {
        0.0
    };
    let expert_group = layout.expert_data_parallel();
    let expert_stride = expert_parallel_stride(training, hw, layout) * layout.ep as f64;
    let collective = |params_dense: f64, params_expert: f64, bytes_per_param: f64, passes: f64| {
        let f = if passes > 1.5 { all_reduce_s } else { all_gather_s };
        f(hw, params_dense * bytes_per_param, group, stride)
            + f(hw, params_expert * bytes_per_param, expert_group, expert_stride)
    };
    let grads = training.grad_reduce_bytes;
    let weights = gathered_weight_bytes(training);
    let sharded_s = match layout.zero {
        0 => {
            let ar = collective(dense, experts, grads, 2.0);
            exposed_s(ar, stage_backward_s, stack.grad_reduce_overlap)
        }
        1 => {
            let rs = collective(dense, experts, grads, 1.0);
            let ag = collective(dense, experts, weights, 1.0);
            exposed_s(rs, stage_backward_s, stack.grad_reduce_overlap)
                + exposed_s(ag, stage_forward_s, stack.param_gather_overlap)
        }
        _ => {
            // Sharded data parallelism gathers and reduces layer by layer (FSDP wraps each block):
            // the bandwidth is the stage's, the latency is paid once per layer, or once per
            // parameter tensor where the stack gathers tensor by tensor.
            let layers = stage_layer_count.max(1.0);
            let gathers = if layout.zero >= 3 && stack.zero3_gathers_per_tensor {
                layers * tensors_per_layer(model)
            } else {
                layers
            };
            let ag = gathers * collective(dense / gathers, experts / gathers, weights, 1.0);
            let rs = layers * collective(dense / layers, experts / layers, grads, 1.0);
            // The gathers before the forward: prefetched a layer ahead where the stack overlaps
            // them (the first layer's exposed), else waited for.
            let first_layer = ag / layers;
            let forward_gather = if stack.param_gather_overlap {
                first_layer + (ag - stage_forward_s).max(0.0)
            } else {
                ag
            };
            if stack.zero_once_per_step(layout) {
                return forward_gather
                    + exposed_s(rs, stage_backward_s, stack.grad_reduce_overlap)
                    + replica_reduce_s;
            }
            let regathers = layout.zero >= 3
                && layout.recompute == Recompute::Full
                && stack.zero3_regathers_for_recompute;
            let backward_gathers = match (layout.zero >= 3, regathers) {
                (false, _) => 0.0,
                (true, false) => 1.0,
                (true, true) => 2.0,
            };
            let backward_comm = backward_gathers * ag + rs;
            let per_microbatch =
                forward_gather + exposed_s(backward_comm, stage_backward_s, stack.param_gather_overlap);
            per_microbatch * microbatches
        }
    };
    sharded_s + replica_reduce_s
}

/// Seconds of a transfer of `comm_s` left exposed: what the `window_s` of compute it runs beside
/// does not cover when it `overlaps`, all of it when it does not.
pub fn exposed_s(comm_s: f64, window_s: f64, overlaps: bool) -> f64 {
    if overlaps {
        (comm_s - window_s).max(0.0)
    } else {
        comm_s
    }
}

/// Seconds of the optimizer step: one memory-bound pass over the rank's shard of the optimizer
/// state (read and write Adam's state, read the gradient twice for clipping and update, write
/// the 16-bit weights), for a stage holding `stage_params` (see [`stage_params`]).
pub fn optimizer_s(training: &Training, hw: &Hardware, layout: &Layout, stage_params: (f64, f64)) -> f64 {
    let (dense, experts) = stage_params;
    let (dense_shard, expert_shard) = if layout.zero >= 1 {
        let group = zero_shard_group(training, hw, layout);
        (dense / group, experts / layout.expert_data_parallel())
    } else {
        (dense, experts)
    };
    let bytes_per_param =
        2.0 * training.optimizer_state_bytes + 2.0 * training.grad_bytes + training.weight_bytes;
    memory_time_s((dense_shard + expert_shard) * bytes_per_param, hw)
}

/// Costs of the average layer: dense layers and MoE layers weighted by their counts.
pub fn average_layer_costs(
    model: &Transformer,
    training: &Training,
    hw: &Hardware,
    layout: &Layout,
    shape: &LocalShape,
) -> LayerCosts {
    let dense = layer_costs(model, training, hw, layout, shape, false);
    if model.is_moe() {
        let moe_share = model.moe_layers() as f64 / model.layers as f64;
        let moe = layer_costs(model, training, hw, layout, shape, true);
        dense.scaled(1.0 - moe_share).plus(&moe.scaled(moe_share))
    } else {
        dense
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flops::{local_shape, model_totals};
    // The stage-level step these per-layer costs add up to.
    use crate::model::profile::profile;
    use crate::model::stage::{offload_exposed_s, step_breakdown, step_breakdown_with};
    use crate::model::test_support::{gpt3_175b, h100, llama3_8b, mixtral_like, plain_layout, training};
    use crate::model::Dtype;

    #[test]
    fn hybrid_sharding_shards_inside_the_domain_and_all_reduces_across_domains() {
        let m = llama3_8b();
        let mut t = training();
        t.stack.hybrid_shard = true;
        let hw = h100();
        let mut layout = plain_layout();
        layout.dp = 64;
        layout.zero = 3;
        assert_eq!(zero_shard_group(&t, &hw, &layout), 64.0);
        layout.hybrid_shard = true;
        assert_eq!(zero_shard_group(&t, &hw, &layout), 8.0);
        // The replicas' gradient all-reduce adds to the sharded collectives, never subtracts.
        let (f, b) = (1e-3, 1e-3);
        let params = stage_shape(&m, &t, &layout, &model_totals(&m)).params();
        let hybrid = data_parallel_exposed_s(&m, &t, &hw, &layout, params, 4.0, f, b, 32.0);
        layout.dp = 8;
        let one_domain = data_parallel_exposed_s(&m, &t, &hw, &layout, params, 4.0, f, b, 32.0);
        assert!(hybrid > one_domain, "{hybrid} vs {one_domain}");
    }

    /// The fixture's training on a stack whose pipeline sends block (as Megatron-LM's in 2021).
    fn blocking_sends() -> Training {
        let mut t = training();
        t.stack.pp_overlap = false;
        t
    }

    #[test]
    fn interleaved_sends_hide_behind_the_next_chunk_where_the_stack_overlaps_them() {
        let t = training();
        let mut layout = plain_layout();
        assert_eq!(pipeline_send_exposed_s(3.0, 2.0, &t, &layout), 3.0);
        layout.interleave = 2;
        assert_eq!(pipeline_send_exposed_s(3.0, 2.0, &t, &layout), 1.0);
        assert_eq!(pipeline_send_exposed_s(1.0, 2.0, &t, &layout), 0.0);
        assert_eq!(pipeline_send_exposed_s(3.0, 2.0, &blocking_sends(), &layout), 3.0);
        // Over a slow link the sends show even overlapped.
        let mut slow = h100();
        slow.scale_out_bytes_per_s = 1e8;
        slow.scale_up_domain = 1;
        layout.tp = 8;
        layout.pp = 8;
        layout.dp = 4;
        let b = step_breakdown(&gpt3_175b(), &t, &slow, &layout);
        assert!(b.pp_p2p_exposed_s > 0.0);
    }

    #[test]
    fn tp_overlap_only_inside_the_scale_up_domain() {
        let m = llama3_8b();
        let hw = h100();
        let mut layout = plain_layout();
        layout.tp = 16;
        layout.sequence_parallel = true;
        layout.tp_overlap = true;
        let spanning = layer_costs(&m, &training(), &hw, &layout, &local_shape(&m, &layout), false).tp_comm_s;
        layout.tp_overlap = false;
        let exposed = layer_costs(&m, &training(), &hw, &layout, &local_shape(&m, &layout), false).tp_comm_s;
        assert_eq!(spanning, exposed);
        assert!(!tp_overlap_applies(
            &hw,
            &Layout {
                tp_overlap: true,
                ..layout
            }
        ));
        layout.tp = 8;
        assert!(tp_overlap_applies(
            &hw,
            &Layout {
                tp_overlap: true,
                ..layout
            }
        ));
    }

    #[test]
    fn data_parallel_exposure_follows_the_stack() {
        // A ZeRO-1 reduce-scatter of 2 s beside 1.5 s of backward, and its gather beside 1 s of
        // forward: overlapped, 0.5 s shows; not overlapped, all of it.
        assert_eq!(exposed_s(2.0, 1.5, true), 0.5);
        assert_eq!(exposed_s(2.0, 1.5, false), 2.0);
        let m = llama3_8b();
        let hw = h100();
        let mut layout = plain_layout();
        layout.dp = 64;
        layout.zero = 1;
        let mut t = training();
        t.global_batch = 64 * 8;
        let overlapped = step_breakdown(&m, &t, &hw, &layout).dp_comm_s;
        t.stack.grad_reduce_overlap = false;
        t.stack.param_gather_overlap = false;
        let waiting = step_breakdown(&m, &t, &hw, &layout).dp_comm_s;
        assert!(waiting > overlapped, "{waiting} vs {overlapped}");
        // ZeRO-3: per microbatch against once per step.
        layout.zero = 3;
        t = training();
        t.global_batch = 64 * 8;
        let per_microbatch = step_breakdown(&m, &t, &hw, &layout).dp_comm_s;
        t.stack.zero_sync = crate::model::ZeroSync::PerStep;
        let per_step = step_breakdown(&m, &t, &hw, &layout).dp_comm_s;
        assert!(per_step < per_microbatch / 4.0, "{per_step} vs {per_microbatch}");
    }

    #[test]
    fn deepspeed_zero3_gathers_each_tensor_again_for_recompute() {
        let m = gpt3_175b();
        let hw = h100();
        let mut layout = plain_layout();
        layout.dp = 64;
        layout.zero = 3;
        layout.recompute = Recompute::Full;
        let mut t = training();
        t.global_batch = 64;
        t.stack.param_gather_overlap = false;
        let layer = step_breakdown(&m, &t, &hw, &layout).dp_comm_s;
        t.stack.zero3_regathers_for_recompute = true;
        let regather = step_breakdown(&m, &t, &hw, &layout).dp_comm_s;
        t.stack.zero3_gathers_per_tensor = true;
        let per_tensor = step_breakdown(&m, &t, &hw, &layout).dp_comm_s;
        // Three gathers and a reduce-scatter instead of two and one: a third more traffic (the
        // reduce-scatter of 4-byte gradients counts twice a 2-byte gather).
        assert!(
            (regather / layer - 5.0 / 4.0).abs() < 0.05,
            "{regather} vs {layer}"
        );
        // Per tensor: 12 ring latencies per layer and gather instead of one.
        let (stages, _) = stage_layers(&m, &layout);
        let extra = 3.0 * stages * 11.0 * 63.0 * hw.scale_out_latency_s;
        assert!(
            per_tensor > regather + 0.5 * extra,
            "{per_tensor} vs {regather} + {extra}"
        );
    }

    #[test]
    fn a_layer_cannot_run_faster_than_the_host_issues_its_kernels() {
        let t = training();
        let hw = h100();
        // 20 kernels at 8 us: 160 us forward, 320 us backward.
        let (host, recompute) = host_bound_s(&t, &hw, 100e-6, 400e-6, 0.0);
        assert!((host - 60e-6).abs() < 1e-12 && recompute == 0.0, "{host}");
        let (_, recompute) = host_bound_s(&t, &hw, 100e-6, 400e-6, 100e-6);
        assert!((recompute - 60e-6).abs() < 1e-12);
        // CUDA graphs issue them at 2 us each: 40 us, hidden.
        let mut graphs = t;
        graphs.stack.cuda_graphs = true;
        assert_eq!(host_bound_s(&graphs, &hw, 100e-6, 400e-6, 0.0), (0.0, 0.0));
        // A tiny model on a thin shard waits on the host; a large one does not.
        let mut tiny = llama3_8b();
        tiny.hidden = 256;
        tiny.heads = 2;
        tiny.kv_heads = 2;
        tiny.ffn = 512;
        tiny.seq_len = 256;
        let layout = plain_layout();
        assert!(layer_costs(&tiny, &t, &hw, &layout, &local_shape(&tiny, &layout), false).host_s > 0.0);
        assert_eq!(
            layer_costs(
                &llama3_8b(),
                &t,
                &hw,
                &layout,
                &local_shape(&llama3_8b(), &layout),
                false
            )
            .host_s,
            0.0
        );
    }

    #[test]
    fn a_synchronous_step_waits_for_the_slowest_rank() {
        let mut hw = h100();
        hw.efficiency.sync_jitter = 0.01;
        // 10 s of compute over 1,024 ranks: 10 * 0.01 * sqrt(2 ln 1024) = 0.372 s.
        let j = sync_jitter_s(&hw, 1024.0, 10.0);
        assert!((j - 0.1 * (2.0 * 1024f64.ln()).sqrt()).abs() < 1e-12, "{j}");
        assert_eq!(sync_jitter_s(&hw, 1.0, 10.0), 0.0);
        assert!(sync_jitter_s(&hw, 16384.0, 10.0) > j);
    }

    #[test]
    fn partial_recomputation_recomputes_only_its_layers() {
        let m = llama3_8b();
        let hw = h100();
        let t = training();
        let mut layout = plain_layout();
        layout.pp = 4;
        layout.dp = 1;
        layout.recompute = Recompute::Full;
        let all = step_breakdown(&m, &t, &hw, &layout);
        layout.recompute_layers = 2;
        let two = step_breakdown(&m, &t, &hw, &layout);
        // 8 layers per stage: two of them recompute.
        assert!((two.recompute_s / all.recompute_s - 0.25).abs() < 1e-12);
        let mem_all = crate::model::stage::memory_breakdown(
            &m,
            &t,
            &hw,
            &Layout {
                recompute_layers: 0,
                ..layout
            },
        );
        let mem_two = crate::model::stage::memory_breakdown(&m, &t, &hw, &layout);
        layout.recompute = Recompute::None;
        layout.recompute_layers = 0;
        let mem_none = crate::model::stage::memory_breakdown(&m, &t, &hw, &layout);
        assert!(mem_all.activations_bytes < mem_two.activations_bytes);
        assert!(mem_two.activations_bytes < mem_none.activations_bytes);
    }

    #[test]
    fn offloaded_activations_cost_what_compute_does_not_hide() {
        let m = llama3_8b();
        let t = training();
        let mut layout = plain_layout();
        layout.offload_layers = 4;
        let mut slow = h100();
        slow.host_link_bytes_per_s = 1e9;
        let p = crate::model::profile::profile(&m, &t, &slow, &layout);
        let copy = p.full_activation_bytes / 1e9;
        let by_hand = 4.0 * ((copy - p.layer.forward_s).max(0.0) + (copy - p.layer.backward_s).max(0.0));
        assert!((offload_exposed_s(&p, &slow, &layout, 32.0) - by_hand).abs() < 1e-12);
        assert!(by_hand > 0.0);
        // Over NVLink-C2C class links the copies hide behind the neighbouring layers.
        let mut c2c = h100();
        c2c.host_link_bytes_per_s = 190e9;
        let p = crate::model::profile::profile(&m, &t, &c2c, &layout);
        assert_eq!(offload_exposed_s(&p, &c2c, &layout, 32.0), 0.0);
        let b = step_breakdown(&m, &t, &slow, &layout);
        assert!(b.offload_s > 0.0);
    }

    #[test]
    fn breakdown_terms_add_up() {
        let mut layout = plain_layout();
        layout.tp = 8;
        layout.pp = 8;
        layout.dp = 4;
        layout.interleave = 2;
        let b = step_breakdown(&gpt3_175b(), &blocking_sends(), &h100(), &layout);
        let sum: f64 = b.terms().iter().map(|(_, v)| v).sum();
        assert!((sum - b.total_s()).abs() < 1e-12);
        assert!(b.pp_bubble_s > 0.0 && b.tp_comm_s > 0.0 && b.pp_p2p_exposed_s > 0.0);
    }

    #[test]
    fn bubble_is_pp_minus_one_over_interleave_stage_times() {
        let mut layout = plain_layout();
        layout.tp = 8;
        layout.pp = 8;
        layout.dp = 4;
        let t = blocking_sends();
        let m = layout.microbatches(&t) as f64;
        let b1 = step_breakdown(&gpt3_175b(), &t, &h100(), &layout);
        let useful = b1.forward_s + b1.backward_s + b1.recompute_s + b1.tp_comm_s + b1.pp_p2p_exposed_s;
        assert!((b1.pp_bubble_s - 7.0 / m * useful).abs() / b1.pp_bubble_s < 1e-12);
        layout.interleave = 4;
        let b4 = step_breakdown(&gpt3_175b(), &t, &h100(), &layout);
        assert!(b4.pp_bubble_s < b1.pp_bubble_s / 3.0);
        // Interleaving multiplies the pipeline sends.
        assert!((b4.pp_p2p_exposed_s / b1.pp_p2p_exposed_s - 4.0).abs() < 1e-12);
    }

    #[test]
    fn full_recompute_repeats_the_forward() {
        let m = llama3_8b();
        let costs = |recompute: Recompute| {
            let layout = Layout {
                recompute,
                ..plain_layout()
            };
            layer_costs(
                &m,
                &training(),
                &h100(),
                &layout,
                &local_shape(&m, &layout),
                false,
            )
        };
        let c = costs(Recompute::Full);
        assert_eq!(c.recompute_s, c.forward_s);
        assert_eq!(costs(Recompute::None).recompute_s, 0.0);
    }

    #[test]
    fn tensor_parallel_costs_four_all_reduces_per_layer() {
        let m = llama3_8b();
        let hw = h100();
        let mut layout = plain_layout();
        layout.tp = 4;
        let c = layer_costs(&m, &training(), &hw, &layout, &local_shape(&m, &layout), false);
        let bytes = 4096.0 * 4096.0 * 2.0; // microbatch 1 x seq 4096 (fixture) x hidden x 2 bytes
        let one = all_reduce_s(&hw, bytes * m.seq_len as f64 / 4096.0, 4.0, 1.0);
        assert!((c.tp_comm_s / (4.0 * one) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn tp_overlap_hides_all_but_the_first_chunk_when_gemms_are_longer() {
        assert_eq!(tp_overlapped_s(4.0, 10.0, 4.0), 1.0);
        // GEMMs too short: the uncovered rest shows too.
        assert_eq!(tp_overlapped_s(4.0, 2.0, 4.0), 1.0 + 2.0 * 0.75);
        let m = llama3_8b();
        let hw = h100();
        let mut layout = plain_layout();
        layout.tp = 4;
        layout.sequence_parallel = true;
        let exposed = layer_costs(&m, &training(), &hw, &layout, &local_shape(&m, &layout), false).tp_comm_s;
        layout.tp_overlap = true;
        let overlapped =
            layer_costs(&m, &training(), &hw, &layout, &local_shape(&m, &layout), false).tp_comm_s;
        assert!(overlapped < exposed / 2.0, "{overlapped} vs {exposed}");
        // Without sequence parallelism there is nothing to overlap with (TE needs it).
        layout.sequence_parallel = false;
        let plain = layer_costs(&m, &training(), &hw, &layout, &local_shape(&m, &layout), false).tp_comm_s;
        assert_eq!(plain, exposed);
    }

    #[test]
    fn context_parallel_comm_hides_behind_attention_when_it_can() {
        let m = llama3_8b();
        let hw = h100();
        let mut layout = plain_layout();
        layout.cp = 2;
        // 8K tokens of LLaMA-3-8B: the attention of a chunk outlasts its K/V hop over NVLink.
        let c = layer_costs(&m, &training(), &hw, &layout, &local_shape(&m, &layout), false);
        assert_eq!(c.cp_comm_s, 0.0);
        // Across a slow scale-out link it shows.
        let mut slow = hw;
        slow.scale_up_domain = 1;
        slow.scale_out_bytes_per_s = 1e8;
        let c = layer_costs(&m, &training(), &slow, &layout, &local_shape(&m, &layout), false);
        assert!(c.cp_comm_s > 0.0);
    }

    #[test]
    fn expert_parallel_all_to_all_only_on_moe_layers() {
        let hw = h100();
        let mut layout = plain_layout();
        layout.dp = 8;
        layout.ep = 8;
        let mut t = training();
        t.stack.ep_overlap = false;
        assert!(
            expert_all_to_all_bytes(
                &mixtral_like(),
                &training(),
                &layout,
                &local_shape(&mixtral_like(), &layout)
            ) > 0.0
        );
        assert_eq!(
            expert_all_to_all_bytes(
                &llama3_8b(),
                &training(),
                &layout,
                &local_shape(&llama3_8b(), &layout)
            ),
            0.0
        );
        assert!(step_breakdown(&mixtral_like(), &t, &hw, &layout).ep_comm_s > 0.0);
        assert_eq!(step_breakdown(&llama3_8b(), &t, &hw, &layout).ep_comm_s, 0.0);
        // Only the MoE layers pay: three dense layers of 56 take their share off.
        let mut leading_dense = mixtral_like();
        leading_dense.dense_layers = 3;
        let all = step_breakdown(&mixtral_like(), &t, &hw, &layout).ep_comm_s;
        let fewer = step_breakdown(&leading_dense, &t, &hw, &layout).ep_comm_s;
        assert!((fewer / all - 53.0 / 56.0).abs() < 1e-9, "{fewer} {all}");
    }

    /// The sweeps price a profile computed with placeholder pipeline and data-parallel degrees
    /// (their per-layer knobs only); with data parallelism outermost the expert ranks' stride
    /// depends on pp, so the all-to-all must be priced by the step, for the real layout.
    #[test]
    fn expert_all_to_all_follows_the_pipeline_not_the_profile() {
        let m = mixtral_like();
        let hw = h100();
        let mut t = training();
        t.stack.data_parallel_outermost = true;
        t.stack.ep_overlap = false;
        t.global_batch = 64;
        let mut layout = plain_layout();
        layout.pp = 4;
        layout.dp = 8;
        layout.ep = 8;
        let mut placeholder = layout;
        placeholder.pp = 1;
        placeholder.dp = 1;
        let cached = step_breakdown_with(
            &profile(&m, &t, &hw, &placeholder),
            &m,
            &t,
            &hw,
            &layout,
            &stage_shape(&m, &t, &layout, &model_totals(&m)),
        );
        let direct = step_breakdown(&m, &t, &hw, &layout);
        assert_eq!(cached, direct);
        // And it is the pipeline's stride that matters: the 8 expert ranks, 4 apart, leave the
        // 8-GPU domain.
        let mut outer_pp = t;
        outer_pp.stack.data_parallel_outermost = false;
        assert!(direct.ep_comm_s > step_breakdown(&m, &outer_pp, &hw, &layout).ep_comm_s);
    }

    #[test]
    fn overlapped_all_to_all_costs_what_the_window_does_not_hide_and_the_sms_it_holds() {
        assert_eq!(ep_exposed_s(3.0, 10.0, false), 3.0);
        assert!((ep_exposed_s(3.0, 10.0, true) - 3.0 * COMM_SM_FRACTION).abs() < 1e-12);
        assert!((ep_exposed_s(12.0, 10.0, true) - (2.0 + 10.0 * COMM_SM_FRACTION)).abs() < 1e-12);
        // In a step: the overlap takes most of the all-to-all off.
        let m = mixtral_like();
        let hw = h100();
        let mut layout = plain_layout();
        layout.dp = 32;
        layout.ep = 8;
        let mut t = training();
        t.global_batch = 256;
        t.stack.ep_overlap = false;
        let exposed = step_breakdown(&m, &t, &hw, &layout);
        t.stack.ep_overlap = true;
        let overlapped = step_breakdown(&m, &t, &hw, &layout);
        assert!(overlapped.ep_comm_s < 0.5 * exposed.ep_comm_s);
        assert!(overlapped.ep_comm_s > 0.0);
    }

    #[test]
    fn a_per_domain_dispatch_sends_a_token_once_per_domain_it_reaches() {
        // DeepSeek-V3: 8 of 256 experts in 8 groups, at most 4 groups per token; EP 64 over 8
        // domains of 8: 4 * (1 - (3/4)^8) = 3.6 distinct domains of 8 copies.
        let mut m = mixtral_like();
        m.experts = 256;
        m.experts_per_token = 8;
        m.n_group = 8;
        m.topk_group = 4;
        let limited = dispatch_copies_share(&m, 8.0);
        assert!(
            (limited - 4.0 * (1.0 - 0.75f64.powi(8)) / 8.0).abs() < 1e-12,
            "{limited}"
        );
        m.n_group = 0;
        m.topk_group = 0;
        let free = dispatch_copies_share(&m, 8.0);
        assert!(
            (free - 8.0 * (1.0 - 0.875f64.powi(8)) / 8.0).abs() < 1e-12,
            "{free}"
        );
        // One domain: one copy; never more copies than experts.
        assert!((dispatch_copies_share(&m, 1.0) - 1.0 / 8.0).abs() < 1e-12);
        assert!(dispatch_copies_share(&m, 1e6) <= 1.0);
        // In a step across domains it saves network time.
        let hw = h100();
        let mut layout = plain_layout();
        layout.dp = 64;
        layout.ep = 64;
        let mut t = training();
        t.global_batch = 64;
        t.stack.ep_overlap = false;
        t.stack.dispatch_per_node = false;
        let plain = step_breakdown(&m, &t, &hw, &layout).ep_comm_s;
        t.stack.dispatch_per_node = true;
        let per_node = step_breakdown(&m, &t, &hw, &layout).ep_comm_s;
        assert!(per_node < 0.8 * plain, "{per_node} {plain}");
    }

    #[test]
    fn the_busiest_expert_rank_sets_the_pace_of_an_imbalanced_moe_layer() {
        let m = mixtral_like();
        let hw = h100();
        let mut layout = plain_layout();
        layout.dp = 8;
        layout.ep = 8;
        let balanced = training();
        let mut skewed = training();
        skewed.moe_imbalance = 1.5;
        let moe = |t: &Training| layer_costs(&m, t, &hw, &layout, &local_shape(&m, &layout), true);
        let dense = |t: &Training| layer_costs(&m, t, &hw, &layout, &local_shape(&m, &layout), false);
        assert!(moe(&skewed).forward_s > moe(&balanced).forward_s);
        assert_eq!(dense(&skewed), dense(&balanced));
        let bytes = |t: &Training| expert_all_to_all_bytes(&m, t, &layout, &local_shape(&m, &layout));
        assert!((bytes(&skewed) / bytes(&balanced) - 1.5).abs() < 1e-12);
        let memory =
            |t: &Training| super::super::stage::memory_breakdown(&m, t, &hw, &layout).activations_bytes;
        assert!(memory(&skewed) > memory(&balanced));
    }

    #[test]
    fn dualpipe_halves_the_bubble_slots_and_holds_two_stages() {
        let m = gpt3_175b();
        let mut layout = plain_layout();
        layout.pp = 16;
        layout.dp = 1;
        let mut t = training();
        t.stack.dualpipe = false;
        assert_eq!(pipeline_bubbles(&t, &layout), 15.0);
        let one = stage_shape(&m, &t, &layout, &model_totals(&m)).params();
        t.stack.dualpipe = true;
        assert!((pipeline_bubbles(&t, &layout) - 7.0 * 2.0 / 3.0).abs() < 1e-12);
        let two = stage_shape(&m, &t, &layout, &model_totals(&m)).params();
        assert_eq!(two.0, 2.0 * one.0);
    }

    #[test]
    fn zero3_pays_per_microbatch_and_zero0_once() {
        let m = llama3_8b();
        let hw = h100();
        let mut layout = plain_layout();
        layout.dp = 64;
        let mut t = training();
        t.global_batch = 64 * 8;
        layout.zero = 0;
        let z0 = step_breakdown(&m, &t, &hw, &layout).dp_comm_s;
        layout.zero = 3;
        let z3 = step_breakdown(&m, &t, &hw, &layout).dp_comm_s;
        assert!(z3 > z0, "{z3} vs {z0}");
    }

    #[test]
    fn uneven_pipelines_count_embedding_and_loss_as_layers() {
        let mut m = llama3_8b();
        m.layers = 126;
        let mut layout = plain_layout();
        // Llama 3 405B on 16 stages: 7, 8 x 14, 7 (arXiv 2407.21783 Sec. 3.3.2).
        layout.pp = 16;
        assert_eq!(stage_layers(&m, &layout), (8.0, 7.0));
        // On 8 stages with 8 virtual stages each: 128 units of 2; the first and last devices
        // hold 15 layers, the others 16.
        layout.pp = 8;
        layout.interleave = 8;
        assert_eq!(stage_layers(&m, &layout), (16.0, 15.0));
        // 126 on 8 plain stages: 128 units of 16.
        layout.interleave = 1;
        assert_eq!(stage_layers(&m, &layout), (16.0, 15.0));
        // Even splits reserve nothing.
        m.layers = 80;
        layout.pp = 4;
        layout.interleave = 5;
        assert_eq!(stage_layers(&m, &layout), (20.0, 20.0));
        // 61 layers (DeepSeek-V3) on 16 stages: 63 units, base 3, remainder 15 on devices 0-14.
        m.layers = 61;
        layout.pp = 16;
        layout.interleave = 1;
        assert_eq!(stage_layers(&m, &layout), (4.0, 2.0));
        layout.pp = 1;
        assert_eq!(stage_layers(&m, &layout), (61.0, 61.0));
    }

    #[test]
    fn optimizer_shards_with_zero1() {
        let m = llama3_8b();
        let hw = h100();
        let mut layout = plain_layout();
        layout.dp = 8;
        let t = training();
        let params = stage_shape(&m, &t, &layout, &model_totals(&m)).params();
        let full = optimizer_s(&t, &hw, &layout, params);
        layout.zero = 1;
        let sharded = optimizer_s(&t, &hw, &layout, params);
        assert!((full / sharded - 8.0).abs() < 1e-9);
        // Unsharded: 8.03B params x 34 bytes through 3.35 TB/s at the memory efficiency.
        let expected = 8.03e9 * 34.0 / (3.35e12 * hw.efficiency.memory);
        assert!((full / expected - 1.0).abs() < 0.01, "{full} vs {expected}");
    }

    #[test]
    fn fp8_step_is_faster_than_bf16() {
        let m = llama3_8b();
        let hw = h100();
        let layout = plain_layout();
        let mut t = training();
        let bf16 = step_breakdown(&m, &t, &hw, &layout).total_s();
        t.dtype = Dtype::Fp8;
        let fp8 = step_breakdown(&m, &t, &hw, &layout).total_s();
        assert!(fp8 < bf16);
    }
}
