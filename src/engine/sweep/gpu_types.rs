//! The structs the host shares with the shaders, `#[repr(C)]` twins of the WGSL structs of the
//! same names (checked member by member against `shaders/*.wgsl` by naga in the tests).
//!
//! Everything is 32-bit: counts as `u32`, physics as `f32` (the GPU path is f32; the CPU twin is
//! the f64 model).

use crate::engine::search::{SearchSpace, SpaceAccelerator, N_AXES};
use crate::model::{Dtype, Stack, Training, Transformer};
use bytemuck::{Pod, Zeroable};

/// Twin of `GpuModel` in `shaders/model.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GpuModel {
    pub layers: u32,
    pub hidden: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub ffn: u32,
    pub ffn_kind: u32,
    pub vocab: u32,
    pub seq_len: u32,
    pub experts: u32,
    pub experts_per_token: u32,
    pub expert_ffn: u32,
    pub shared_experts: u32,
    pub dense_layers: u32,
    pub tied_embeddings: u32,
    pub q_lora_rank: u32,
    pub kv_lora_rank: u32,
    pub qk_rope_head_dim: u32,
    pub v_head_dim: u32,
    pub sliding_window: u32,
    pub sliding_window_layers: u32,
    pub mtp_layers: u32,
    pub n_group: u32,
    pub topk_group: u32,
}

/// Twin of `GpuTraining` in `shaders/model.wgsl`: the run's settings that every stack shares,
/// and the sweep's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GpuTraining {
    pub dtype: u32,
    pub global_batch_bound: u32,
    pub tokens: f32,
    pub objective: u32,
    pub moe_imbalance: f32,
    // Pads to 32 bytes.
    pub pad0: u32,
    pub pad1: u32,
    pub pad2: u32,
}

/// Twin of `GpuStack` in `shaders/model.wgsl`: one stack's switches ([`Stack`], booleans as 0/1)
/// and the training settings that follow from it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GpuStack {
    pub tensor_parallel: u32,
    pub pipeline_parallel: u32,
    pub sequence_parallel: u32,
    pub interleave: u32,
    pub uneven_pipeline: u32,
    pub context_parallel: u32,
    pub expert_parallel: u32,
    pub activation_offload: u32,
    pub tp_overlap: u32,
    pub zero_stages: u32,
    pub recompute_modes: u32,
    pub formats: u32,
    pub grad_reduce_overlap: u32,
    pub param_gather_overlap: u32,
    pub zero_sync: u32,
    pub zero3_regathers_for_recompute: u32,
    pub zero3_gathers_per_tensor: u32,
    pub zero3_master_only: u32,
    pub hybrid_shard: u32,
    pub pp_overlap: u32,
    pub data_parallel_outermost: u32,
    pub kernels_per_layer: f32,
    pub cuda_graphs: u32,
    pub attention: u32,
    pub dropout: u32,
    pub weight_bytes: f32,
    pub grad_bytes: f32,
    pub optimizer_state_bytes: f32,
    pub grad_reduce_bytes: f32,
    pub ep_overlap: u32,
    pub dualpipe: u32,
    pub dispatch_per_node: u32,
    pub fp8_dispatch: u32,
    pub lean_activations: u32,
}

