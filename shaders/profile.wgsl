// Twin: src/model/profile.rs. What one layer costs and keeps for one microbatch: computed once
// per set of per-layer knobs (kernel profile_main) and read by every layout that shares them.

struct GpuProfile {
    forward_s: f32,
    backward_s: f32,
    recompute_s: f32,
    tp_comm_s: f32,
    cp_comm_s: f32,
    host_s: f32,
    logits_forward_s: f32,
    logits_backward_s: f32,
    pipeline_send_bytes: f32,
    expert_all_to_all_bytes: f32,
    full_activation_bytes: f32,
    stored_activation_bytes: f32,
    loss_buffer_bytes: f32,
    // The profile's `totals` field (a ModelTotals), flat.
    dense_params_total: f32,
    expert_params_total: f32,
    forward_flops_per_sequence: f32,
    attention_forward_flops_per_sequence: f32,
}

// The profile's `layer` field (a LayerCosts) unpacked from its flat storage form.
fn profile_layer(p: GpuProfile) -> LayerCosts {
    return LayerCosts(p.forward_s, p.backward_s, p.recompute_s, p.tp_comm_s, p.cp_comm_s, p.host_s);
}

// The profile's `totals` field unpacked from its flat storage form.
fn profile_totals(p: GpuProfile) -> ModelTotals {
    return ModelTotals(p.dense_params_total, p.expert_params_total, p.forward_flops_per_sequence,
        p.attention_forward_flops_per_sequence);
}

fn profile(m: GpuModel, t: Training, hw: GpuAccelerator, l: Layout) -> GpuProfile {
    // The layout's local shapes, once for every term below.
    let shape = local_shape(m, l);
    let logits = logits_costs(m, t, hw, shape);
    let activations = average_layer_activation_bytes(m, t, l, shape);
    let layer = average_layer_costs(m, t, hw, l, shape);
    let totals = model_totals(m);
    return GpuProfile(
        layer.forward_s,
        layer.backward_s,
        layer.recompute_s,
        layer.tp_comm_s,
        layer.cp_comm_s,
        layer.host_s,
        logits.x,
        logits.y,
        shape.tokens * shape.hidden * 2.0 / f32(l.tp),
        expert_all_to_all_bytes(m, t, l, shape),
        activations.x,
        activations.y,
        loss_buffer_bytes(shape),
        totals.dense_params,
        totals.expert_params,
        totals.forward_flops_per_sequence,
        totals.attention_forward_flops_per_sequence,
    );
}
