//! The analytical model of one training step: the specification that the GPU shaders mirror.
//!
//! This module owns the physics. Everything here is plain f64 arithmetic over small `Copy`
//! structs, with no allocation and no I/O, so that `shaders/*.wgsl` can mirror it function for
//! function (same names, same loop structure) and a sweep can evaluate it millions of times.
//! Twin of this file: `shaders/model.wgsl` (types, helpers, `check_layout`).
//!
//! The pieces, each a file with named, unit-tested functions:
//! - [`flops`]: floating-point operations and bytes moved per op of one transformer layer.
//! - [`compute`]: the roofline that turns an op into seconds on one accelerator.
//! - [`comm`]: collectives (ring, hierarchical, all-to-all, point-to-point) on the tier they land on.
//! - [`memory`]: bytes per accelerator, by kind.
//! - [`step`]: the composition: per-layer costs, the pipeline schedule, data parallelism, the step.
//! - [`run`]: the whole run: tokens/s, MFU, time to train, energy, cost.
//!
//! Units are in names: `_s` seconds, `_bytes`, `_flops`, `_per_s`.

pub mod comm;
pub mod compute;
pub mod flops;
pub mod memory;
pub mod profile;
pub mod run;
pub mod stage;
pub mod step;

use serde::{Deserialize, Serialize};

/// Feed-forward block of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FfnKind {
    /// Two matrices, `h -> ffn -> h`, with GeLU (GPT-2/3, MPT, Nemotron).
    Mlp = 0,
    /// Three matrices (gate, up, down) with SiLU gating (LLaMA, Mixtral, DeepSeek).
    Swiglu = 1,
}

impl FfnKind {
    pub const ALL: [FfnKind; 2] = [FfnKind::Mlp, FfnKind::Swiglu];
    pub fn name(self) -> &'static str {
        match self {
            FfnKind::Mlp => "mlp",
            FfnKind::Swiglu => "swiglu",
        }
    }
    /// The code the shaders use (`FFN_*` in shaders/model.wgsl).
    pub fn code(self) -> u32 {
        self as u32
    }
    /// Weight matrices of size `h x ffn` in one feed-forward block.
    pub fn matrices(self) -> f64 {
        match self {
            FfnKind::Mlp => 2.0,
            FfnKind::Swiglu => 3.0,
        }
    }
    /// Columns produced by the first projection per unit of `ffn` (SwiGLU computes gate and up).
    pub fn up_width(self) -> f64 {
        match self {
            FfnKind::Mlp => 1.0,
            FfnKind::Swiglu => 2.0,
        }
    }
}

/// Number format of the matrix multiplications of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Fp16 = 0,
    Bf16 = 1,
    /// Linear layers in FP8 (Transformer Engine style); attention, norms and the optimizer stay in
    /// 16/32-bit.
    Fp8 = 2,
    /// Linear layers in FP4 (NVFP4/MXFP4), same treatment as FP8.
    Fp4 = 3,
}

impl Dtype {
    pub const ALL: [Dtype; 4] = [Dtype::Fp16, Dtype::Bf16, Dtype::Fp8, Dtype::Fp4];

    /// The code the shaders use (and the index of [`Hardware::peak_flops_per_s`]).
    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::Fp16 => "fp16",
            Dtype::Bf16 => "bf16",
            Dtype::Fp8 => "fp8",
            Dtype::Fp4 => "fp4",
        }
    }

    /// Bytes of one element of a linear layer's input as the GEMM reads it.
    pub fn gemm_input_bytes(self) -> f64 {
        match self {
            Dtype::Fp16 | Dtype::Bf16 => 2.0,
            Dtype::Fp8 => 1.0,
            Dtype::Fp4 => 0.5,
        }
    }

    /// True when linear layers run below 16 bits and need casts (and scaling) around them.
    pub fn is_low_precision(self) -> bool {
        matches!(self, Dtype::Fp8 | Dtype::Fp4)
    }

    /// The 16-bit format that attention and element-wise ops use in a run of this dtype.
    pub fn activation_dtype(self) -> Dtype {
        match self {
            Dtype::Fp16 => Dtype::Fp16,
            _ => Dtype::Bf16,
        }
    }
}

/// Activation recomputation (Korthikanti et al. 2022).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Recompute {
    None = 0,
    /// Recompute only the attention core (scores, softmax, dropout, values) in the backward pass.
    Selective = 1,
    /// Store only each layer's input; recompute the whole layer forward in the backward pass.
    Full = 2,
}

impl Recompute {
    pub const ALL: [Recompute; 3] = [Recompute::None, Recompute::Selective, Recompute::Full];
    /// The code the shaders use.
    pub fn code(self) -> u32 {
        self as u32
    }
    pub fn name(self) -> &'static str {
        match self {
            Recompute::None => "none",
            Recompute::Selective => "selective",
            Recompute::Full => "full",
        }
    }
}

