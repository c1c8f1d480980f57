//! What one layer costs and keeps, for one microbatch: the part of the model that depends only on
//! the per-layer knobs (accelerator, tp, cp, ep, microbatch, sequence parallelism, TP overlap,
//! recomputation). Twin: `shaders/profile.wgsl`.
//!
//! A sweep computes a profile once and reuses it across every pipeline depth, data-parallel
//! width, interleave, ZeRO stage and batch that shares those knobs; `estimate` computes it for
//! one layout. Both then run the same stage-level functions, so the fast path and the reference
//! are one model.

use super::flops::{local_shape, model_totals, ModelTotals};
use super::memory::{average_layer_activation_bytes, loss_buffer_bytes};
use super::step::{average_layer_costs, expert_all_to_all_bytes, logits_costs, LayerCosts};
use super::{Hardware, Layout, Training, Transformer};

/// Per-layer costs and memory of one microbatch on one rank.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    /// The average layer (dense and MoE layers weighted by their counts).
    pub layer: LayerCosts,
    pub logits_forward_s: f64,
    pub logits_backward_s: f64,
    /// Bytes of one microbatch's activations sent between pipeline stages (scattered over tp).
    pub pipeline_send_bytes: f64,
    /// Bytes one rank sends in one expert all-to-all of an MoE layer (the step prices them: their
    /// stride depends on the pipeline and the cluster, which a profile does not know).
    pub expert_all_to_all_bytes: f64,
    /// Activation bytes a layer produces, and the part it keeps under the layout's recompute.
    pub full_activation_bytes: f64,
    pub stored_activation_bytes: f64,
    /// The cross-entropy's buffer of one microbatch on the last stage.
    pub loss_buffer_bytes: f64,
    /// The whole model's parameters and FLOPs, which every layout of the sweep reads.
    pub totals: ModelTotals,
}

/// The profile of `layout`'s per-layer knobs.
pub fn profile(model: &Transformer, training: &Training, hw: &Hardware, layout: &Layout) -> Profile {
    // The layout's local shapes, once for every term below.
    let shape = local_shape(model, layout);
    let (logits_forward_s, logits_backward_s) = logits_costs(model, training, hw, &shape);
    let (full_activation_bytes, stored_activation_bytes) =
        average_layer_activation_bytes(model, training, layout, &shape);
    Profile {
        layer: average_layer_costs(model, training, hw, layout, &shape),
        logits_forward_s,
        logits_backward_s,
        pipeline_send_bytes: shape.tokens * shape.hidden * 2.0 / layout.tp as f64,
        expert_all_to_all_bytes: expert_all_to_all_bytes(model, training, layout, &shape),
        full_activation_bytes,
        stored_activation_bytes,
        loss_buffer_bytes: loss_buffer_bytes(&shape),
        totals: model_totals(model),
    }
}