/// Twin of `GpuAccelerator` in `shaders/model.wgsl`: `Hardware` and `Economics` in SI units.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GpuAccelerator {
    pub peak_fp16: f32,
    pub peak_bf16: f32,
    pub peak_fp8: f32,
    pub peak_fp4: f32,
    pub hbm_bytes: f32,
    pub hbm_bytes_per_s: f32,
    pub scale_up_bytes_per_s: f32,
    pub scale_up_domain: f32,
    pub scale_up_latency_s: f32,
    pub torus_axis: f32,
    pub torus_dims: f32,
    pub scale_out_bytes_per_s: f32,
    pub scale_out_latency_s: f32,
    pub memory_reserve_bytes: f32,
    pub host_link_bytes_per_s: f32,
    pub host_memory_bytes: f32,
    pub pod_size: f32,
    pub pod_oversubscription: f32,
    pub cross_pod_latency_s: f32,
    pub site_size: f32,
    pub inter_site_bytes_per_s: f32,
    pub inter_site_latency_s: f32,
    pub gemm: f32,
    pub gemm_half_dim: f32,
    pub low_precision_gemm: f32,
    pub attention: f32,
    pub attention_flash2: f32,
    pub attention_flash1: f32,
    pub layer_overhead_s: f32,
    pub step_overhead_s: f32,
    pub launch_overhead_s: f32,
    pub graph_launch_overhead_s: f32,
    pub sync_jitter: f32,
    pub memory: f32,
    pub scale_up: f32,
    pub scale_out: f32,
    pub power_all_in_w: f32,
    pub average_power_fraction: f32,
    pub pue: f32,
    pub electricity_usd_per_mwh: f32,
    pub price_per_hour_usd: f32,
    pub capex_per_accelerator_usd: f32,
    pub failure_rate_per_hour: f32,
    pub checkpoint_bytes_per_s: f32,
    pub restart_s: f32,
    pub pricing: u32,
    pub supports_dtype: u32,
}

/// Twin of `GpuAxes` in `shaders/sweep.wgsl`: each axis's radix and where its values start in
/// the values array.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GpuAxes {
    pub radix: [u32; N_AXES],
    pub offset: [u32; N_AXES],
}

/// Twin of `GpuBatch` in `shaders/sweep.wgsl`: one dispatch's slice of the index space.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GpuBatch {
    /// First index of the batch, as two 32-bit halves.
    pub base_lo: u32,
    pub base_hi: u32,
    /// Layouts in the batch.
    pub count: u32,
    /// Entries each workgroup may report.
    pub k: u32,
    /// Only layouts with an objective below this are reported.
    pub threshold: f32,
    /// First profile (outer) key the batch uses; its profiles start at slot 0.
    pub outer_start: u32,
    /// Profiles the batch needs.
    pub outer_count: u32,
    /// Workgroups along x of the 2-D dispatch.
    pub workgroups_x: u32,
    /// 1: skip layouts whose block's bound cannot beat the threshold (counted as pruned).
    pub prune: u32,
    /// Evaluation of several draws at once (`evaluate_main`): entries per draw (entry `i` is
    /// draw `i / eval_per_draw`); 0 for one draw.
    pub eval_per_draw: u32,
    /// Accelerators in each draw's table (draw `d`'s start at `d * accelerators_per_draw`).
    pub accelerators_per_draw: u32,
}

/// Twin of `GpuHit` in `shaders/sweep.wgsl`: a layout a workgroup reports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct GpuHit {
    pub index_lo: u32,
    pub index_hi: u32,
    pub objective: f32,
    pub pad0: u32,
}

/// Twin of `GpuMetrics` in `shaders/sweep.wgsl`: one layout's numbers, for the parity tests.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct GpuMetrics {
    /// An outcome code (`OUTCOME_*` in `shaders/sweep.wgsl`, [`crate::engine::sweep::gpu::Outcome`]).
    pub outcome: u32,
    pub step_time_s: f32,
    pub tokens_per_s: f32,
    pub mfu: f32,
    pub hfu: f32,
    pub memory_per_accelerator_bytes: f32,
    pub time_to_train_s: f32,
    pub power_mw: f32,
    pub energy_mwh: f32,
    pub cost_usd: f32,
    pub objective: f32,
    pub pad0: u32,
}

