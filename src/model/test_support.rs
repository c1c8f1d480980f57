//! Fixtures for the model's unit tests: published model shapes and an H100 with round,
//! plausible efficiencies (independent of the fitted catalog, so that the unit tests pin the
//! formulas, not the fit).

use super::run::{Economics, Pricing};
use super::{
    AttentionKernel, Dtype, Efficiency, FfnKind, Hardware, Layout, Recompute, Stack, Training, Transformer,
};

/// GPT-3 175B (Brown et al. 2020, Table 2.1), tied embeddings as in Megatron-LM.
pub fn gpt3_175b() -> Transformer {
    Transformer {
        layers: 96,
        hidden: 12288,
        heads: 96,
        kv_heads: 96,
        head_dim: 128,
        ffn: 49152,
        ffn_kind: FfnKind::Mlp,
        vocab: 51200,
        seq_len: 2048,
        experts: 0,
        experts_per_token: 0,
        expert_ffn: 0,
        shared_experts: 0,
        dense_layers: 0,
        tied_embeddings: true,
        q_lora_rank: 0,
        kv_lora_rank: 0,
        qk_rope_head_dim: 0,
        v_head_dim: 0,
        sliding_window: 0,
        sliding_window_layers: 0,
        mtp_layers: 0,
        n_group: 0,
        topk_group: 0,
    }
}

/// LLaMA 3 8B (Meta model card).
pub fn llama3_8b() -> Transformer {
    Transformer {
        layers: 32,
        hidden: 4096,
        heads: 32,
        kv_heads: 8,
        ffn: 14336,
        ffn_kind: FfnKind::Swiglu,
        vocab: 128256,
        seq_len: 8192,
        tied_embeddings: false,
        ..gpt3_175b()
    }
}

/// Mixtral 8x22B (Mistral AI): 56 layers, 8 experts, top-2.
pub fn mixtral_like() -> Transformer {
    Transformer {
        layers: 56,
        hidden: 6144,
        heads: 48,
        kv_heads: 8,
        head_dim: 128,
        ffn: 16384,
        ffn_kind: FfnKind::Swiglu,
        vocab: 32768,
        seq_len: 4096,
        experts: 8,
        experts_per_token: 2,
        expert_ffn: 16384,
        shared_experts: 0,
        dense_layers: 0,
        tied_embeddings: false,
        // No latent attention, window or MTP module: GPT-3's zeros.
        ..gpt3_175b()
    }
}

pub fn h100() -> Hardware {
    Hardware {
        peak_flops_per_s: [989.4e12, 989.4e12, 1978.9e12, 0.0],
        hbm_bytes: 80e9,
        hbm_bytes_per_s: 3.35e12,
        scale_up_bytes_per_s: 450e9,
        scale_up_domain: 8,
        scale_up_latency_s: 3e-6,
        torus_axis: 0.0,
        torus_dims: 0.0,
        scale_out_bytes_per_s: 50e9,
        scale_out_latency_s: 10e-6,
        pod_size: 1e9,
        pod_oversubscription: 1.0,
        cross_pod_latency_s: 13e-6,
        site_size: 1e30,
        inter_site_bytes_per_s: 50e9 / 16.0,
        inter_site_latency_s: 1e-3,
        memory_reserve_bytes: 3e9,
        host_link_bytes_per_s: 53e9,
        host_memory_bytes: 256e9,
        efficiency: Efficiency {
            gemm: 0.8,
            gemm_half_dim: 100.0,
            low_precision_gemm: 0.85,
            attention: 0.6,
            attention_flash2: 0.35,
            attention_flash1: 0.2,
            layer_overhead_s: 0.0,
            step_overhead_s: 0.0,
            launch_overhead_s: 8e-6,
            graph_launch_overhead_s: 2e-6,
            sync_jitter: 0.0,
            memory: 0.88,
            scale_up: 0.8,
            scale_out: 0.95,
        },
    }
}

pub fn plain_layout() -> Layout {
    Layout {
        tp: 1,
        pp: 1,
        dp: 1,
        cp: 1,
        ep: 1,
        etp: 1,
        microbatch: 1,
        interleave: 1,
        recompute: Recompute::None,
        sequence_parallel: false,
        tp_overlap: false,
        zero: 0,
        recompute_layers: 0,
        offload_layers: 0,
        hybrid_shard: false,
    }
}

pub fn training() -> Training {
    Training {
        global_batch: 64,
        tokens: 1e12,
        dtype: Dtype::Bf16,
        weight_bytes: 2.0,
        grad_bytes: 4.0,
        optimizer_state_bytes: 12.0,
        grad_reduce_bytes: 4.0,
        attention: AttentionKernel::Flash3,
        dropout: false,
        stack: Stack::FASTEST,
        moe_imbalance: 1.0,
    }
}

pub fn economics() -> Economics {
    Economics {
        power_all_in_w: 1275.0,
        average_power_fraction: 0.75,
        pue: 1.2,
        electricity_usd_per_mwh: 80.0,
        price_usd: 30000.0,
        price_per_hour_usd: 2.0,
        capex_per_accelerator_usd: 60000.0,
        failure_rate_per_hour: 0.0,
        checkpoint_bytes_per_s: 1e9,
        restart_s: 600.0,
        pricing: Pricing::Rental,
    }
}
