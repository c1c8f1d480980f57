//! The shaders without a GPU: naga parses and validates them, and every host-shareable WGSL
//! struct has the size and member offsets of its #[repr(C)] Rust twin.

use clustersweep::engine::search;
use clustersweep::engine::sweep::gpu::{
    Outcome, COUNTER_SLOTS, HITS_SLOT, NOT_RANKED, SHADER_SOURCE, THRESHOLD_MARGIN, THRESHOLD_SLOT,
};
use clustersweep::engine::sweep::gpu_types::*;
use clustersweep::model::run::Pricing;
use clustersweep::model::{
    AttentionKernel, Dtype, FfnKind, LayoutViolation, Recompute, StackViolation, ZeroSync,
};
use std::mem::{offset_of, size_of};
use wgpu::naga;

fn module() -> naga::Module {
    naga::front::wgsl::parse_str(SHADER_SOURCE)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string(SHADER_SOURCE)))
}

#[test]
fn shaders_parse_and_validate() {
    let m = module();
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&m)
    .unwrap_or_else(|e| panic!("{}", e.emit_to_string(SHADER_SOURCE)));
    for entry in [
        "profile_main",
        "sweep_main",
        "evaluate_profile_main",
        "evaluate_main",
    ] {
        assert!(m.entry_points.iter().any(|e| e.name == entry), "{entry}");
    }
}

/// (member name, byte offset) of a WGSL struct, and its size.
fn wgsl_struct(m: &naga::Module, name: &str) -> (Vec<(String, u32)>, u32) {
    let ty = m
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no WGSL struct {name}"))
        .1;
    match &ty.inner {
        naga::TypeInner::Struct { members, span } => (
            members
                .iter()
                .map(|mb| (mb.name.clone().unwrap_or_default(), mb.offset))
                .collect(),
            *span,
        ),
        other => panic!("{name} is not a struct: {other:?}"),
    }
}

macro_rules! same_layout {
    ($m:expr, $ty:ident, [$($field:ident),* $(,)?]) => {{
        let (members, span) = wgsl_struct(&$m, stringify!($ty));
        assert_eq!(span as usize, size_of::<$ty>(), "size of {}", stringify!($ty));
        let rust: Vec<(String, u32)> = vec![$((stringify!($field).to_string(), offset_of!($ty, $field) as u32)),*];
        assert_eq!(members, rust, "members of {}", stringify!($ty));
    }};
}