/// Twin of `GpuProfile` in `shaders/profile.wgsl` (written and read by the shaders only; its
/// size sizes the buffer).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct GpuProfile {
    pub forward_s: f32,
    pub backward_s: f32,
    pub recompute_s: f32,
    pub tp_comm_s: f32,
    pub cp_comm_s: f32,
    pub host_s: f32,
    pub logits_forward_s: f32,
    pub logits_backward_s: f32,
    pub pipeline_send_bytes: f32,
    pub expert_all_to_all_bytes: f32,
    pub full_activation_bytes: f32,
    pub stored_activation_bytes: f32,
    pub loss_buffer_bytes: f32,
    pub dense_params_total: f32,
    pub expert_params_total: f32,
    pub forward_flops_per_sequence: f32,
    pub attention_forward_flops_per_sequence: f32,
}

pub fn gpu_model(m: &Transformer) -> GpuModel {
    GpuModel {
        layers: m.layers,
        hidden: m.hidden,
        heads: m.heads,
        kv_heads: m.kv_heads,
        head_dim: m.head_dim,
        ffn: m.ffn,
        ffn_kind: m.ffn_kind.code(),
        vocab: m.vocab,
        seq_len: m.seq_len,
        experts: m.experts,
        experts_per_token: m.experts_per_token,
        expert_ffn: m.expert_ffn,
        shared_experts: m.shared_experts,
        dense_layers: m.dense_layers,
        tied_embeddings: m.tied_embeddings as u32,
        q_lora_rank: m.q_lora_rank,
        kv_lora_rank: m.kv_lora_rank,
        qk_rope_head_dim: m.qk_rope_head_dim,
        v_head_dim: m.v_head_dim,
        sliding_window: m.sliding_window,
        sliding_window_layers: m.sliding_window_layers,
        mtp_layers: m.mtp_layers,
        n_group: m.n_group,
        topk_group: m.topk_group,
    }
}

pub fn gpu_training(space: &SearchSpace) -> GpuTraining {
    GpuTraining {
        dtype: space.dtype().code(),
        global_batch_bound: space.global_batch_bound as u32,
        tokens: space.tokens() as f32,
        objective: space.objective.code(),
        moe_imbalance: space.moe_imbalance() as f32,
        pad0: 0,
        pad1: 0,
        pad2: 0,
    }
}

/// A stack of the space as the shaders read it.
pub fn gpu_stack(t: &Training) -> GpuStack {
    let s: &Stack = &t.stack;
    GpuStack {
        tensor_parallel: s.tensor_parallel as u32,
        pipeline_parallel: s.pipeline_parallel as u32,
        sequence_parallel: s.sequence_parallel as u32,
        interleave: s.interleave as u32,
        uneven_pipeline: s.uneven_pipeline as u32,
        context_parallel: s.context_parallel as u32,
        expert_parallel: s.expert_parallel as u32,
        activation_offload: s.activation_offload as u32,
        tp_overlap: s.tp_overlap as u32,
        zero_stages: s.zero_stages,
        recompute_modes: s.recompute_modes,
        formats: s.formats,
        grad_reduce_overlap: s.grad_reduce_overlap as u32,
        param_gather_overlap: s.param_gather_overlap as u32,
        zero_sync: s.zero_sync.code(),
        zero3_regathers_for_recompute: s.zero3_regathers_for_recompute as u32,
        zero3_gathers_per_tensor: s.zero3_gathers_per_tensor as u32,
        zero3_master_only: s.zero3_master_only as u32,
        hybrid_shard: s.hybrid_shard as u32,
        pp_overlap: s.pp_overlap as u32,
        data_parallel_outermost: s.data_parallel_outermost as u32,
        kernels_per_layer: s.kernels_per_layer as f32,
        cuda_graphs: s.cuda_graphs as u32,
        attention: t.attention.code(),
        dropout: t.dropout as u32,
        weight_bytes: t.weight_bytes as f32,
        grad_bytes: t.grad_bytes as f32,
        optimizer_state_bytes: t.optimizer_state_bytes as f32,
        grad_reduce_bytes: t.grad_reduce_bytes as f32,
        ep_overlap: s.ep_overlap as u32,
        dualpipe: s.dualpipe as u32,
        dispatch_per_node: s.dispatch_per_node as u32,
        fp8_dispatch: s.fp8_dispatch as u32,
        lean_activations: s.lean_activations as u32,
    }
}

