// Twin: src/model/mod.rs. The model's types, their helpers, and the layout rules.
//
// The shaders are the model of src/model/*.rs in f32, function for function with the same
// names and loop structure; the files are concatenated in the order model, flops, compute, comm,
// step, memory, profile, run, sweep. Host-shareable structs (Gpu*) have #[repr(C)] twins in
// src/engine/sweep/gpu_types.rs, checked member by member by the tests.

struct GpuModel {
    layers: u32,
    hidden: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    ffn: u32,
    ffn_kind: u32,
    vocab: u32,
    seq_len: u32,
    experts: u32,
    experts_per_token: u32,
    expert_ffn: u32,
    shared_experts: u32,
    dense_layers: u32,
    tied_embeddings: u32,
    q_lora_rank: u32,
    kv_lora_rank: u32,
    qk_rope_head_dim: u32,
    v_head_dim: u32,
    sliding_window: u32,
    sliding_window_layers: u32,
    mtp_layers: u32,
    n_group: u32,
    topk_group: u32,
}

struct GpuTraining {
    dtype: u32,
    global_batch_bound: u32,
    tokens: f32,
    objective: u32,
    moe_imbalance: f32,
    // Pads to 32 bytes.
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// Twin of Stack (booleans as 0/1) with the training settings that follow from the stack.
struct GpuStack {
    tensor_parallel: u32,
    pipeline_parallel: u32,
    sequence_parallel: u32,
    interleave: u32,
    uneven_pipeline: u32,
    context_parallel: u32,
    expert_parallel: u32,
    activation_offload: u32,
    tp_overlap: u32,
    zero_stages: u32,
    recompute_modes: u32,
    formats: u32,
    grad_reduce_overlap: u32,
    param_gather_overlap: u32,
    zero_sync: u32,
    zero3_regathers_for_recompute: u32,
    zero3_gathers_per_tensor: u32,
    zero3_master_only: u32,
    hybrid_shard: u32,
    pp_overlap: u32,
    data_parallel_outermost: u32,
    kernels_per_layer: f32,
    cuda_graphs: u32,
    attention: u32,
    dropout: u32,
    weight_bytes: f32,
    grad_bytes: f32,
    optimizer_state_bytes: f32,
    grad_reduce_bytes: f32,
    ep_overlap: u32,
    dualpipe: u32,
    dispatch_per_node: u32,
    fp8_dispatch: u32,
    lean_activations: u32,
}

struct GpuAccelerator {
    peak_fp16: f32,
    peak_bf16: f32,
    peak_fp8: f32,
    peak_fp4: f32,
    hbm_bytes: f32,
    hbm_bytes_per_s: f32,
    scale_up_bytes_per_s: f32,
    scale_up_domain: f32,
    scale_up_latency_s: f32,
    torus_axis: f32,
    torus_dims: f32,
    scale_out_bytes_per_s: f32,
    scale_out_latency_s: f32,
    memory_reserve_bytes: f32,
    host_link_bytes_per_s: f32,
    host_memory_bytes: f32,
    pod_size: f32,
    pod_oversubscription: f32,
    cross_pod_latency_s: f32,
    site_size: f32,
    inter_site_bytes_per_s: f32,
    inter_site_latency_s: f32,
    gemm: f32,
    gemm_half_dim: f32,
    low_precision_gemm: f32,
    attention: f32,
    attention_flash2: f32,
    attention_flash1: f32,
    layer_overhead_s: f32,
    step_overhead_s: f32,
    launch_overhead_s: f32,
    graph_launch_overhead_s: f32,
    sync_jitter: f32,
    memory: f32,
    scale_up: f32,
    scale_out: f32,
    power_all_in_w: f32,
    average_power_fraction: f32,
    pue: f32,
    electricity_usd_per_mwh: f32,
    price_per_hour_usd: f32,
    capex_per_accelerator_usd: f32,
    failure_rate_per_hour: f32,
    checkpoint_bytes_per_s: f32,
    restart_s: f32,
    pricing: u32,
    supports_dtype: u32,
}

// Pricing codes: the discriminants of Pricing.
const PRICING_RENTAL: u32 = 0u;
const PRICING_CAPEX: u32 = 1u;
const FFN_MLP: u32 = 0u;
const FFN_SWIGLU: u32 = 1u;
// check_layout / check_placement codes: the discriminants of LayoutViolation (0: none).
const LAYOUT_TP_HEADS: u32 = 1u;
const LAYOUT_TP_KV_HEADS: u32 = 2u;
const LAYOUT_TP_FFN: u32 = 3u;
const LAYOUT_PP_LAYERS: u32 = 4u;
const LAYOUT_BATCH: u32 = 5u;
const LAYOUT_INTERLEAVE: u32 = 6u;
const LAYOUT_CP_SEQ: u32 = 7u;
const LAYOUT_EP: u32 = 8u;
const LAYOUT_ZERO: u32 = 9u;
const LAYOUT_SITES: u32 = 10u;
const LAYOUT_RECOMPUTE_LAYERS: u32 = 11u;
const DTYPE_FP16: u32 = 0u;
const DTYPE_BF16: u32 = 1u;
const DTYPE_FP8: u32 = 2u;
const DTYPE_FP4: u32 = 3u;
const RECOMPUTE_NONE: u32 = 0u;
const RECOMPUTE_SELECTIVE: u32 = 1u;
const RECOMPUTE_FULL: u32 = 2u;
const ATTENTION_UNFUSED: u32 = 0u;
const ATTENTION_FLASH1: u32 = 1u;
const ATTENTION_FLASH2: u32 = 2u;
const ATTENTION_FLASH3: u32 = 3u;
const ZERO_SYNC_PER_MICROBATCH: u32 = 0u;
const ZERO_SYNC_PER_STEP: u32 = 1u;
const ZERO_SYNC_PER_STEP_WHEN_PIPELINED: u32 = 2u;
// StackViolation codes (0: none).
const STACK_TENSOR_PARALLEL: u32 = 1u;
const STACK_PIPELINE_PARALLEL: u32 = 2u;
const STACK_SEQUENCE_PARALLEL: u32 = 3u;
const STACK_TP_OVERLAP: u32 = 4u;
const STACK_INTERLEAVE: u32 = 5u;
const STACK_CONTEXT_PARALLEL: u32 = 6u;
const STACK_EXPERT_PARALLEL: u32 = 7u;
const STACK_ZERO: u32 = 8u;
const STACK_RECOMPUTE: u32 = 9u;
const STACK_FORMAT: u32 = 10u;
const STACK_UNEVEN_PIPELINE: u32 = 11u;
const STACK_OFFLOAD: u32 = 12u;
const STACK_HYBRID_SHARD: u32 = 13u;

// Twin of Layout.
struct Layout {
    tp: u32,
    pp: u32,
    dp: u32,
    cp: u32,
    ep: u32,
    etp: u32,
    microbatch: u32,
    interleave: u32,
    recompute: u32,
    sequence_parallel: bool,
    tp_overlap: bool,
    zero: u32,
    recompute_layers: u32,
    offload_layers: u32,
    hybrid_shard: bool,
}

// Twin of Layout::recomputed_layers.
fn recomputed_layers(l: Layout, stage_layers: f32) -> f32 {
    if l.recompute == RECOMPUTE_FULL && l.recompute_layers > 0u {
        return min(f32(l.recompute_layers), stage_layers);
    }
    if l.recompute == RECOMPUTE_NONE {
        return 0.0;
    }
    return stage_layers;
}

// Twin of Layout::offloaded_layers.
fn offloaded_layers(l: Layout, stage_layers: f32) -> f32 {
    return min(f32(l.offload_layers), stage_layers);
}

// Twin of Training (the run's settings under one stack, with one layout's global batch).
struct Training {
    global_batch: u32,
    tokens: f32,
    dtype: u32,
    weight_bytes: f32,
    grad_bytes: f32,
    optimizer_state_bytes: f32,
    grad_reduce_bytes: f32,
    attention: u32,
    dropout: bool,
    stack: GpuStack,
    moe_imbalance: f32,
}

// Twin of AttentionKernel::is_fused.
fn attention_is_fused(kernel: u32) -> bool {
    return kernel != ATTENTION_UNFUSED;
}

// Twin of Efficiency::fused_attention.
fn fused_attention(hw: GpuAccelerator, kernel: u32) -> f32 {
    if kernel == ATTENTION_FLASH1 {
        return hw.attention_flash1;
    }
    return select(hw.attention, hw.attention_flash2, kernel == ATTENTION_FLASH2);
}

// Twin of Stack::zero_once_per_step.
fn zero_once_per_step(s: GpuStack, l: Layout) -> bool {
    if s.zero_sync == ZERO_SYNC_PER_STEP {
        return true;
    }
    return s.zero_sync == ZERO_SYNC_PER_STEP_WHEN_PIPELINED && l.pp > 1u;
}

// Twin of check_stack: 0 when the stack can run the layout, else a StackViolation code.
fn check_stack(s: GpuStack, m: GpuModel, l: Layout, dtype: u32) -> u32 {
    if l.tp > 1u && s.tensor_parallel == 0u {
        return STACK_TENSOR_PARALLEL;
    }
    if l.pp > 1u && s.pipeline_parallel == 0u {
        return STACK_PIPELINE_PARALLEL;
    }
    if l.sequence_parallel && s.sequence_parallel == 0u {
        return STACK_SEQUENCE_PARALLEL;
    }
    if l.tp_overlap && s.tp_overlap == 0u {
        return STACK_TP_OVERLAP;
    }
    if l.interleave > 1u && s.interleave == 0u {
        return STACK_INTERLEAVE;
    }
    if l.cp > 1u && s.context_parallel == 0u {
        return STACK_CONTEXT_PARALLEL;
    }
    if l.ep > 1u && s.expert_parallel == 0u {
        return STACK_EXPERT_PARALLEL;
    }
    if l.zero >= 32u || (s.zero_stages & (1u << l.zero)) == 0u {
        return STACK_ZERO;
    }
    if (s.recompute_modes & (1u << l.recompute)) == 0u {
        return STACK_RECOMPUTE;
    }
    if (s.formats & (1u << dtype)) == 0u {
        return STACK_FORMAT;
    }
    if l.pp > 1u && s.uneven_pipeline == 0u && urem(m.layers, l.pp * l.interleave) != 0u {
        return STACK_UNEVEN_PIPELINE;
    }
    if l.offload_layers > 0u && s.activation_offload == 0u {
        return STACK_OFFLOAD;
    }
    if l.hybrid_shard && s.hybrid_shard == 0u {
        return STACK_HYBRID_SHARD;
    }
    return 0u;
}

fn ffn_matrices(kind: u32) -> f32 {
    return select(2.0, 3.0, kind == FFN_SWIGLU);
}

fn ffn_up_width(kind: u32) -> f32 {
    return select(1.0, 2.0, kind == FFN_SWIGLU);
}

fn gemm_input_bytes(dtype: u32) -> f32 {
    if dtype == DTYPE_FP8 {
        return 1.0;
    }
    if dtype == DTYPE_FP4 {
        return 0.5;
    }
    return 2.0;
}

fn is_low_precision(dtype: u32) -> bool {
    return dtype == DTYPE_FP8 || dtype == DTYPE_FP4;
}

fn activation_dtype(dtype: u32) -> u32 {
    return select(DTYPE_BF16, DTYPE_FP16, dtype == DTYPE_FP16);
}

fn is_moe(m: GpuModel) -> bool {
    return m.experts > 1u;
}

fn head_dim(m: GpuModel) -> f32 {
    return f32(m.head_dim);
}

fn is_latent_attention(m: GpuModel) -> bool {
    return m.kv_lora_rank > 0u;
}

fn qk_head_dim(m: GpuModel) -> f32 {
    if is_latent_attention(m) {
        return f32(m.head_dim + m.qk_rope_head_dim);
    }
    return f32(m.head_dim);
}

fn value_head_dim(m: GpuModel) -> f32 {
    if is_latent_attention(m) {
        return f32(m.v_head_dim);
    }
    return f32(m.head_dim);
}

fn sliding_window_share(m: GpuModel) -> f32 {
    if m.sliding_window > 0u && m.sliding_window < m.seq_len {
        return f32(min(m.sliding_window_layers, m.layers)) / f32(m.layers);
    }
    return 0.0;
}

fn moe_layers(m: GpuModel) -> u32 {
    if is_moe(m) {
        return m.layers - min(m.dense_layers, m.layers);
    }
    return 0u;
}

fn dense_ffn_layers(m: GpuModel) -> u32 {
    return m.layers - moe_layers(m);
}

fn expert_data_parallel(l: Layout) -> f32 {
    return f32(l.tp) * f32(l.dp) * f32(l.cp) / (f32(l.etp) * f32(l.ep));
}

fn accelerators(l: Layout) -> f32 {
    return f32(l.tp) * f32(l.pp) * f32(l.dp) * f32(l.cp);
}

fn microbatches(l: Layout, t: Training) -> u32 {
    return udiv(t.global_batch, l.dp * l.microbatch);
}

fn peak(hw: GpuAccelerator, dtype: u32) -> f32 {
    switch dtype {
        case 0u: {
            return hw.peak_fp16;
        }
        case 1u: {
            return hw.peak_bf16;
        }
        case 2u: {
            return hw.peak_fp8;
        }
        default: {
            return hw.peak_fp4;
        }
    }
}

// Unsigned division and remainder. Below 2^24 both operands are exact in f32, whose division
// is fast where integer division is not (SIMD CPUs scalarise it, GPUs emulate it); one
// correction step makes the quotient exact. Above, integer division.
fn udiv(a: u32, b: u32) -> u32 {
    if a >= 16777216u {
        return a / b;
    }
    var q = u32(floor(f32(a) / f32(b)));
    if q * b > a {
        q -= 1u;
    } else if (q + 1u) * b <= a {
        q += 1u;
    }
    return q;
}

fn urem(a: u32, b: u32) -> u32 {
    return a - udiv(a, b) * b;
}

fn div_ceil(a: u32, b: u32) -> u32 {
    return udiv(a + b - 1u, b);
}

// Twin of interleave_fits_layers: no interleave, or pp >= 2 stages of interleave virtual
// stages holding a layer each.
fn interleave_fits_layers(m: GpuModel, l: Layout) -> bool {
    return l.interleave <= 1u || (l.pp >= 2u && f32(m.layers) >= f32(l.pp) * f32(l.interleave));
}

// Twin of check_layout: 0 when the layout is fine, else the LAYOUT_* code of the rule it breaks
// (LAYOUT_SITES is check_placement's).
fn check_layout(m: GpuModel, t: Training, l: Layout) -> u32 {
    let tp = l.tp;
    if urem(m.heads, tp) != 0u {
        return LAYOUT_TP_HEADS;
    }
    if urem(m.kv_heads, tp) != 0u && urem(tp, m.kv_heads) != 0u {
        return LAYOUT_TP_KV_HEADS;
    }
    if urem(m.ffn, tp) != 0u || (is_moe(m) && urem(m.expert_ffn, tp) != 0u) {
        return LAYOUT_TP_FFN;
    }
    if l.pp > m.layers {
        return LAYOUT_PP_LAYERS;
    }
    // dp * microbatch may pass 2^32: compare through a division first.
    if l.microbatch == 0u || l.dp > t.global_batch || l.microbatch > t.global_batch / l.dp {
        return LAYOUT_BATCH;
    }
    let dp_mb = l.dp * l.microbatch;
    if urem(t.global_batch, dp_mb) != 0u {
        return LAYOUT_BATCH;
    }
    if l.interleave > 1u {
        let mbs = udiv(t.global_batch, dp_mb);
        if !interleave_fits_layers(m, l) || urem(mbs, l.pp) != 0u {
            return LAYOUT_INTERLEAVE;
        }
    }
    if l.cp > 1u && urem(m.seq_len, 2u * l.cp) != 0u {
        return LAYOUT_CP_SEQ;
    }
    // tp * dp * cp divides the 32-bit count, so it fits in 32 bits.
    let folded = l.tp * l.dp * l.cp;
    if l.etp == 0u || urem(l.tp, l.etp) != 0u
        || (l.ep > 1u && (!is_moe(m) || urem(m.experts, l.ep) != 0u || urem(folded, l.ep * l.etp) != 0u)) {
        return LAYOUT_EP;
    }
    if l.zero > 3u {
        return LAYOUT_ZERO;
    }
    if l.recompute_layers > 0u && l.recompute != RECOMPUTE_FULL {
        return LAYOUT_RECOMPUTE_LAYERS;
    }
    return 0u;
}

fn sites(hw: GpuAccelerator, accs: f32) -> f32 {
    return max(ceil(accs / hw.site_size), 1.0);
}

// Twin of check_placement: 0 when the layout's model replicas fit the sites, 10 (Sites) when not.
fn check_placement(hw: GpuAccelerator, l: Layout) -> u32 {
    let count = accelerators(l);
    if count <= hw.site_size {
        return 0u;
    }
    let model_parallel = f32(l.tp) * f32(l.cp) * f32(l.pp);
    let n = sites(hw, count);
    let dp = f32(l.dp);
    if dp - n * floor(dp / n) != 0.0 || model_parallel > hw.site_size {
        return LAYOUT_SITES;
    }
    return 0u;
}
