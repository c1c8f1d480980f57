//! Software stacks as data: `catalog/stacks.toml`, one entry per stack (Megatron-LM 2020 to
//! Megatron-Core 2025, DeepSpeed, torchtitan, MaxText, ...), each field with its source.
//!
//! A stack says what it can do (which parallelisms, overlaps, ZeRO stages, recomputation modes
//! and formats exist), how it runs a step (the attention kernel, what overlaps what, the rank
//! order), and the knob values a run gets when it does not set them. The model reads the
//! first two as a [`Stack`]; the scenario resolver and `validate` read the defaults.

use crate::model::{AttentionKernel, Dtype, Recompute, Stack, ZeroSync};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a stack overlaps tensor-parallel collectives with the GEMMs they feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TpOverlapMechanism {
    /// No overlap: each all-gather / reduce-scatter (or all-reduce) waits.
    None,
    /// Transformer Engine's userbuffers: the collective is split into chunks pipelined with the
    /// GEMM's pieces, over NVLink peer copies (inside the scale-up domain only).
    Userbuffers,
    /// PyTorch's asynchronous tensor parallelism (micro-pipelined all-gather-matmul and
    /// matmul-reduce-scatter over symmetric memory; inside the scale-up domain only).
    AsyncTp,
}

/// Where a stack places the process groups in the rank order, innermost first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum RankOrder {
    /// Megatron-Core's `tp-cp-ep-dp-pp`: pipeline stages outermost.
    #[serde(rename = "tp-cp-dp-pp")]
    TpCpDpPp,
    /// Llama 3's `[TP, CP, PP, DP]`: data parallelism outermost.
    #[serde(rename = "tp-cp-pp-dp")]
    TpCpPpDp,
}

/// A microbatch default: a number of sequences, or the whole per-replica batch (no gradient
/// accumulation, as Megatron-LM's 2020 `--batch-size` was per GPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum MicrobatchDefault {
    Sequences(u32),
    Named(WholeReplica),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WholeReplica {
    PerReplica,
}

/// The knob values a run gets from its stack when it does not set them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackDefaults {
    pub microbatch: MicrobatchDefault,
    pub interleave: u32,
    pub recompute: Recompute,
    /// Sequence parallelism where tensor parallelism is used.
    pub sequence_parallel: bool,
    /// TP-communication overlap where sequence parallelism is on and the stack has it.
    pub tp_overlap: bool,
    pub zero: u32,
    /// Gradient buffers and their reduction: "bf16", "fp16" or "fp32".
    pub grad_dtype: String,
    /// Dropout layers (the GPT-2/3 recipes of the Megatron-LM era kept them).
    pub dropout: bool,
    /// Bytes per parameter of the working weights (2: a 16-bit copy beside fp32 masters; 4:
    /// fp32 weights only, as MaxText keeps them) and of the optimizer state (12: fp32 master, m
    /// and v; 8: m and v).
    #[serde(default = "default_weight_bytes")]
    pub weight_bytes: f64,
    #[serde(default = "default_optimizer_state_bytes")]
    pub optimizer_state_bytes: f64,
    /// The expert all-to-all overlaps another microbatch's compute (where `ep_overlap` says the
    /// stack can).
    #[serde(default)]
    pub ep_overlap: bool,
}

fn default_weight_bytes() -> f64 {
    2.0
}

fn default_optimizer_state_bytes() -> f64 {
    12.0
}

/// One software stack as `catalog/stacks.toml` states it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    pub id: String,
    pub name: String,
    pub year: u32,
    pub tensor_parallel: bool,
    pub pipeline_parallel: bool,
    pub sequence_parallel: bool,
    pub tp_overlap: TpOverlapMechanism,
    /// Interleaved 1F1B (virtual pipeline stages).
    pub interleave: bool,
    /// Stages may hold different numbers of layers (layers that do not divide the virtual
    /// stages).
    pub uneven_pipeline: bool,
    /// Pipeline sends overlap the next chunk's compute in the interleaved schedule.
    pub pp_overlap: bool,
    pub context_parallel: bool,
    pub expert_parallel: bool,
    /// The expert all-to-all can overlap another microbatch's compute (its runs do where
    /// `defaults.ep_overlap` says so).
    pub ep_overlap: bool,
    /// DualPipe, DeepSeek's bidirectional pipeline schedule (two stages per device).
    #[serde(default)]
    pub dualpipe: bool,
    /// The MoE dispatch sends a token once per scale-up domain and forwards it inside (DeepEP).
    #[serde(default)]
    pub dispatch_per_node: bool,
    /// FP8 training dispatches FP8 activations (the combine stays 16-bit).
    #[serde(default)]
    pub fp8_dispatch: bool,
    /// Norm and attention up-projection outputs recomputed in the backward; FP8 SwiGLU inputs.
    #[serde(default)]
    pub lean_activations: bool,
    /// ZeRO stages implemented (0 none, 1 optimizer state, 2 + gradients, 3 + parameters).
    pub zero: Vec<u32>,
    pub zero_sync: ZeroSync,
    /// ZeRO-3 gathers each layer again for a recomputed forward.
    #[serde(default)]
    pub zero3_regathers_for_recompute: bool,
    /// ZeRO-3 issues one all-gather per parameter tensor rather than one per layer.
    #[serde(default)]
    pub zero3_gathers_per_tensor: bool,
    /// ZeRO-3 keeps parameters only as fp32 master shards (FSDP's flat parameters).
    #[serde(default)]
    pub zero3_master_only: bool,
    /// ZeRO shards only over the data-parallel ranks inside one scale-up domain, and the
    /// domains' replicas all-reduce the sharded gradients (hybrid sharding).
    #[serde(default)]
    pub hybrid_shard: bool,
    pub grad_reduce_overlap: bool,
    pub param_gather_overlap: bool,
    pub recompute: Vec<Recompute>,
    pub formats: Vec<Dtype>,
    /// FP8 scaling recipes it offers (delayed, tensorwise, blockwise, mxfp8, ...).
    #[serde(default)]
    pub fp8_recipes: Vec<String>,
    /// Activations can be offloaded to host memory.
    pub activation_offload: bool,
    /// Its recipes capture layers as CUDA graphs (fewer host launches).
    pub cuda_graphs: bool,
    /// Kernels one transformer layer's forward pass issues.
    pub kernels_per_layer: f64,
    pub attention: AttentionKernel,
    pub rank_order: RankOrder,
    pub defaults: StackDefaults,
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

