// Twin: src/model/step.rs. Per-layer costs, the pipeline schedule, data parallelism (stage.wgsl
// adds them up).

struct LayerCosts {
    forward_s: f32,
    backward_s: f32,
    recompute_s: f32,
    tp_comm_s: f32,
    cp_comm_s: f32,
    host_s: f32,
}

fn layer_costs_total_s(c: LayerCosts) -> f32 {
    return c.forward_s + c.backward_s + c.recompute_s + c.tp_comm_s + c.cp_comm_s + c.host_s;
}

fn layer_costs_scaled(c: LayerCosts, k: f32) -> LayerCosts {
    return LayerCosts(
        c.forward_s * k,
        c.backward_s * k,
        c.recompute_s * k,
        c.tp_comm_s * k,
        c.cp_comm_s * k,
        c.host_s * k,
    );
}

fn layer_costs_plus(a: LayerCosts, b: LayerCosts) -> LayerCosts {
    return LayerCosts(
        a.forward_s + b.forward_s,
        a.backward_s + b.backward_s,
        a.recompute_s + b.recompute_s,
        a.tp_comm_s + b.tp_comm_s,
        a.cp_comm_s + b.cp_comm_s,
        a.host_s + b.host_s,
    );
}

// (forward and backward, recomputed forward) seconds of waiting on the host.
fn host_bound_s(t: Training, hw: GpuAccelerator, forward_s: f32, backward_s: f32, recompute_s: f32) -> vec2<f32> {
    let launch = select(hw.launch_overhead_s, hw.graph_launch_overhead_s, t.stack.cuda_graphs != 0u);
    let issue = t.stack.kernels_per_layer * launch;
    var recompute = 0.0;
    if recompute_s > 0.0 {
        recompute = max(issue - recompute_s, 0.0);
    }
    return vec2<f32>(max(issue - forward_s, 0.0) + max(2.0 * issue - backward_s, 0.0), recompute);
}

fn sync_jitter_s(hw: GpuAccelerator, ranks: f32, compute_s: f32) -> f32 {
    if ranks <= 1.0 {
        return 0.0;
    }
    return compute_s * hw.sync_jitter * sqrt(2.0 * log(ranks));
}

fn attention_core_span_s(s: LocalShape, kv_tokens: f32, fused_fraction: f32, t: Training, hw: GpuAccelerator) -> f32 {
    let q_tokens = s.tokens / s.microbatch;
    if attention_is_fused(t.attention) {
        let flops = attention_core_flops(s, kv_tokens, fused_fraction);
        return attention_time_s(flops, s.qk_head_dim, q_tokens, hw, t.dtype, t.attention);
    }
    let act = activation_dtype(t.dtype);
    let batch = s.microbatch * s.heads;
    let scores = gemm_time_s(q_tokens, s.kv_tokens, s.qk_head_dim, hw, act);
    let values = gemm_time_s(q_tokens, s.v_head_dim, s.kv_tokens, hw, act);
    return batch * (scores + values) + memory_time_s(unfused_softmax_forward_bytes(s), hw);
}

fn attention_core_forward_s(s: LocalShape, t: Training, hw: GpuAccelerator) -> f32 {
    let full = attention_core_span_s(s, s.kv_tokens, causal_fraction(t), t, hw);
    if s.window_share > 0.0 && attention_is_fused(t.attention) {
        let band = windowed_causal_fraction(s.window_tokens, s.kv_tokens);
        let windowed = attention_core_span_s(s, s.window_tokens, band, t, hw);
        return (1.0 - s.window_share) * full + s.window_share * windowed;
    }
    return full;
}

fn attention_projections_s(s: LocalShape, hw: GpuAccelerator, dtype: u32) -> f32 {
    let t = s.tokens;
    let h = s.hidden;
    let output = gemm_time_s(t, h, s.heads * s.v_head_dim, hw, dtype);
    if s.kv_lora_rank > 0.0 {
        let down = gemm_time_s(t, s.q_lora_rank + s.kv_lora_rank + s.rope_head_dim, h, hw, dtype);
        let query_in = select(h, s.q_lora_rank, s.q_lora_rank > 0.0);
        let query_up = gemm_time_s(t, s.heads * s.qk_head_dim, query_in, hw, dtype);
        let kv_up = gemm_time_s(t, s.heads * (s.head_dim + s.v_head_dim), s.kv_lora_rank, hw, dtype);
        return down + query_up + kv_up + output;
    }
    return gemm_time_s(t, qkv_width(s), h, hw, dtype) + output;
}