/// The attention kernel of a run: how the attention core is computed (the stack's choice; a
/// scenario may override it with `[training] attention_kernel`). GPU codes are the discriminants
/// (`ATTENTION_*` in `shaders/model.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttentionKernel {
    /// The score matrix is materialised: two batched GEMMs per (sequence, head) around a
    /// memory-bound masked softmax and dropout (Megatron-LM before FlashAttention).
    Unfused = 0,
    /// FlashAttention (-1) class kernels (Dao et al. 2022) and the Triton tutorial kernel: tiled
    /// and fused, but with the sequence split only across heads and batch and split-K warps
    /// ("25-40 % of the theoretical maximum FLOPs/s" on A100, Dao 2023 Sec. 1).
    Flash1 = 1,
    /// FlashAttention-2 class kernels (Dao 2023): tiled, fused, causal blocks skipped, scores
    /// recomputed in the backward pass.
    Flash2 = 2,
    /// FlashAttention-3 class kernels (Shah et al. 2024; cuDNN fused attention, Transformer
    /// Engine's default on Hopper and later): the same algorithm with asynchronous,
    /// warp-specialised tensor-core pipelines. Where the silicon has no such kernel its family
    /// gives it the FlashAttention-2 efficiency.
    Flash3 = 3,
}

impl AttentionKernel {
    pub const ALL: [AttentionKernel; 4] = [
        AttentionKernel::Unfused,
        AttentionKernel::Flash1,
        AttentionKernel::Flash2,
        AttentionKernel::Flash3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttentionKernel::Unfused => "unfused",
            AttentionKernel::Flash1 => "flash1",
            AttentionKernel::Flash2 => "flash2",
            AttentionKernel::Flash3 => "flash3",
        }
    }

    /// True for the tiled kernels that never store the score matrix.
    pub fn is_fused(self) -> bool {
        self != AttentionKernel::Unfused
    }

    /// The code the shaders use.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// How ZeRO-2/3 (FSDP) synchronise under gradient accumulation. GPU codes are the discriminants
/// (`ZERO_SYNC_*` in `shaders/model.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ZeroSync {
    /// Gather the parameters and reduce-scatter the gradients for every microbatch (FSDP and
    /// DeepSpeed under plain gradient accumulation).
    PerMicrobatch = 0,
    /// Keep the gathered parameters across microbatches and reduce the gradients on the last one
    /// only (FSDP with `reshard_after_forward = False` and gradient sync off in between; Llama 3).
    PerStep = 1,
    /// Per step under pipeline parallelism, per microbatch without it (torchtitan: PyTorch's
    /// pipeline stages turn gradient sync off between microbatches; its plain accumulation
    /// loop does not).
    PerStepWhenPipelined = 2,
}