#[test]
fn host_structs_match_their_wgsl_twins() {
    let m = module();
    same_layout!(
        m,
        GpuModel,
        [
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            ffn,
            ffn_kind,
            vocab,
            seq_len,
            experts,
            experts_per_token,
            expert_ffn,
            shared_experts,
            dense_layers,
            tied_embeddings,
            q_lora_rank,
            kv_lora_rank,
            qk_rope_head_dim,
            v_head_dim,
            sliding_window,
            sliding_window_layers,
            mtp_layers,
            n_group,
            topk_group,
        ]
    );
    same_layout!(
        m,
        GpuTraining,
        [
            dtype,
            global_batch_bound,
            tokens,
            objective,
            moe_imbalance,
            pad0,
            pad1,
            pad2,
        ]
    );
    same_layout!(
        m,
        GpuStack,
        [
            tensor_parallel,
            pipeline_parallel,
            sequence_parallel,
            interleave,
            uneven_pipeline,
            context_parallel,
            expert_parallel,
            activation_offload,
            tp_overlap,
            zero_stages,
            recompute_modes,
            formats,
            grad_reduce_overlap,
            param_gather_overlap,
            zero_sync,
            zero3_regathers_for_recompute,
            zero3_gathers_per_tensor,
            zero3_master_only,
            hybrid_shard,
            pp_overlap,
            data_parallel_outermost,
            kernels_per_layer,
            cuda_graphs,
            attention,
            dropout,
            weight_bytes,
            grad_bytes,
            optimizer_state_bytes,
            grad_reduce_bytes,
            ep_overlap,
            dualpipe,
            dispatch_per_node,
            fp8_dispatch,
            lean_activations,
        ]
    );
    same_layout!(
        m,
        GpuAccelerator,
        [
            peak_fp16,
            peak_bf16,
            peak_fp8,
            peak_fp4,
            hbm_bytes,
            hbm_bytes_per_s,
            scale_up_bytes_per_s,
            scale_up_domain,
            scale_up_latency_s,
            torus_axis,
            torus_dims,
            scale_out_bytes_per_s,
            scale_out_latency_s,
            memory_reserve_bytes,
            host_link_bytes_per_s,
            host_memory_bytes,
            pod_size,
            pod_oversubscription,
            cross_pod_latency_s,
            site_size,
            inter_site_bytes_per_s,
            inter_site_latency_s,
            gemm,
            gemm_half_dim,
            low_precision_gemm,
            attention,
            attention_flash2,
            attention_flash1,
            layer_overhead_s,
            step_overhead_s,
            launch_overhead_s,
            graph_launch_overhead_s,
            sync_jitter,
            memory,
            scale_up,
            scale_out,
            power_all_in_w,
            average_power_fraction,
            pue,
            electricity_usd_per_mwh,
            price_per_hour_usd,
            capex_per_accelerator_usd,
            failure_rate_per_hour,
            checkpoint_bytes_per_s,
            restart_s,
            pricing,
            supports_dtype,
        ]
    );
    same_layout!(m, GpuAxes, [radix, offset]);
    same_layout!(
        m,
        GpuBatch,
        [
            base_lo,
            base_hi,
            count,
            k,
            threshold,
            outer_start,
            outer_count,
            workgroups_x,
            prune,
            eval_per_draw,
            accelerators_per_draw
        ]
    );
    same_layout!(m, GpuHit, [index_lo, index_hi, objective, pad0]);
    same_layout!(
        m,
        GpuMetrics,
        [
            outcome,
            step_time_s,
            tokens_per_s,
            mfu,
            hfu,
            memory_per_accelerator_bytes,
            time_to_train_s,
            power_mw,
            energy_mwh,
            cost_usd,
            objective,
            pad0,
        ]
    );
    same_layout!(
        m,
        GpuProfile,
        [
            forward_s,
            backward_s,
            recompute_s,
            tp_comm_s,
            cp_comm_s,
            host_s,
            logits_forward_s,
            logits_backward_s,
            pipeline_send_bytes,
            expert_all_to_all_bytes,
            full_activation_bytes,
            stored_activation_bytes,
            loss_buffer_bytes,
            dense_params_total,
            expert_params_total,
            forward_flops_per_sequence,
            attention_forward_flops_per_sequence,
        ]
    );
}

/// Every member of a struct the host uploads is read by the shaders (a field written on the
/// host and never read is a twin that drifted, or a value the GPU path silently ignores);
/// members named `pad*` only pad.
#[test]
fn every_uploaded_field_is_read_by_the_shaders() {
    let m = module();
    for name in [
        "GpuModel",
        "GpuTraining",
        "GpuStack",
        "GpuAccelerator",
        "GpuBatch",
    ] {
        let (members, _) = wgsl_struct(&m, name);
        for (member, _) in members {
            if member.starts_with("pad") {
                continue;
            }
            let read = SHADER_SOURCE
                .match_indices(&format!(".{member}"))
                .any(|(at, hit)| {
                    let next = SHADER_SOURCE[at + hit.len()..].chars().next();
                    !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
            assert!(read, "{name}.{member} is uploaded but no shader reads it");
        }
    }
}

#[test]
fn each_shader_names_its_twin() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("shaders")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap_or("");
        assert!(
            first.starts_with("// Twin: src/"),
            "{} starts with {first:?}",
            path.display()
        );
        let twins = twin_files(&text);
        assert!(!twins.is_empty(), "{}", path.display());
        for twin in twins {
            assert!(
                root.join(&twin).exists(),
                "{} names {twin}, which does not exist",
                path.display()
            );
        }
    }
}