pub fn gpu_accelerator(a: &SpaceAccelerator) -> GpuAccelerator {
    let hw = &a.hardware;
    let e = &hw.efficiency;
    let econ = &a.economics;
    // A missing price is NaN on the host; the shader sees it as such only under the objective
    // that needs it, which the search refuses.
    GpuAccelerator {
        peak_fp16: hw.peak(Dtype::Fp16) as f32,
        peak_bf16: hw.peak(Dtype::Bf16) as f32,
        peak_fp8: hw.peak(Dtype::Fp8) as f32,
        peak_fp4: hw.peak(Dtype::Fp4) as f32,
        hbm_bytes: hw.hbm_bytes as f32,
        hbm_bytes_per_s: hw.hbm_bytes_per_s as f32,
        scale_up_bytes_per_s: hw.scale_up_bytes_per_s as f32,
        scale_up_domain: hw.scale_up_domain as f32,
        scale_up_latency_s: hw.scale_up_latency_s as f32,
        torus_axis: hw.torus_axis as f32,
        torus_dims: hw.torus_dims as f32,
        scale_out_bytes_per_s: hw.scale_out_bytes_per_s as f32,
        scale_out_latency_s: hw.scale_out_latency_s as f32,
        memory_reserve_bytes: hw.memory_reserve_bytes as f32,
        host_link_bytes_per_s: hw.host_link_bytes_per_s as f32,
        host_memory_bytes: hw.host_memory_bytes as f32,
        pod_size: hw.pod_size as f32,
        pod_oversubscription: hw.pod_oversubscription as f32,
        cross_pod_latency_s: hw.cross_pod_latency_s as f32,
        site_size: hw.site_size as f32,
        inter_site_bytes_per_s: hw.inter_site_bytes_per_s as f32,
        inter_site_latency_s: hw.inter_site_latency_s as f32,
        gemm: e.gemm as f32,
        gemm_half_dim: e.gemm_half_dim as f32,
        low_precision_gemm: e.low_precision_gemm as f32,
        attention: e.attention as f32,
        attention_flash2: e.attention_flash2 as f32,
        attention_flash1: e.attention_flash1 as f32,
        layer_overhead_s: e.layer_overhead_s as f32,
        step_overhead_s: e.step_overhead_s as f32,
        launch_overhead_s: e.launch_overhead_s as f32,
        graph_launch_overhead_s: e.graph_launch_overhead_s as f32,
        sync_jitter: e.sync_jitter as f32,
        memory: e.memory as f32,
        scale_up: e.scale_up as f32,
        scale_out: e.scale_out as f32,
        power_all_in_w: econ.power_all_in_w as f32,
        average_power_fraction: econ.average_power_fraction as f32,
        pue: econ.pue as f32,
        electricity_usd_per_mwh: econ.electricity_usd_per_mwh as f32,
        price_per_hour_usd: econ.price_per_hour_usd as f32,
        capex_per_accelerator_usd: econ.capex_per_accelerator_usd as f32,
        failure_rate_per_hour: econ.failure_rate_per_hour as f32,
        checkpoint_bytes_per_s: econ.checkpoint_bytes_per_s as f32,
        restart_s: econ.restart_s as f32,
        pricing: econ.pricing.code(),
        supports_dtype: a.supports_dtype as u32,
    }
}

/// The axes' radices, offsets, and all their values in one array.
pub fn gpu_axes(space: &SearchSpace) -> (GpuAxes, Vec<u32>) {
    let mut values = vec![];
    let mut axes = GpuAxes {
        radix: [0; N_AXES],
        offset: [0; N_AXES],
    };
    for (i, v) in space.axes.iter().enumerate() {
        axes.radix[i] = v.len() as u32;
        axes.offset[i] = values.len() as u32;
        values.extend_from_slice(v);
    }
    (axes, values)
}