fn mask<T: Copy>(values: &[T], code: impl Fn(T) -> u32) -> u32 {
    values.iter().fold(0, |m, v| m | (1 << code(*v)))
}

impl StackSpec {
    /// The switches the model reads.
    pub fn model_stack(&self) -> Stack {
        Stack {
            tensor_parallel: self.tensor_parallel,
            pipeline_parallel: self.pipeline_parallel,
            sequence_parallel: self.sequence_parallel,
            interleave: self.interleave,
            uneven_pipeline: self.uneven_pipeline,
            context_parallel: self.context_parallel,
            expert_parallel: self.expert_parallel,
            activation_offload: self.activation_offload,
            tp_overlap: self.tp_overlap != TpOverlapMechanism::None,
            zero_stages: mask(&self.zero, |z| z),
            recompute_modes: mask(&self.recompute, Recompute::code),
            formats: mask(&self.formats, Dtype::code),
            grad_reduce_overlap: self.grad_reduce_overlap,
            param_gather_overlap: self.param_gather_overlap,
            zero_sync: self.zero_sync,
            zero3_regathers_for_recompute: self.zero3_regathers_for_recompute,
            zero3_gathers_per_tensor: self.zero3_gathers_per_tensor,
            zero3_master_only: self.zero3_master_only,
            hybrid_shard: self.hybrid_shard,
            pp_overlap: self.pp_overlap,
            data_parallel_outermost: self.rank_order == RankOrder::TpCpPpDp,
            kernels_per_layer: self.kernels_per_layer,
            cuda_graphs: self.cuda_graphs,
            ep_overlap: self.ep_overlap && self.defaults.ep_overlap,
            dualpipe: self.dualpipe,
            dispatch_per_node: self.dispatch_per_node,
            fp8_dispatch: self.fp8_dispatch,
            lean_activations: self.lean_activations,
        }
    }

    /// Why this entry is not a usable stack, if it is not.
    pub fn problem(&self) -> Option<String> {
        let id = &self.id;
        if id.trim().is_empty() {
            return Some("a stack has an empty id".into());
        }
        if let Some(z) = self.zero.iter().find(|z| **z > 3) {
            return Some(format!("stack `{id}`: zero lists {z}, expected stages 0 to 3"));
        }
        for (what, empty) in [
            ("zero", self.zero.is_empty()),
            ("recompute", self.recompute.is_empty()),
            ("formats", self.formats.is_empty()),
        ] {
            if empty {
                return Some(format!(
                    "stack `{id}`: {what} is empty, expected at least one value"
                ));
            }
        }
        let d = &self.defaults;
        let stack = self.model_stack();
        if !stack.supports_zero(d.zero) {
            return Some(format!(
                "stack `{id}`: defaults.zero = {} is not among its zero stages {:?}",
                d.zero, self.zero
            ));
        }
        if !stack.supports_recompute(d.recompute) {
            return Some(format!(
                "stack `{id}`: defaults.recompute = \"{}\" is not among its recompute modes",
                d.recompute.name()
            ));
        }
        if d.interleave == 0 || (d.interleave > 1 && !self.interleave) {
            return Some(format!(
                "stack `{id}`: defaults.interleave = {} needs interleave = true (and at least 1)",
                d.interleave
            ));
        }
        if d.sequence_parallel && !self.sequence_parallel {
            return Some(format!(
                "stack `{id}`: defaults.sequence_parallel = true but sequence_parallel = false"
            ));
        }
        if d.tp_overlap && self.tp_overlap == TpOverlapMechanism::None {
            return Some(format!(
                "stack `{id}`: defaults.tp_overlap = true but tp_overlap = \"none\""
            ));
        }
        if d.ep_overlap && !self.ep_overlap {
            return Some(format!(
                "stack `{id}`: defaults.ep_overlap = true but ep_overlap = false"
            ));
        }
        if self.dualpipe && !self.pipeline_parallel {
            return Some(format!(
                "stack `{id}`: dualpipe = true but pipeline_parallel = false"
            ));
        }
        if let MicrobatchDefault::Sequences(0) = d.microbatch {
            return Some(format!(
                "stack `{id}`: defaults.microbatch = 0, expected at least 1"
            ));
        }
        if grad_bytes(&d.grad_dtype).is_none() {
            return Some(format!(
                "stack `{id}`: defaults.grad_dtype = \"{}\", expected \"bf16\", \"fp16\" or \"fp32\"",
                d.grad_dtype
            ));
        }
        None
    }
}

/// Bytes per element of a gradient dtype name.
pub fn grad_bytes(name: &str) -> Option<f64> {
    match name {
        "fp32" => Some(4.0),
        "bf16" | "fp16" => Some(2.0),
        _ => None,
    }
}

/// The stack a scenario gets when it names none: the current Megatron-Core generation.
pub const DEFAULT_STACK: &str = "megatron-core-2025";