impl ZeroSync {
    /// The code the shaders use.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// What a software stack can do and how it runs a step: the switches of
/// `catalog/stacks.toml` that the model reads (the catalog keeps the rest: names, defaults,
/// sources). Capabilities bound the layouts a stack can run ([`check_stack`]); the run switches
/// decide what overlaps what.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stack {
    pub tensor_parallel: bool,
    pub pipeline_parallel: bool,
    pub sequence_parallel: bool,
    /// Interleaved 1F1B (virtual pipeline stages).
    pub interleave: bool,
    /// Pipelines whose stages hold different numbers of layers (layers not divisible by the
    /// virtual stages).
    pub uneven_pipeline: bool,
    pub context_parallel: bool,
    pub expert_parallel: bool,
    /// Activations can be offloaded to host memory.
    pub activation_offload: bool,
    /// Tensor-parallel collectives can be overlapped with the GEMMs they feed (Transformer
    /// Engine's userbuffers, PyTorch's async TP); only inside the scale-up domain.
    pub tp_overlap: bool,
    /// ZeRO stages the stack implements: bit `s` for stage `s`.
    pub zero_stages: u32,
    /// Recomputation modes it implements: bit [`Recompute::code`].
    pub recompute_modes: u32,
    /// Formats its linear layers can run in: bit [`Dtype::code`].
    pub formats: u32,
    /// The data-parallel gradient reduction (ZeRO 0/1) runs bucket by bucket during the last
    /// microbatch's backward rather than after it.
    pub grad_reduce_overlap: bool,
    /// Parameter all-gathers overlap compute: ZeRO-1's gather of the updated weights with the
    /// next step's forward, ZeRO-3's per-layer gathers prefetched a layer ahead.
    pub param_gather_overlap: bool,
    /// How ZeRO-2/3 synchronise under gradient accumulation.
    pub zero_sync: ZeroSync,
    /// ZeRO-3 gathers each layer's parameters again for the recomputed forward (DeepSpeed
    /// releases them after every forward, the recomputed one included).
    pub zero3_regathers_for_recompute: bool,
    /// ZeRO-3 issues one all-gather per parameter tensor, each paying its ring's latency,
    /// instead of one per layer (DeepSpeed before its 2022 batching).
    pub zero3_gathers_per_tensor: bool,
    /// ZeRO-3 keeps each parameter only as its fp32 shard (the optimizer's master copy: FSDP's
    /// flat parameter under mixed precision) and casts the 16-bit copies it gathers from it, so
    /// no 16-bit shard is held between steps.
    pub zero3_master_only: bool,
    /// ZeRO shards over the data-parallel ranks inside one scale-up domain only; the replicas in
    /// other domains all-reduce the sharded gradients once per step (hybrid sharding: MaxText's
    /// `ici_fsdp` with `dcn_data_parallelism`, PyTorch HSDP).
    pub hybrid_shard: bool,
    /// Pipeline sends overlap the next chunk's compute (interleaved 1F1B's `overlap_p2p_comm`).
    pub pp_overlap: bool,
    /// Ranks are ordered tp, cp, pp, dp (data parallelism outermost, as Llama 3) rather than
    /// Megatron-Core's tp, cp, dp, pp.
    pub data_parallel_outermost: bool,
    /// Kernels one transformer layer's forward pass issues (its backward issues twice as many).
    pub kernels_per_layer: f64,
    /// Layers run as captured CUDA graphs (one launch for many kernels).
    pub cuda_graphs: bool,
    /// The expert all-to-all of one microbatch runs while another microbatch computes
    /// (Megatron-Core 0.14's `--overlap-moe-expert-parallel-comm`; DeepSeek's DualPipe).
    pub ep_overlap: bool,
    /// DualPipe (DeepSeek-V3 Sec. 3.2.1): a bidirectional pipeline whose every device holds two
    /// stages (two copies of its share of the parameters), with a smaller bubble.
    pub dualpipe: bool,
    /// The dispatch sends a token once to each scale-up domain that holds its experts and
    /// forwards it inside the domain (DeepSeek-V3 Sec. 3.2.2; DeepEP's internode kernels), rather
    /// than once per expert.
    pub dispatch_per_node: bool,
    /// Under FP8 training the dispatch moves FP8 activations with one fp32 scale per 128
    /// elements (DeepSeek-V3 Sec. 3.3.2); the combine stays 16-bit.
    pub fp8_dispatch: bool,
    /// The backward recomputes the norms and the attention up-projections instead of keeping
    /// their outputs (DeepSeek-V3 Sec. 3.2.3), and FP8 runs keep the SwiGLU input in FP8
    /// (Sec. 3.3.2, "low-precision storage"). The recomputation's FLOPs (a few percent of the
    /// attention projections) are not priced.
    pub lean_activations: bool,
}

impl Stack {
    /// A stack that can do everything and overlaps all it can: the model's unit-test fixture and
    /// what the sweep's `--assume fastest` exploration credits a run with.
    pub const FASTEST: Stack = Stack {
        tensor_parallel: true,
        pipeline_parallel: true,
        sequence_parallel: true,
        interleave: true,
        uneven_pipeline: true,
        context_parallel: true,
        expert_parallel: true,
        activation_offload: true,
        tp_overlap: true,
        zero_stages: 0b1111,
        recompute_modes: 0b111,
        formats: 0b1111,
        grad_reduce_overlap: true,
        param_gather_overlap: true,
        zero_sync: ZeroSync::PerMicrobatch,
        zero3_regathers_for_recompute: false,
        zero3_gathers_per_tensor: false,
        zero3_master_only: false,
        hybrid_shard: false,
        pp_overlap: true,
        data_parallel_outermost: false,
        kernels_per_layer: 20.0,
        cuda_graphs: false,
        ep_overlap: true,
        dualpipe: false,
        dispatch_per_node: true,
        fp8_dispatch: true,
        lean_activations: false,
    };

    /// True when ZeRO-2/3 gather the parameters once per step and reduce the gradients on the
    /// last microbatch only, for this layout.
    pub fn zero_once_per_step(&self, layout: &Layout) -> bool {
        match self.zero_sync {
            ZeroSync::PerMicrobatch => false,
            ZeroSync::PerStep => true,
            ZeroSync::PerStepWhenPipelined => layout.pp > 1,
        }
    }

    pub fn supports_zero(&self, zero: u32) -> bool {
        zero < 32 && self.zero_stages & (1 << zero) != 0
    }
    pub fn supports_recompute(&self, r: Recompute) -> bool {
        self.recompute_modes & (1 << r.code()) != 0
    }
    pub fn supports_format(&self, d: Dtype) -> bool {
        self.formats & (1 << d.code()) != 0
    }
}

/// Why a stack cannot run a layout. GPU codes are the discriminants (`STACK_*` in
/// `shaders/model.wgsl`; 0 there means no violation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackViolation {
    TensorParallel = 1,
    PipelineParallel = 2,
    SequenceParallel = 3,
    TpOverlap = 4,
    Interleave = 5,
    ContextParallel = 6,
    ExpertParallel = 7,
    Zero = 8,
    Recompute = 9,
    Format = 10,
    UnevenPipeline = 11,
    Offload = 12,
    HybridShard = 13,
}