fn attention_core_backward_s(forward_s: f32, t: Training) -> f32 {
    return select(2.0 * forward_s, FLASH_BACKWARD_RATIO * forward_s, attention_is_fused(t.attention));
}

fn spans_sites(hw: GpuAccelerator, l: Layout) -> bool {
    return accelerators(l) > hw.site_size;
}

fn data_parallel_outermost(t: Training, hw: GpuAccelerator, l: Layout) -> bool {
    return t.stack.data_parallel_outermost != 0u || spans_sites(hw, l);
}

fn data_parallel_stride(t: Training, hw: GpuAccelerator, l: Layout) -> f32 {
    if data_parallel_outermost(t, hw, l) {
        return f32(l.tp) * f32(l.pp);
    }
    return f32(l.tp);
}

fn gathered_weight_bytes(t: Training) -> f32 {
    return min(t.weight_bytes, 2.0);
}

fn zero_shard_group(t: Training, hw: GpuAccelerator, l: Layout) -> f32 {
    let group = f32(l.dp) * f32(l.cp);
    if l.hybrid_shard {
        return members_per_domain(group, data_parallel_stride(t, hw, l), hw.scale_up_domain);
    }
    return group;
}

fn pipeline_stride(t: Training, hw: GpuAccelerator, l: Layout) -> f32 {
    let model_parallel = f32(l.tp) * f32(l.cp);
    if data_parallel_outermost(t, hw, l) {
        return model_parallel;
    }
    return model_parallel * f32(l.dp);
}

fn expert_parallel_stride(t: Training, hw: GpuAccelerator, l: Layout) -> f32 {
    let etp = f32(l.etp);
    if data_parallel_outermost(t, hw, l) {
        return etp * f32(l.pp);
    }
    return etp;
}

fn layer_costs(m: GpuModel, tr: Training, hw: GpuAccelerator, l: Layout, shape: LocalShape, moe: bool) -> LayerCosts {
    let dtype = tr.dtype;
    let act = activation_dtype(dtype);
    let t = shape.tokens;
    let h = shape.hidden;
    let up = ffn_up_width(shape.ffn_kind);

    let attention_gemms = attention_projections_s(shape, hw, dtype);

    var ffn_gemms = 0.0;
    var ffn_width = 0.0;
    var moe_extra_fwd = 0.0;
    if moe {
        let k = f32(m.experts_per_token);
        let local_experts = f32(m.experts) / f32(l.ep);
        let routed_per_token = k * shape.expert_tokens / t;
        let tokens_per_expert = shape.expert_tokens * k / local_experts * tr.moe_imbalance;
        let fe = shape.expert_ffn;
        let routed = local_experts
            * (gemm_time_s(tokens_per_expert, fe * up, h, hw, dtype) + gemm_time_s(tokens_per_expert, h, fe, hw, dtype));
        let shared_width = f32(m.expert_ffn) / f32(l.tp) * f32(m.shared_experts);
        var shared_gemms = 0.0;
        if m.shared_experts > 0u {
            shared_gemms = gemm_time_s(t, shared_width * up, h, hw, dtype) + gemm_time_s(t, h, shared_width, hw, dtype);
        }
        let router = gemm_time_s(t, f32(m.experts), h, hw, act);
        let permute = memory_time_s(moe_permute_forward_bytes(shape, routed_per_token), hw);
        ffn_gemms = routed + shared_gemms;
        ffn_width = fe * routed_per_token + shared_width;
        moe_extra_fwd = router + permute;
    } else {
        let f = shape.ffn;
        ffn_gemms = gemm_time_s(t, f * up, h, hw, dtype) + gemm_time_s(t, h, f, hw, dtype);
        ffn_width = f;
    }

    let gemms = attention_gemms + ffn_gemms;
    let attention_fwd = attention_core_forward_s(shape, tr, hw);
    let attention_bwd = attention_core_backward_s(attention_fwd, tr);
    let elementwise = memory_time_s(elementwise_forward_bytes(shape, dtype, ffn_width), hw);

    let overhead = hw.layer_overhead_s;
    let forward_s = gemms + attention_fwd + elementwise + moe_extra_fwd + overhead;
    let backward_s = 2.0 * (gemms + elementwise + moe_extra_fwd + overhead) + attention_bwd;
    var recompute_compute_s = 0.0;
    if l.recompute == RECOMPUTE_SELECTIVE {
        recompute_compute_s = attention_fwd;
    } else if l.recompute == RECOMPUTE_FULL {
        recompute_compute_s = forward_s;
    }
    let full = l.recompute == RECOMPUTE_FULL;

    let tp = f32(l.tp);
    let tp_bytes = t * h * 2.0;
    let tp_pass = 2.0 * all_reduce_s(hw, tp_bytes, tp, 1.0);
    var tp_forward = tp_pass;
    var tp_backward = tp_pass;
    if tp_overlap_applies(hw, l) {
        tp_forward = tp_overlapped_s(tp_pass, gemms, tp);
        tp_backward = tp_overlapped_s(tp_pass, 2.0 * gemms, tp);
    }

    let cp = f32(l.cp);
    var cp_forward = 0.0;
    var cp_backward = 0.0;
    if l.cp > 1u {
        let chunk_bytes = t * shape.kv_heads * (shape.qk_head_dim + shape.v_head_dim) * 2.0;
        let hop = point_to_point_s(hw, chunk_bytes, cp * tp);
        cp_forward = (cp - 1.0) * max(hop - attention_fwd / cp, 0.0);
        cp_backward = (cp - 1.0) * max(2.0 * hop - attention_bwd / cp, 0.0);
    }

    var recompute_comm_s = 0.0;
    if full {
        recompute_comm_s = tp_forward + cp_forward;
    } else if l.recompute == RECOMPUTE_SELECTIVE {
        recompute_comm_s = cp_forward;
    }
    let host = host_bound_s(tr, hw, forward_s, backward_s, recompute_compute_s);

    return LayerCosts(forward_s, backward_s, recompute_compute_s + recompute_comm_s + host.y, tp_forward + tp_backward,
        cp_forward + cp_backward, host.x);
}