/// The literal of `const NAME: TYPE = LITERAL;` in the shaders.
fn wgsl_literal(name: &str, ty: &str) -> &'static str {
    let needle = format!("const {name}: {ty} = ");
    let at = SHADER_SOURCE
        .find(&needle)
        .unwrap_or_else(|| panic!("no WGSL {ty} constant {name}"));
    let rest = &SHADER_SOURCE[at + needle.len()..];
    &rest[..rest.find(';').expect("a constant ends with ;")]
}

/// The value of `const NAME: u32 = Nu;` in the shaders.
fn wgsl_u32(name: &str) -> u32 {
    wgsl_literal(name, "u32")
        .trim_end_matches('u')
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn gpu_codes_in_the_shaders_are_the_rust_enums_codes() {
    for k in AttentionKernel::ALL {
        assert_eq!(
            wgsl_u32(&format!("ATTENTION_{}", k.name().to_uppercase())),
            k.code(),
            "{k:?}"
        );
    }
    for (name, z) in [
        ("ZERO_SYNC_PER_MICROBATCH", ZeroSync::PerMicrobatch),
        ("ZERO_SYNC_PER_STEP", ZeroSync::PerStep),
        (
            "ZERO_SYNC_PER_STEP_WHEN_PIPELINED",
            ZeroSync::PerStepWhenPipelined,
        ),
    ] {
        assert_eq!(wgsl_u32(name), z.code(), "{name}");
    }
    for d in Dtype::ALL {
        assert_eq!(
            wgsl_u32(&format!("DTYPE_{}", d.name().to_uppercase())),
            d.code(),
            "{d:?}"
        );
    }
    for r in Recompute::ALL {
        assert_eq!(
            wgsl_u32(&format!("RECOMPUTE_{}", r.name().to_uppercase())),
            r.code(),
            "{r:?}"
        );
    }
    for (name, v) in [
        ("STACK_TENSOR_PARALLEL", StackViolation::TensorParallel),
        ("STACK_PIPELINE_PARALLEL", StackViolation::PipelineParallel),
        ("STACK_SEQUENCE_PARALLEL", StackViolation::SequenceParallel),
        ("STACK_TP_OVERLAP", StackViolation::TpOverlap),
        ("STACK_INTERLEAVE", StackViolation::Interleave),
        ("STACK_CONTEXT_PARALLEL", StackViolation::ContextParallel),
        ("STACK_EXPERT_PARALLEL", StackViolation::ExpertParallel),
        ("STACK_ZERO", StackViolation::Zero),
        ("STACK_RECOMPUTE", StackViolation::Recompute),
        ("STACK_FORMAT", StackViolation::Format),
        ("STACK_UNEVEN_PIPELINE", StackViolation::UnevenPipeline),
        ("STACK_OFFLOAD", StackViolation::Offload),
        ("STACK_HYBRID_SHARD", StackViolation::HybridShard),
    ] {
        assert_eq!(wgsl_u32(name), v.code(), "{name}");
    }
    for (name, o) in [
        ("OUTCOME_VALID", Outcome::Valid),
        ("OUTCOME_DEGREES", Outcome::Degrees),
        ("OUTCOME_LAYOUT", Outcome::Layout),
        ("OUTCOME_DTYPE", Outcome::Dtype),
        ("OUTCOME_NO_FIT", Outcome::NoFit),
        ("OUTCOME_STACK", Outcome::Stack),
        ("OUTCOME_PRUNED", Outcome::Pruned),
    ] {
        assert_eq!(wgsl_u32(name), o.code(), "{name}");
    }
    for p in Pricing::ALL {
        assert_eq!(
            wgsl_u32(&format!("PRICING_{}", format!("{p:?}").to_uppercase())),
            p.code(),
            "{p:?}"
        );
    }
    for f in FfnKind::ALL {
        assert_eq!(
            wgsl_u32(&format!("FFN_{}", f.name().to_uppercase())),
            f.code(),
            "{f:?}"
        );
    }
    for o in search::Objective::ALL {
        assert_eq!(
            wgsl_u32(&format!("OBJECTIVE_{}", o.name().to_uppercase())),
            o.code(),
            "{o:?}"
        );
    }
    for (name, v) in [
        ("LAYOUT_TP_HEADS", LayoutViolation::TpHeads),
        ("LAYOUT_TP_KV_HEADS", LayoutViolation::TpKvHeads),
        ("LAYOUT_TP_FFN", LayoutViolation::TpFfn),
        ("LAYOUT_PP_LAYERS", LayoutViolation::PpLayers),
        ("LAYOUT_BATCH", LayoutViolation::Batch),
        ("LAYOUT_INTERLEAVE", LayoutViolation::Interleave),
        ("LAYOUT_CP_SEQ", LayoutViolation::CpSeq),
        ("LAYOUT_EP", LayoutViolation::Ep),
        ("LAYOUT_ZERO", LayoutViolation::Zero),
        ("LAYOUT_SITES", LayoutViolation::Sites),
        ("LAYOUT_RECOMPUTE_LAYERS", LayoutViolation::RecomputeLayers),
    ] {
        assert_eq!(wgsl_u32(name), v.code(), "{name}");
    }
    assert_eq!(
        LayoutViolation::ALL.len(),
        11,
        "a new violation needs its LAYOUT_ code"
    );
    // check_layout and check_placement return named codes, never literals.
    for f in ["check_layout", "check_placement"] {
        let body = wgsl_function_body(f);
        assert!(
            !body.lines().any(|l| l.trim().starts_with("return ")
                && l.trim() != "return 0u;"
                && !l.contains("LAYOUT_")),
            "{f} returns a literal code:\n{body}"
        );
    }
    assert_eq!(wgsl_u32("N_OUTCOMES") as usize, Outcome::ALL.len());
    assert_eq!(wgsl_u32("HITS_SLOT") as usize, HITS_SLOT);
    assert_eq!(wgsl_u32("THRESHOLD_SLOT") as usize, THRESHOLD_SLOT);
    assert_eq!(wgsl_u32("COUNTER_SLOTS") as usize, COUNTER_SLOTS);
    assert_eq!(wgsl_u32("N_AXES") as usize, search::N_AXES);
    assert_eq!(wgsl_u32("PROFILE_AXES") as usize, search::PROFILE_AXES);
    for (name, axis) in [
        ("AXIS_ACCELERATOR", search::AXIS_ACCELERATOR),
        ("AXIS_STACK", search::AXIS_STACK),
        ("AXIS_TP", search::AXIS_TP),
        ("AXIS_CP", search::AXIS_CP),
        ("AXIS_EP", search::AXIS_EP),
        ("AXIS_MICROBATCH", search::AXIS_MICROBATCH),
        ("AXIS_SP", search::AXIS_SP),
        ("AXIS_RECOMPUTE", search::AXIS_RECOMPUTE),
        ("AXIS_COUNT", search::AXIS_COUNT),
        ("AXIS_PP", search::AXIS_PP),
        ("AXIS_INTERLEAVE", search::AXIS_INTERLEAVE),
        ("AXIS_ZERO", search::AXIS_ZERO),
        ("AXIS_RECOMPUTE_LAYERS", search::AXIS_RECOMPUTE_LAYERS),
        ("AXIS_OFFLOAD_LAYERS", search::AXIS_OFFLOAD_LAYERS),
        ("AXIS_GLOBAL_BATCH", search::AXIS_GLOBAL_BATCH),
    ] {
        assert_eq!(wgsl_u32(name) as usize, axis, "{name}");
    }
}

/// The value of `const NAME: f32 = X;` in the shaders.
fn wgsl_f32(name: &str) -> f32 {
    wgsl_literal(name, "f32")
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn float_constants_in_the_shaders_are_the_specs() {
    use clustersweep::model::compute::ATTENTION_HEAD_DIM_HALF;
    use clustersweep::model::flops::FLASH_BACKWARD_RATIO;
    use clustersweep::model::step::{COMM_SM_FRACTION, FP8_DISPATCH_BYTES_PER_ELEMENT};
    for (name, spec) in [
        ("COMM_SM_FRACTION", COMM_SM_FRACTION),
        ("FP8_DISPATCH_BYTES_PER_ELEMENT", FP8_DISPATCH_BYTES_PER_ELEMENT),
        ("FLASH_BACKWARD_RATIO", FLASH_BACKWARD_RATIO),
        ("ATTENTION_HEAD_DIM_HALF", ATTENTION_HEAD_DIM_HALF),
    ] {
        assert_eq!(wgsl_f32(name), spec as f32, "{name}");
    }
    assert_eq!(wgsl_f32("NOT_RANKED"), NOT_RANKED);
    assert_eq!(wgsl_f32("THRESHOLD_MARGIN"), THRESHOLD_MARGIN as f32);
    assert_eq!(
        wgsl_f32("FLOOR_MARGIN"),
        clustersweep::engine::sweep::FLOOR_MARGIN as f32
    );
}

/// The text of a WGSL function, from `fn NAME(` to its closing brace at column 0.
fn wgsl_function_body(name: &str) -> &'static str {
    let at = SHADER_SOURCE
        .find(&format!("\nfn {name}("))
        .unwrap_or_else(|| panic!("no WGSL function {name}"));
    let rest = &SHADER_SOURCE[at + 1..];
    &rest[..rest.find("\n}").expect("a function ends with }") + 2]
}

/// WGSL functions whose Rust twin has another name (a method, an operator, a closure inside a
/// function of the same file), and those with none: GPU plumbing, each with its reason. vello
/// declares missing twins explicitly; so does this table.
const DECLARED_TWINS: [(&str, &str, &str); 31] = [
    // (WGSL function, the Rust file, its twin there or "" for none, with why)
    ("all_to_all_share", "src/model/comm.rs", "let share = |peers"),
    ("attention_is_fused", "src/model/mod.rs", "pub fn is_fused"),
    ("axis_value", "src/engine/search.rs", "let v = |axis: usize|"),
    ("div_ceil", "", "Rust's u32::div_ceil"),
    (
        "dp_collective",
        "src/model/step.rs",
        "let collective = |params_dense",
    ),
    ("ffn_matrices", "src/model/mod.rs", "pub fn matrices(self)"),
    ("ffn_up_width", "src/model/mod.rs", "pub fn up_width(self)"),
    (
        "layer_costs_plus",
        "src/model/step.rs",
        "fn plus(&self, o: &LayerCosts)",
    ),
    (
        "layer_costs_scaled",
        "src/model/step.rs",
        "fn scaled(&self, k: f64)",
    ),
    (
        "layer_costs_total_s",
        "src/model/step.rs",
        "pub fn total_s(&self)",
    ),
    (
        "memory_breakdown_total_bytes",
        "src/model/memory.rs",
        "pub fn total_bytes(&self)",
    ),
    (
        "offload_layer_s",
        "src/model/stage.rs",
        "let per_layer = |bytes: f64|",
    ),
    ("profile_layer", "src/model/profile.rs", "pub layer: LayerCosts"),
    (
        "profile_totals",
        "src/model/profile.rs",
        "pub totals: ModelTotals",
    ),
    (
        "layout_memory_fits",
        "src/model/run.rs",
        "pub fn fits(&self, hw: &Hardware)",
    ),
    ("run_training", "src/engine/search.rs", "pub fn training_for("),
    (
        "sends_per_microbatch",
        "src/model/stage.rs",
        "let sends_per_microbatch = |send",
    ),
    (
        "step_breakdown_total_s",
        "src/model/step.rs",
        "pub fn total_s(&self)",
    ),
    ("zero_shard", "src/model/stage.rs", "let shard = |stage: u32|"),
    ("outer_key", "src/engine/sweep/cpu.rs", "digits[..PROFILE_AXES]"),
    (
        "key_float",
        "",
        "GPU only: the inverse of float_key, reading the shared top-k threshold",
    ),
    (
        "digits_plus",
        "",
        "GPU only: the odometer stepped by an offset in 32-bit words (Rust decodes u64)",
    ),
    ("odometer_wheel", "", "GPU only: one wheel of digits_plus"),
    ("index_add", "", "GPU only: a 64-bit index as two u32 words"),
    (
        "udiv",
        "",
        "GPU only: u32 division through f32 below 2^24 (GPUs emulate integer division); Rust's `/`",
    ),
    ("urem", "", "GPU only: the remainder of udiv; Rust's `%`"),
    (
        "sweep_main",
        "",
        "GPU only: entry point; the CPU engine is src/engine/sweep/cpu.rs",
    ),
    (
        "evaluate_main",
        "",
        "GPU only: entry point of the parity tests and the draws (one estimate per layout)",
    ),
    (
        "evaluate_profile_main",
        "",
        "GPU only: entry point of the profile parity tests",
    ),
    (
        "profile_main",
        "",
        "GPU only: entry point that fills the profile cache",
    ),
    (
        "drawn_table_rows",
        "",
        "GPU only: where a draw's accelerator rows start when several draws' tables are stacked in one dispatch (the CPU prices each draw's space on its own)",
    ),
];

/// The Rust files a shader names as its twins: the paths in the sentence its header opens
/// with ("// Twin: src/a.rs (...) and src/b.rs (...).").
fn twin_files(shader_text: &str) -> Vec<String> {
    let header: String = shader_text
        .lines()
        .map_while(|l| l.strip_prefix("//"))
        .collect::<Vec<_>>()
        .join(" ");
    let sentence = header.split_once("Twin:").map_or("", |(_, rest)| rest);
    let sentence = sentence.split_once(". ").map_or(sentence, |(first, _)| first);
    sentence
        .split([' ', ',', '(', ')'])
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| w.starts_with("src/") && w.ends_with(".rs"))
        .map(str::to_string)
        .collect()
}