impl StackViolation {
    /// The layout key the stack cannot honour, and what it lacks.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            StackViolation::TensorParallel => ("tp", "has no tensor parallelism (tp must be 1)"),
            StackViolation::PipelineParallel => ("pp", "has no pipeline parallelism (pp must be 1)"),
            StackViolation::SequenceParallel => ("sequence_parallel", "has no sequence parallelism"),
            StackViolation::TpOverlap => (
                "tp_overlap",
                "cannot overlap tensor-parallel communication with compute",
            ),
            StackViolation::Interleave => (
                "interleave",
                "has no interleaved pipeline schedule (interleave must be 1)",
            ),
            StackViolation::ContextParallel => ("cp", "has no context parallelism (cp must be 1)"),
            StackViolation::ExpertParallel => ("ep", "has no expert parallelism (ep must be 1)"),
            StackViolation::Zero => ("zero", "does not implement this ZeRO stage"),
            StackViolation::Recompute => ("recompute", "does not implement this recomputation mode"),
            StackViolation::Format => ("dtype", "cannot train in this format"),
            StackViolation::Offload => ("offload_layers", "cannot offload activations to host memory"),
            StackViolation::HybridShard => (
                "hybrid_shard",
                "has no hybrid sharding (ZeRO over the whole data-parallel group only)",
            ),
            StackViolation::UnevenPipeline => (
                "pp",
                "needs the layers to divide evenly over the pipeline's virtual stages",
            ),
        }
    }

    /// The code the shaders use.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// The first thing `layout` of `model` (in `dtype`) asks of `stack` that it cannot do, if any.
pub fn check_stack(
    stack: &Stack,
    model: &Transformer,
    layout: &Layout,
    dtype: Dtype,
) -> Option<StackViolation> {
    if layout.tp > 1 && !stack.tensor_parallel {
        return Some(StackViolation::TensorParallel);
    }
    if layout.pp > 1 && !stack.pipeline_parallel {
        return Some(StackViolation::PipelineParallel);
    }
    if layout.sequence_parallel && !stack.sequence_parallel {
        return Some(StackViolation::SequenceParallel);
    }
    if layout.tp_overlap && !stack.tp_overlap {
        return Some(StackViolation::TpOverlap);
    }
    if layout.interleave > 1 && !stack.interleave {
        return Some(StackViolation::Interleave);
    }
    if layout.cp > 1 && !stack.context_parallel {
        return Some(StackViolation::ContextParallel);
    }
    if layout.ep > 1 && !stack.expert_parallel {
        return Some(StackViolation::ExpertParallel);
    }
    if !stack.supports_zero(layout.zero) {
        return Some(StackViolation::Zero);
    }
    if !stack.supports_recompute(layout.recompute) {
        return Some(StackViolation::Recompute);
    }
    if !stack.supports_format(dtype) {
        return Some(StackViolation::Format);
    }
    if layout.pp > 1
        && !stack.uneven_pipeline
        && !u64::from(model.layers).is_multiple_of(u64::from(layout.pp) * u64::from(layout.interleave))
    {
        return Some(StackViolation::UnevenPipeline);
    }
    if layout.offload_layers > 0 && !stack.activation_offload {
        return Some(StackViolation::Offload);
    }
    if layout.hybrid_shard && !stack.hybrid_shard {
        return Some(StackViolation::HybridShard);
    }
    None
}

/// The most layers (multi-token-prediction layers included) a model may have: the stage split
/// adds reserved and MTP layers to the count in 32-bit integers in both twins, and the deepest
/// published models have about a hundred.
pub const MAX_LAYERS: u32 = 1_000_000;

/// Whether `layers` and `mtp_layers` together pass [`MAX_LAYERS`] (the scenario and the
/// catalog refuse such a model).
pub fn too_many_layers(layers: u32, mtp_layers: u32) -> bool {
    layers.saturating_add(mtp_layers) > MAX_LAYERS
}