fn expert_all_to_all_bytes(m: GpuModel, t: Training, l: Layout, shape: LocalShape) -> f32 {
    if !is_moe(m) || l.ep <= 1u {
        return 0.0;
    }
    let tokens = select(shape.tokens, shape.tokens / f32(l.tp), l.sequence_parallel);
    return tokens * f32(m.experts_per_token) * shape.hidden * 2.0 * t.moe_imbalance;
}

fn dispatch_copies_share(m: GpuModel, domains: f32) -> f32 {
    let k = f32(m.experts_per_token);
    var reach = domains;
    if m.n_group > 0u && m.topk_group > 0u && m.topk_group < m.n_group {
        reach = clamp(domains * f32(m.topk_group) / f32(m.n_group), 1.0, domains);
    }
    let distinct = reach * (1.0 - pow(1.0 - 1.0 / reach, k));
    return min(distinct / k, 1.0);
}

// (forward, backward) seconds of one MoE layer's all-to-alls for one microbatch.
fn expert_all_to_all_s(bytes: f32, m: GpuModel, t: Training, hw: GpuAccelerator, l: Layout) -> vec2<f32> {
    if bytes <= 0.0 {
        return vec2<f32>(0.0, 0.0);
    }
    let size = f32(l.ep);
    let stride = expert_parallel_stride(t, hw, l);
    var network_share = 1.0;
    if t.stack.dispatch_per_node != 0u {
        let in_domain = members_per_domain(size, stride, hw.scale_up_domain);
        network_share = dispatch_copies_share(m, size / in_domain);
    }
    let combine = expert_all_to_all_transfer_s(hw, bytes, size, stride, network_share);
    var dispatch = combine;
    if t.stack.fp8_dispatch != 0u && t.dtype == DTYPE_FP8 {
        dispatch = expert_all_to_all_transfer_s(hw, bytes * FP8_DISPATCH_BYTES_PER_ELEMENT / 2.0, size, stride, network_share);
    }
    return vec2<f32>(dispatch + combine, 2.0 * combine);
}

const FP8_DISPATCH_BYTES_PER_ELEMENT: f32 = 1.03125;