/// Every WGSL function has a Rust twin of the same name in a file its shader names as its twin
/// (so a function that drifts into another shader is caught), or is declared above with its
/// twin's other name in one of those files (which must hold it) or the reason it has none; the
/// table has no stale entries.
#[test]
fn every_wgsl_function_has_a_rust_twin_or_a_declared_reason() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wgsl_functions: Vec<String> = vec![];
    for entry in std::fs::read_dir(root.join("shaders")).unwrap() {
        let path = entry.unwrap().path();
        let shader = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let twins = twin_files(&text);
        assert!(!twins.is_empty(), "{shader} names no twin");
        let rust: String = twins
            .iter()
            .map(|t| std::fs::read_to_string(root.join(t)).unwrap())
            .collect();
        let has_rust_fn =
            |name: &str| rust.contains(&format!("fn {name}(")) || rust.contains(&format!("fn {name}<"));
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("fn ") else {
                continue;
            };
            let f = &rest[..rest.find('(').unwrap()];
            wgsl_functions.push(f.to_string());
            match DECLARED_TWINS.iter().find(|(w, ..)| *w == f) {
                None => assert!(
                    has_rust_fn(f),
                    "WGSL fn {f} of {shader} has no Rust twin `fn {f}` in its twins {twins:?}: write \
                     one, or declare it in DECLARED_TWINS"
                ),
                Some((_, file, twin)) => {
                    assert!(
                        !has_rust_fn(f),
                        "{f} has a same-named Rust twin: drop it from DECLARED_TWINS"
                    );
                    if !file.is_empty() {
                        assert!(
                            twins.iter().any(|t| t == file),
                            "{f} of {shader} is declared in {file}, which is not one of its twins {twins:?}"
                        );
                        let text = std::fs::read_to_string(root.join(file)).unwrap();
                        assert!(text.contains(twin), "{f}: {file} has no `{twin}`");
                    }
                }
            }
        }
    }
    for (w, ..) in DECLARED_TWINS {
        assert!(
            wgsl_functions.iter().any(|f| f == w),
            "DECLARED_TWINS names {w}, which no shader defines"
        );
    }
}