/// The transformer being trained. Counts are exact integers; the model works in f64.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Transformer {
    pub layers: u32,
    pub hidden: u32,
    pub heads: u32,
    /// Key/value heads (grouped-query attention); equal to `heads` for multi-head attention.
    pub kv_heads: u32,
    /// Width of one attention head (usually `hidden / heads`); under multi-head latent attention
    /// the position-free part of a query/key head (`qk_nope_head_dim`).
    pub head_dim: u32,
    /// Feed-forward width of a dense layer.
    pub ffn: u32,
    pub ffn_kind: FfnKind,
    pub vocab: u32,
    pub seq_len: u32,
    /// Routed experts per MoE layer; 0 for a dense model.
    pub experts: u32,
    /// Routed experts each token visits (top-k).
    pub experts_per_token: u32,
    /// Feed-forward width of one expert.
    pub expert_ffn: u32,
    /// Experts every token visits in each MoE layer (DeepSeek's shared experts).
    pub shared_experts: u32,
    /// Leading layers that stay dense in an MoE model.
    pub dense_layers: u32,
    /// Input embedding and output projection share one matrix.
    pub tied_embeddings: bool,
    /// Multi-head latent attention (DeepSeek-V2/V3; names of the Hugging Face configs): the rank
    /// of the query's low-rank projection (0: a full-rank query projection), the rank of the
    /// shared key/value latent (0: not latent attention), the width of the decoupled rotary part
    /// of each query/key head, and the width of a value head.
    pub q_lora_rank: u32,
    pub kv_lora_rank: u32,
    pub qk_rope_head_dim: u32,
    pub v_head_dim: u32,
    /// Sliding-window attention: the window in tokens (0: none) and how many layers use it.
    pub sliding_window: u32,
    pub sliding_window_layers: u32,
    /// Multi-token prediction modules (DeepSeek-V3 Sec. 2.2): each one more transformer layer,
    /// a `2h x h` projection and another pass of the shared output head, on the last stage.
    pub mtp_layers: u32,
    /// Group-limited routing (DeepSeek-V3 Sec. 2.1.2, "node-limited routing"; the Hugging Face
    /// config's `n_group` and `topk_group`): the routed experts form `n_group` groups and a
    /// token's experts come from at most `topk_group` of them. 0 and 0: no limit.
    pub n_group: u32,
    pub topk_group: u32,
}

impl Transformer {
    pub fn is_moe(&self) -> bool {
        self.experts > 1
    }
    pub fn head_dim(&self) -> f64 {
        self.head_dim as f64
    }
    /// True for multi-head latent attention.
    pub fn is_latent_attention(&self) -> bool {
        self.kv_lora_rank > 0
    }
    /// Width of a query/key head: the scores' inner dimension (192 for DeepSeek-V3's MLA).
    pub fn qk_head_dim(&self) -> f64 {
        if self.is_latent_attention() {
            (self.head_dim + self.qk_rope_head_dim) as f64
        } else {
            self.head_dim as f64
        }
    }
    /// Width of a value head (the attention output per head).
    pub fn value_head_dim(&self) -> f64 {
        if self.is_latent_attention() {
            self.v_head_dim as f64
        } else {
            self.head_dim as f64
        }
    }
    /// Share of the layers whose attention is windowed.
    pub fn sliding_window_share(&self) -> f64 {
        if self.sliding_window > 0 && self.sliding_window < self.seq_len {
            self.sliding_window_layers.min(self.layers) as f64 / self.layers as f64
        } else {
            0.0
        }
    }
    /// Layers with a routed-expert feed-forward block.
    pub fn moe_layers(&self) -> u32 {
        if self.is_moe() {
            self.layers - self.dense_layers.min(self.layers)
        } else {
            0
        }
    }
    /// Layers with a dense feed-forward block.
    pub fn dense_ffn_layers(&self) -> u32 {
        self.layers - self.moe_layers()
    }
    /// Share of the layers with routed experts.
    pub fn moe_layer_share(&self) -> f64 {
        self.moe_layers() as f64 / self.layers as f64
    }
}

/// What the step trains with, besides the layout.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Training {
    /// Sequences per optimizer step.
    pub global_batch: u32,
    /// Tokens of the whole run (for time to train, energy and cost).
    pub tokens: f64,
    pub dtype: Dtype,
    /// Bytes per parameter of the working weights (16-bit copy).
    pub weight_bytes: f64,
    /// Bytes per parameter of the gradient buffer (fp32 main grads in Megatron and FSDP DEFAULT).
    pub grad_bytes: f64,
    /// Bytes per parameter of the optimizer state (Adam: fp32 master, m and v).
    pub optimizer_state_bytes: f64,
    /// Bytes per parameter of the gradient reduction on the wire.
    pub grad_reduce_bytes: f64,
    /// The attention kernel. Fused kernels skip causal blocks and never store the score matrix.
    pub attention: AttentionKernel,
    /// Dropout layers present (1-byte masks are stored for backward).
    pub dropout: bool,
    /// The software stack's switches (what overlaps what, the rank order).
    pub stack: Stack,
    /// Tokens the busiest expert-parallel rank processes in an MoE layer over the mean (1:
    /// balanced, as the benchmark recipes force with a capacity factor of 1 and padding; with
    /// token dropping at most the capacity factor; dropless runs more).
    pub moe_imbalance: f64,
}