fn expert_all_to_all_transfer_s(hw: GpuAccelerator, bytes: f32, size: f32, stride: f32, network_share: f32) -> f32 {
    if network_share >= 1.0 {
        return all_to_all_s(hw, bytes, size, stride);
    }
    let inside = all_to_all_s(hw, bytes, min(size, members_per_domain(size, stride, hw.scale_up_domain)), stride);
    let network = all_to_all_s(hw, bytes * network_share, size, stride);
    return max(inside, network);
}

const COMM_SM_FRACTION: f32 = 0.15151515;

fn ep_exposed_s(comm_s: f32, window_s: f32, overlaps: bool) -> f32 {
    if !overlaps {
        return comm_s;
    }
    return max(comm_s - window_s, 0.0) + COMM_SM_FRACTION * min(comm_s, window_s);
}

fn stage_ep_exposed_s(a2a: vec2<f32>, stage: LayerCosts, m: GpuModel, t: Training, l: Layout, layers: f32) -> f32 {
    if a2a.x + a2a.y <= 0.0 {
        return 0.0;
    }
    let share = f32(moe_layers(m)) / f32(m.layers);
    var recomputed = 0.0;
    if l.recompute == RECOMPUTE_FULL {
        recomputed = recomputed_layers(l, layers);
    }
    let comm_s = share * (layers * (a2a.x + a2a.y) + recomputed * a2a.x);
    let window_s = stage.forward_s + stage.backward_s + stage.recompute_s;
    return ep_exposed_s(comm_s, window_s, t.stack.ep_overlap != 0u);
}

fn pipeline_bubbles(t: Training, l: Layout) -> f32 {
    let pp = f32(l.pp);
    if t.stack.dualpipe != 0u && l.pp > 1u {
        return max(pp / 2.0 - 1.0, 0.0) * 2.0 / 3.0;
    }
    return (pp - 1.0) / f32(l.interleave);
}

fn tp_overlap_applies(hw: GpuAccelerator, l: Layout) -> bool {
    return l.tp_overlap && l.sequence_parallel && l.tp > 1u && !crosses_domain(f32(l.tp), 1.0, hw);
}

fn tp_overlapped_s(comm_s: f32, gemm_s: f32, tp: f32) -> f32 {
    return comm_s / tp + max(comm_s - gemm_s, 0.0) * (tp - 1.0) / tp;
}

fn stage_costs(layer: LayerCosts, l: Layout, layers: f32) -> LayerCosts {
    var s = layer_costs_scaled(layer, layers);
    s.recompute_s = layer.recompute_s * recomputed_layers(l, layers);
    return s;
}

// (offloaded layers that keep all their activations, those that keep only their input).
fn offloaded_split(l: Layout, layers: f32) -> vec2<f32> {
    let offloaded = offloaded_layers(l, layers);
    let kept = min(offloaded, layers - recomputed_layers(l, layers));
    return vec2<f32>(kept, offloaded - kept);
}

fn pipeline_send_exposed_s(send_s: f32, chunk_s: f32, t: Training, l: Layout) -> f32 {
    return exposed_s(send_s, chunk_s, t.stack.pp_overlap != 0u && l.interleave > 1u);
}

// (forward, backward) of the output layer for one microbatch on the last stage.
fn logits_costs(m: GpuModel, t: Training, hw: GpuAccelerator, shape: LocalShape) -> vec2<f32> {
    let gemm = gemm_time_s(shape.tokens, shape.vocab, shape.hidden, hw, activation_dtype(t.dtype));
    let loss = memory_time_s(cross_entropy_bytes(shape), hw);
    let heads = 1.0 + f32(m.mtp_layers);
    return vec2<f32>(heads * (gemm + loss * 10.0 / 16.0), heads * (2.0 * gemm + loss * 6.0 / 16.0));
}

// (fullest, last) stage layer counts.
fn stage_layers(m: GpuModel, l: Layout) -> vec2<f32> {
    let layers = m.layers;
    let mtp = m.mtp_layers;
    if l.pp <= 1u {
        return vec2<f32>(f32(layers + mtp), f32(layers + mtp));
    }
    // Whole numbers throughout: exact in both twins, and no float rounding at the boundaries.
    let pp = l.pp;
    let virtual_stages = pp * l.interleave;
    let reserved = select(1u, 0u, urem(layers, virtual_stages) == 0u);
    let units = layers + 2u * reserved;
    let base = units / virtual_stages;
    let remainder = urem(units, virtual_stages);
    let first = l.interleave * base + stage_extra(0u, remainder, pp) - reserved;
    let last = l.interleave * base + stage_extra(pp - 1u, remainder, pp) - reserved + mtp;
    var middle = 0u;
    if pp > 2u {
        middle = l.interleave * base + stage_extra(1u, remainder, pp);
    }
    return vec2<f32>(f32(max(max(first, middle), last)), f32(last));
}

// Layers a device gains from the remainder of stage_layers' split: device d holds virtual
// stages d, d + pp, ..., and those below the remainder take one more layer each.
fn stage_extra(device: u32, remainder: u32, pp: u32) -> u32 {
    if device < remainder {
        return (remainder - device + pp - 1u) / pp;
    }
    return 0u;
}

// (dense, experts) parameters held by one rank of the fullest stage.
fn stage_params(m: GpuModel, t: Training, l: Layout, totals: ModelTotals, fullest: f32) -> vec2<f32> {
    let share = fullest / f32(m.layers);
    let tp = f32(l.tp);
    let embeddings = embedding_params(m);
    let on_stage_embeddings = select(embeddings, f32(m.vocab) * f32(m.hidden), l.pp > 1u);
    let replicated = f32(m.layers) * tp_replicated_params(m);
    let dense = ((totals.dense_params - embeddings - replicated) * share + on_stage_embeddings) / tp + replicated * share;
    let experts = totals.expert_params * share / (f32(l.etp) * f32(l.ep));
    let copies = select(1.0, 2.0, t.stack.dualpipe != 0u && l.pp > 1u);
    return vec2<f32>(dense * copies, experts * copies);
}

// The fullest and last stages' layers and the fullest stage's parameters per rank, once per layout.
struct StageShape {
    fullest_layers: f32,
    last_layers: f32,
    dense_params: f32,
    expert_params: f32,
}

fn stage_shape(m: GpuModel, t: Training, l: Layout, totals: ModelTotals) -> StageShape {
    let stages = stage_layers(m, l);
    let params = stage_params(m, t, l, totals, stages.x);
    return StageShape(stages.x, stages.y, params.x, params.y);
}

struct StepBreakdown {
    forward_s: f32,
    backward_s: f32,
    recompute_s: f32,
    tp_comm_s: f32,
    cp_comm_s: f32,
    ep_comm_s: f32,
    pp_p2p_exposed_s: f32,
    pp_bubble_s: f32,
    dp_comm_s: f32,
    optimizer_s: f32,
    step_overhead_s: f32,
    offload_s: f32,
    host_overhead_s: f32,
    sync_jitter_s: f32,
}

fn step_breakdown_total_s(b: StepBreakdown) -> f32 {
    return b.forward_s + b.backward_s + b.recompute_s + b.tp_comm_s + b.cp_comm_s + b.ep_comm_s + b.pp_p2p_exposed_s
        + b.pp_bubble_s + b.dp_comm_s + b.optimizer_s + b.step_overhead_s + b.offload_s + b.host_overhead_s
        + b.sync_jitter_s;
}

// The closure `collective` of data_parallel_exposed_s.
fn dp_collective(hw: GpuAccelerator, params_dense: f32, params_expert: f32, bytes_per_param: f32, passes: f32,
                 group: f32, stride: f32, expert_group: f32, expert_stride: f32) -> f32 {
    if passes > 1.5 {
        return all_reduce_s(hw, params_dense * bytes_per_param, group, stride)
            + all_reduce_s(hw, params_expert * bytes_per_param, expert_group, expert_stride);
    }
    return all_gather_s(hw, params_dense * bytes_per_param, group, stride)
        + all_gather_s(hw, params_expert * bytes_per_param, expert_group, expert_stride);
}