/// The parallel layout of one run. `tp * pp * dp * cp` is the accelerator count. The expert
/// layers fold their own layout over the same `tp * dp * cp` ranks (Megatron-Core's "parallel
/// folding", Liu et al. 2025, arXiv 2504.14960): expert tensor parallelism `etp`, expert
/// parallelism `ep`, and expert data parallelism for the rest, ranks ordered etp, ep, edp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Layout {
    pub tp: u32,
    pub pp: u32,
    pub dp: u32,
    pub cp: u32,
    pub ep: u32,
    /// Expert tensor parallelism: the ranks that split each expert's width (Megatron-Core's
    /// `--expert-tensor-parallel-size`, which defaults to tp). A divisor of tp.
    pub etp: u32,
    /// Sequences per microbatch.
    pub microbatch: u32,
    /// Virtual pipeline stages per device (interleaved 1F1B); 1 is plain 1F1B.
    pub interleave: u32,
    pub recompute: Recompute,
    pub sequence_parallel: bool,
    /// Tensor-parallel collectives split into chunks and overlapped with the GEMMs they feed
    /// (Transformer Engine's userbuffers; needs sequence parallelism).
    pub tp_overlap: bool,
    /// ZeRO stage: 0 none, 1 optimizer state, 2 + gradients, 3 + parameters (FSDP).
    pub zero: u32,
    /// With full recomputation, how many layers of each pipeline stage recompute (Megatron's
    /// `--recompute-method block --recompute-num-layers`); 0 for every layer.
    pub recompute_layers: u32,
    /// Layers of each pipeline stage whose saved activations go to host memory during the
    /// forward and come back for the backward (Megatron-Core's `cpu_offloading_num_layers`).
    pub offload_layers: u32,
    /// ZeRO shards over the data-parallel ranks inside one scale-up domain only, and the domains'
    /// replicas all-reduce the sharded gradients (hybrid sharding; where the stack has it).
    pub hybrid_shard: bool,
}

impl Layout {
    pub fn accelerators(&self) -> u64 {
        self.tp as u64 * self.pp as u64 * self.dp as u64 * self.cp as u64
    }
    /// Expert data parallelism: the ranks of `tp * dp * cp` that hold the same experts.
    pub fn expert_data_parallel(&self) -> f64 {
        self.tp as f64 * self.dp as f64 * self.cp as f64 / (self.etp as f64 * self.ep as f64)
    }
    /// Layers of a stage of `stage_layers` that recompute their forward.
    pub fn recomputed_layers(&self, stage_layers: f64) -> f64 {
        match self.recompute {
            Recompute::Full if self.recompute_layers > 0 => (self.recompute_layers as f64).min(stage_layers),
            Recompute::None => 0.0,
            _ => stage_layers,
        }
    }
    /// Layers of a stage of `stage_layers` whose activations are offloaded.
    pub fn offloaded_layers(&self, stage_layers: f64) -> f64 {
        (self.offload_layers as f64).min(stage_layers)
    }
    /// Microbatches per step on each pipeline.
    pub fn microbatches(&self, training: &Training) -> u32 {
        (training.global_batch as u64 / (self.dp as u64 * self.microbatch as u64).max(1)) as u32
    }
}

/// Achieved fractions of the datasheet rates. Fitted once per accelerator family
/// (see `clustersweep fit`), never per run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Efficiency {
    /// Fraction of dense 16-bit peak that a large GEMM reaches.
    pub gemm: f64,
    /// GEMM dimension (elements) at which that dimension alone halves the efficiency.
    pub gemm_half_dim: f64,
    /// Fraction of the 8/4-bit peak that a large low-precision GEMM reaches, relative to `gemm`.
    pub low_precision_gemm: f64,
    /// Fraction of 16-bit peak that FlashAttention-3 class fused attention reaches (at large head
    /// dim and sequence).
    pub attention: f64,
    /// The same for FlashAttention-2 class kernels.
    pub attention_flash2: f64,
    /// The same for FlashAttention-1 class kernels.
    pub attention_flash1: f64,
    /// Fixed seconds per layer and microbatch of each pass (forward; backward counts twice):
    /// kernel launches, synchronisation and framework hooks that no roofline sees.
    pub layer_overhead_s: f64,
    /// Fixed seconds per optimizer step outside the layers: gradient clipping's global norm,
    /// the optimizer's kernel launches, loss and metric synchronisation, the data loader's hand-off.
    pub step_overhead_s: f64,
    /// Host seconds to issue one kernel eagerly, and inside a CUDA graph: a layer cannot run
    /// faster than its kernels are issued.
    pub launch_overhead_s: f64,
    pub graph_launch_overhead_s: f64,
    /// Relative spread of a rank's step time (stragglers, clock and thermal variation): a
    /// synchronous step over N ranks waits `sync_jitter * sqrt(2 ln N)` of its compute longer.
    pub sync_jitter: f64,
    /// Fraction of HBM bandwidth that streaming element-wise kernels reach.
    pub memory: f64,
    /// Fraction of the scale-up link rate that collectives reach (bus bandwidth).
    pub scale_up: f64,
    /// Fraction of the scale-out NIC rate that collectives reach.
    pub scale_out: f64,
}