fn data_parallel_exposed_s(m: GpuModel, t: Training, hw: GpuAccelerator, l: Layout, params: vec2<f32>, mbs: f32,
                           stage_forward_s: f32, stage_backward_s: f32, stage_layer_count: f32) -> f32 {
    let st = t.stack;
    let dense = params.x;
    let experts = params.y;
    let stride = data_parallel_stride(t, hw, l);
    let replicated = f32(l.dp) * f32(l.cp);
    var group = replicated;
    if l.zero >= 1u {
        group = zero_shard_group(t, hw, l);
    }
    let replicas = replicated / group;
    var replica_reduce_s = 0.0;
    if replicas > 1.0 {
        let ar = all_reduce_s(hw, dense / group * t.grad_reduce_bytes, replicas, stride * group);
        replica_reduce_s = exposed_s(ar, stage_backward_s, st.grad_reduce_overlap != 0u);
    }
    let expert_group = expert_data_parallel(l);
    let expert_stride = expert_parallel_stride(t, hw, l) * f32(l.ep);
    let grads = t.grad_reduce_bytes;
    let weights = gathered_weight_bytes(t);
    if l.zero == 0u {
        let ar = dp_collective(hw, dense, experts, grads, 2.0, group, stride, expert_group, expert_stride);
        return exposed_s(ar, stage_backward_s, st.grad_reduce_overlap != 0u) + replica_reduce_s;
    }
    if l.zero == 1u {
        let rs = dp_collective(hw, dense, experts, grads, 1.0, group, stride, expert_group, expert_stride);
        let ag = dp_collective(hw, dense, experts, weights, 1.0, group, stride, expert_group, expert_stride);
        return exposed_s(rs, stage_backward_s, st.grad_reduce_overlap != 0u)
            + exposed_s(ag, stage_forward_s, st.param_gather_overlap != 0u) + replica_reduce_s;
    }
    let layers = max(stage_layer_count, 1.0);
    var gathers = layers;
    if l.zero >= 3u && st.zero3_gathers_per_tensor != 0u {
        gathers = layers * tensors_per_layer(m);
    }
    let ag = gathers * dp_collective(hw, dense / gathers, experts / gathers, weights, 1.0, group, stride, expert_group, expert_stride);
    let rs = layers * dp_collective(hw, dense / layers, experts / layers, grads, 1.0, group, stride, expert_group, expert_stride);
    // The gathers before the forward: prefetched a layer ahead where the stack overlaps them
    // (the first layer's exposed), else waited for.
    let first_layer = ag / layers;
    var forward_gather = ag;
    if st.param_gather_overlap != 0u {
        forward_gather = first_layer + max(ag - stage_forward_s, 0.0);
    }
    if zero_once_per_step(st, l) {
        return forward_gather + exposed_s(rs, stage_backward_s, st.grad_reduce_overlap != 0u) + replica_reduce_s;
    }
    let regathers = l.zero >= 3u && l.recompute == RECOMPUTE_FULL && st.zero3_regathers_for_recompute != 0u;
    var backward_gathers = 0.0;
    if l.zero >= 3u {
        backward_gathers = select(1.0, 2.0, regathers);
    }
    let backward_comm = backward_gathers * ag + rs;
    let per_microbatch = forward_gather + exposed_s(backward_comm, stage_backward_s, st.param_gather_overlap != 0u);
    return per_microbatch * mbs + replica_reduce_s;
}

fn exposed_s(comm_s: f32, window_s: f32, overlaps: bool) -> f32 {
    if overlaps {
        return max(comm_s - window_s, 0.0);
    }
    return comm_s;
}

fn optimizer_s(t: Training, hw: GpuAccelerator, l: Layout, params: vec2<f32>) -> f32 {
    var dense_shard = params.x;
    var expert_shard = params.y;
    if l.zero >= 1u {
        let group = zero_shard_group(t, hw, l);
        dense_shard = params.x / group;
        expert_shard = params.y / expert_data_parallel(l);
    }
    let bytes_per_param = 2.0 * t.optimizer_state_bytes + 2.0 * t.grad_bytes + t.weight_bytes;
    return memory_time_s((dense_shard + expert_shard) * bytes_per_param, hw);
}

fn average_layer_costs(m: GpuModel, t: Training, hw: GpuAccelerator, l: Layout, shape: LocalShape) -> LayerCosts {
    let dense = layer_costs(m, t, hw, l, shape, false);
    if is_moe(m) {
        let moe_share = f32(moe_layers(m)) / f32(m.layers);
        let moe = layer_costs(m, t, hw, l, shape, true);
        return layer_costs_plus(layer_costs_scaled(dense, 1.0 - moe_share), layer_costs_scaled(moe, moe_share));
    }
    return dense;
}