/// One accelerator, resolved to SI units, with its efficiency family.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Hardware {
    /// Dense peak FLOP/s indexed like [`Dtype::ALL`]; 0 where the format is not supported.
    pub peak_flops_per_s: [f64; 4],
    pub hbm_bytes: f64,
    pub hbm_bytes_per_s: f64,
    /// Per-accelerator scale-up bandwidth, one direction.
    pub scale_up_bytes_per_s: f64,
    /// Accelerators in one scale-up domain (NVLink island, TPU slice, ...).
    pub scale_up_domain: u32,
    pub scale_up_latency_s: f64,
    /// A domain wired as a torus (TPU ICI) rather than through switches: chips per torus axis
    /// (0 for a switched domain) and the torus's dimensions. `scale_up_bytes_per_s` is then a
    /// bidirectional ring's bandwidth along one axis.
    pub torus_axis: f64,
    pub torus_dims: f64,
    /// Per-accelerator scale-out (NIC) bandwidth, one direction.
    pub scale_out_bytes_per_s: f64,
    pub scale_out_latency_s: f64,
    /// Accelerators under one full-bisection pod of the scale-out fabric.
    pub pod_size: f64,
    /// Oversubscription of the fabric above a pod (1 = full bisection everywhere).
    pub pod_oversubscription: f64,
    /// Latency of a step across pods: the scale-out latency plus the extra switch hops and fibre
    /// of the aggregation layer.
    pub cross_pod_latency_s: f64,
    /// Accelerators one site (campus) can power; a larger cluster spans several sites.
    pub site_size: f64,
    /// Per-accelerator share of the inter-site bandwidth, one direction.
    pub inter_site_bytes_per_s: f64,
    pub inter_site_latency_s: f64,
    /// HBM held back from the model: runtime context, communication buffers, allocator slack.
    pub memory_reserve_bytes: f64,
    /// The link to host memory, per accelerator and direction (PCIe, or NVLink-C2C on Grace
    /// superchips), as copies reach it.
    pub host_link_bytes_per_s: f64,
    /// Host memory per accelerator, for offloaded activations.
    pub host_memory_bytes: f64,
    pub efficiency: Efficiency,
}

impl Hardware {
    pub fn peak(&self, dtype: Dtype) -> f64 {
        self.peak_flops_per_s[dtype as usize]
    }
}

impl Efficiency {
    /// Fraction of the 16-bit peak that a fused attention kernel of this kind reaches (unfused
    /// attention runs as GEMMs and a softmax, priced by the roofline).
    pub fn fused_attention(&self, kernel: AttentionKernel) -> f64 {
        match kernel {
            AttentionKernel::Flash1 => self.attention_flash1,
            AttentionKernel::Flash2 => self.attention_flash2,
            _ => self.attention,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support;

/// Why a layout cannot run a model, checked before pricing it (Megatron-Core's own checks).
/// The discriminants are the codes the shaders return (`LAYOUT_*` in shaders/model.wgsl; 0 is
/// no violation), checked by a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutViolation {
    /// `tp` must divide the attention heads.
    TpHeads = 1,
    /// `tp` must divide or be a multiple of the KV heads (fewer KV heads are replicated).
    TpKvHeads = 2,
    /// `tp` must divide the feed-forward width (and the expert width).
    TpFfn = 3,
    /// More pipeline stages than layers.
    PpLayers = 4,
    /// Interleaving needs a pipeline, a layer for each virtual stage, and a microbatch count
    /// that `pp` divides.
    Interleave = 6,
    /// `cp` must split the sequence into `2 cp` equal chunks (load-balanced causal attention).
    CpSeq = 7,
    /// `ep` must divide the experts and `dp * cp`, and needs a mixture-of-experts model.
    Ep = 8,
    /// `dp * microbatch` must divide the global batch.
    Batch = 5,
    /// ZeRO stages are 0 to 3.
    Zero = 9,
    /// `recompute_layers` needs `recompute = "full"`.
    RecomputeLayers = 11,
    /// A cluster on several sites needs whole model replicas on each: `dp` a multiple of the
    /// sites and `tp * cp * pp` within one site.
    Sites = 10,
}

impl LayoutViolation {
    pub const ALL: [LayoutViolation; 11] = [
        LayoutViolation::TpHeads,
        LayoutViolation::TpKvHeads,
        LayoutViolation::TpFfn,
        LayoutViolation::PpLayers,
        LayoutViolation::Interleave,
        LayoutViolation::CpSeq,
        LayoutViolation::Ep,
        LayoutViolation::Batch,
        LayoutViolation::Zero,
        LayoutViolation::RecomputeLayers,
        LayoutViolation::Sites,
    ];
    /// The code `check_layout` / `check_placement` return in the shaders.
    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn describe(self) -> &'static str {
        match self {
            LayoutViolation::TpHeads => "tp must divide the attention heads",
            LayoutViolation::TpKvHeads => "tp must divide the KV heads or be a multiple of them",
            LayoutViolation::TpFfn => "tp must divide ffn (and expert_ffn)",
            LayoutViolation::PpLayers => "pp must not exceed the layers",
            LayoutViolation::Interleave => {
                "interleave > 1 needs pp > 1, at least pp * interleave layers, and microbatches per step divisible by pp"
            }
            LayoutViolation::CpSeq => "cp > 1 needs seq_len divisible by 2 * cp",
            LayoutViolation::Ep => {
                "ep > 1 needs a mixture-of-experts model, ep must divide experts, etp must divide tp, and ep * etp must divide tp * dp * cp"
            }
            LayoutViolation::Batch => "dp * microbatch must divide global_batch",
            LayoutViolation::Zero => "zero must be 0, 1, 2 or 3",
            LayoutViolation::RecomputeLayers => "recompute_layers needs recompute = \"full\"",
            LayoutViolation::Sites => {
                "on several sites, dp must be a multiple of the sites and tp * cp * pp must fit in one site"
            }
        }
    }
}

/// The first rule `layout` breaks for `model` and `training`, if any. Degrees are assumed
/// positive (the scenario reader and the sweep's decoder guarantee it).
pub fn check_layout(model: &Transformer, training: &Training, layout: &Layout) -> Option<LayoutViolation> {
    let tp = layout.tp;
    if !model.heads.is_multiple_of(tp) {
        return Some(LayoutViolation::TpHeads);
    }
    if !model.kv_heads.is_multiple_of(tp) && !tp.is_multiple_of(model.kv_heads) {
        return Some(LayoutViolation::TpKvHeads);
    }
    if !model.ffn.is_multiple_of(tp) || (model.is_moe() && !model.expert_ffn.is_multiple_of(tp)) {
        return Some(LayoutViolation::TpFfn);
    }
    if layout.pp > model.layers {
        return Some(LayoutViolation::PpLayers);
    }
    // In 64 bits: dp * microbatch can pass 2^32 (and wrap onto a divisor) in 32.
    let dp_mb = layout.dp as u64 * layout.microbatch as u64;
    let global_batch = training.global_batch as u64;
    if dp_mb == 0 || !global_batch.is_multiple_of(dp_mb) {
        return Some(LayoutViolation::Batch);
    }
    if layout.interleave > 1 {
        let microbatches = global_batch / dp_mb;
        if !interleave_fits_layers(model, layout) || !microbatches.is_multiple_of(layout.pp as u64) {
            return Some(LayoutViolation::Interleave);
        }
    }
    if layout.cp > 1 && !(model.seq_len as u64).is_multiple_of(2 * layout.cp as u64) {
        return Some(LayoutViolation::CpSeq);
    }
    // Parallel folding: the expert layout (etp x ep x edp) covers the same tp x dp x cp ranks.
    let folded = layout.tp as u64 * layout.dp as u64 * layout.cp as u64;
    if layout.etp == 0
        || !tp.is_multiple_of(layout.etp)
        || (layout.ep > 1
            && (!model.is_moe()
                || !model.experts.is_multiple_of(layout.ep)
                || !folded.is_multiple_of(layout.ep as u64 * layout.etp as u64)))
    {
        return Some(LayoutViolation::Ep);
    }
    if layout.zero > 3 {
        return Some(LayoutViolation::Zero);
    }
    if layout.recompute_layers > 0 && layout.recompute != Recompute::Full {
        return Some(LayoutViolation::RecomputeLayers);
    }
    None
}

/// Whether the layout's interleave can split its pipeline: none asked, or a pipeline of at least
/// two stages whose `pp * interleave` virtual stages hold a layer each (half of
/// [`check_layout`]'s interleave rule; the other half is the microbatches it needs).
pub fn interleave_fits_layers(model: &Transformer, layout: &Layout) -> bool {
    layout.interleave <= 1
        || (layout.pp >= 2 && model.layers as u64 >= layout.pp as u64 * layout.interleave as u64)
}

/// Sites a cluster of `accelerators` spans.
pub fn sites(hw: &Hardware, accelerators: f64) -> f64 {
    (accelerators / hw.site_size).ceil().max(1.0)
}

/// The rule a layout breaks on this hardware's sites, if any: only data parallelism crosses
/// sites, so each site must hold whole model replicas.
pub fn check_placement(hw: &Hardware, layout: &Layout) -> Option<LayoutViolation> {
    let count = layout.accelerators() as f64;
    if count <= hw.site_size {
        return None;
    }
    let model_parallel = layout.tp as f64 * layout.cp as f64 * layout.pp as f64;
    let n = sites(hw, count);
    if layout.dp as f64 % n != 0.0 || model_parallel > hw.site_size {
        return Some(LayoutViolation::Sites);
    }
    None
}
