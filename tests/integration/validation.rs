//! The model against the measured runs of tests/data/measured-runs.csv: the headline figure.

use crate::data;
use clustersweep::analysis::fit::HoldOut;
use clustersweep::analysis::uncertainty::{coverage, quantile, ModelError, DEFAULT_CONFIDENCE};
use clustersweep::analysis::validate::{read_runs, validate, Assume, Source, ValidationReport};
use clustersweep::input::catalog::Catalog;
use std::sync::OnceLock;

/// The run ids the fit does not learn from (`fit --skip-runs tests/data/fit-skipped-runs.csv`).
fn skipped_runs() -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(data("fit-skipped-runs.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

fn report() -> &'static ValidationReport {
    static REPORT: OnceLock<ValidationReport> = OnceLock::new();
    REPORT.get_or_init(|| {
        validate(
            &read_runs(&data("measured-runs.csv")).unwrap(),
            &Catalog::builtin(),
            Assume::Stack,
        )
    })
}

/// The groups the stacks issue's targets cover: every dense GPU publication. The mixture-of-
/// experts and TPU groups have targets of their own (see `moe_and_tpu_groups_are_reported`).
fn is_dense_gpu_group(group: &str) -> bool {
    !group.contains("MoE") && !group.contains("v5e")
}

#[test]
fn dense_groups_average_at_most_7_percent_and_none_exceeds_15() {
    let groups: Vec<_> = report()
        .groups
        .iter()
        .filter(|g| is_dense_gpu_group(&g.group))
        .collect();
    assert!(groups.len() >= 6, "{groups:?}");
    let mean = groups.iter().map(|g| g.mape_pct).sum::<f64>() / groups.len() as f64;
    assert!(mean <= 7.0, "mean of the dense groups' MAPEs {mean:.2} %");
    for g in &groups {
        assert!(
            g.mape_pct <= 15.0,
            "{}: MAPE {:.2} % (worst {} at {:.1} %)",
            g.group,
            g.mape_pct,
            g.worst_run_id,
            g.max_abs_error_pct
        );
    }
    let overall = report().overall.as_ref().unwrap();
    assert!(overall.rows >= 330, "{} rows priced", overall.rows);
}

/// Leave-one-group-out cross-validation with `fit`'s default iterations, as
/// `fit --write-model-error catalog/model-error.csv` runs it.
fn held_out() -> &'static [HoldOut] {
    static HELD: OnceLock<Vec<HoldOut>> = OnceLock::new();
    HELD.get_or_init(|| {
        let rows = read_runs(&data("measured-runs.csv")).unwrap();
        clustersweep::analysis::fit::cross_validate(
            &rows,
            &skipped_runs(),
            &Catalog::builtin(),
            400,
            Assume::Stack,
        )
    })
}

#[test]
fn leave_one_group_out_error_is_at_most_12_percent() {
    let held = held_out();
    let dense: Vec<_> = held.iter().filter(|h| is_dense_gpu_group(&h.group)).collect();
    assert!(dense.len() >= 6, "{held:?}");
    let mean = dense.iter().map(|h| h.out_of_sample_mape_pct).sum::<f64>() / dense.len() as f64;
    assert!(mean <= 12.0, "leave-one-group-out mean {mean:.2} %: {held:?}");
    for h in &dense {
        assert!(h.out_of_sample_mape_pct <= 15.0, "{h:?}");
    }
    // Every group, the mixture-of-experts one (whose Blackwell rows fall back to the priors
    // when it is held out) included.
    let all = held.iter().map(|h| h.out_of_sample_mape_pct).sum::<f64>() / held.len() as f64;
    assert!(
        all <= 12.0,
        "leave-one-group-out mean over all groups {all:.2} %: {held:?}"
    );
}

#[test]
fn gb200_runs_the_blackwell_fit_never_saw_are_within_15_percent() {
    // The Blackwell family is fitted on mixture-of-experts rows only; dense runs of the same
    // release on the same racks judge it (with Hopper's fractions they were 20-26 % too fast),
    // and DeepSeek-V3 on the v25.10 stack judges exact latent attention and parallel folding.
    let rows = read_runs(&data("held-out-runs.csv")).unwrap();
    assert_eq!(rows.len(), 7);
    let fitted = read_runs(&data("measured-runs.csv")).unwrap();
    for r in &rows {
        assert!(
            fitted.iter().all(|f| f.run_id != r.run_id),
            "{} is in the fit",
            r.run_id
        );
    }
    let held = validate(&rows, &Catalog::builtin(), Assume::Stack);
    for r in &held.rows {
        let error = r
            .error_pct
            .unwrap_or_else(|| panic!("{}: {:?}", r.run_id, r.reason));
        assert!(error.abs() <= 15.0, "{}: {error:+.1} %", r.run_id);
    }
    let overall = held.overall.as_ref().unwrap();
    assert!(
        overall.mape_pct <= 10.0,
        "held-out MAPE {:.2} %",
        overall.mape_pct
    );
}

#[test]
fn tpu_v5e_group_is_within_12_percent() {
    // The MoE/TPU issue's in-sample target, on the 7 MaxText v5e rows the TPU family is fitted
    // to (gemm only; the other constants are datasheet values or estimates).
    let g = report().groups.iter().find(|g| g.group.contains("v5e")).unwrap();
    assert!(g.mape_pct <= 12.0, "{}: MAPE {:.2} %", g.group, g.mape_pct);
}

#[test]
fn mixture_of_experts_groups_stay_within_their_measured_error() {
    // Not the MoE issue's target (12 %): with DeepSeek-V3 priced exactly (latent attention,
    // parallel folding, the recipes' own expert tensor parallelism) and its DGX Cloud v25.05
    // GB200 rows read with the unfused attention their Transformer Engine fell back to (no
    // cuDNN fused attention on Blackwell for 192-wide heads before TE 2.5), those rows are
    // still 39 % fast (34 s measured, 21 s priced), and the group is at 16.0 %. This holds the
    // line until the rest of that cost is found.
    for g in report().groups.iter().filter(|g| g.group.contains("MoE")) {
        assert!(g.mape_pct <= 16.5, "{}: MAPE {:.2} %", g.group, g.mape_pct);
    }
}

#[test]
fn stack_defaults_beat_crediting_every_run_with_the_fastest_knobs() {
    // The old reading credited a 2020-2021 Megatron run with overlaps and kernels it never had;
    // the stack's defaults read it as it ran.
    let rows = read_runs(&data("measured-runs.csv")).unwrap();
    let fastest = validate(&rows, &Catalog::builtin(), Assume::Fastest);
    let group = |r: &ValidationReport, g: &str| {
        r.groups
            .iter()
            .find(|s| s.group == g)
            .map(|s| s.mape_pct)
            .unwrap()
    };
    assert!(group(report(), "MegatronLM_README_2020") < group(&fastest, "MegatronLM_README_2020"));
    assert!(fastest
        .rows
        .iter()
        .all(|r| r.reason.is_some() || !r.assumed.is_empty()));
}

#[test]
fn moe_and_tpu_groups_are_reported() {
    // Every MoE row is predicted (DeepSeek-V3 with exact latent attention and its folded expert
    // layout), and every TPU v5e row (a 16 x 16 ICI torus per slice, DCN between slices).
    let r = report();
    let moe: Vec<_> = r.rows.iter().filter(|x| x.group.contains("MoE")).collect();
    assert_eq!(moe.len(), 18);
    for x in &moe {
        assert!(x.predicted_step_time_s.is_some(), "{x:?}");
    }
    let tpu: Vec<_> = r.rows.iter().filter(|x| x.accelerator == "tpu-v5e").collect();
    assert_eq!(tpu.len(), 7);
    for x in &tpu {
        assert!(x.predicted_step_time_s.is_some(), "{x:?}");
    }
}

#[test]
fn every_row_is_priced_or_has_a_reason() {
    for r in &report().rows {
        assert!(
            r.predicted_step_time_s.is_some() != r.reason.is_some(),
            "{}",
            r.run_id
        );
        if let Some(p) = r.predicted_step_time_s {
            assert!(p.is_finite() && p > 0.0, "{}: {p}", r.run_id);
            for k in ["stack", "microbatch", "recompute", "zero", "attention_kernel"] {
                assert!(r.assumed.contains_key(k), "{}: {k}", r.run_id);
            }
        }
    }
    // Six NeMo 24.07 rows publish no model shape.
    let reasons: Vec<&str> = report().rows.iter().filter_map(|r| r.reason.as_deref()).collect();
    assert_eq!(reasons.len(), 6, "{reasons:?}");
    assert_eq!(reasons.iter().filter(|r| r.contains("missing")).count(), 6);
}

#[test]
fn measured_layouts_fit_in_memory() {
    // Every row ran on real hardware, so its layout fit; where a row records no recomputation,
    // validation assumes the least that fits (NeMo 24.07's Nemotron-340B and Llama 3 8B, the
    // DeepSeek-V3 PP 8 row). The exceptions the model allows: DeepSpeed ZeRO-3 of a 530B model on
    // 640 GPUs at microbatch 4, which DeepSpeed ran with its own memory-saving machinery
    // (partitioned activation checkpoints); the DeepSeek-V3 v25.08 row, whose recorded
    // module recomputation (MLA up-projections, MLP, MoE) the model's selective mode (attention
    // core only) does not describe; and MaxText's 32B and 64B on 16 GB TPU v5e chips, 2-3 GB
    // over: XLA's scanned, rematerialised layers keep less than one whole layer's activations
    // and an fp32 layer gradient, which the model holds.
    let misfits: Vec<&str> = report()
        .rows
        .iter()
        .filter(|r| r.fits == Some(false))
        .map(|r| r.run_id.as_str())
        .collect();
    assert!(
        misfits.iter().all(|id| id.starts_with("narayanan21_t2_ZeRO-3")
            || *id == "dgxc_v25.08.01_DeepSeekV3_h100_bf16_1024g_gbs8192"
            || id.starts_with("maxtext_v5e_32b")
            || id.starts_with("maxtext_v5e_64b")),
        "{misfits:?}"
    );
}

#[test]
fn rows_without_a_step_time_use_the_reported_mfu() {
    let derived: Vec<_> = report()
        .rows
        .iter()
        .filter(|r| r.measured_from == Some("mfu_pct"))
        .collect();
    assert_eq!(derived.len(), 9, "the nine Megatron-LM README H100 rows");
    let summary = report().derived_from_mfu.as_ref().unwrap();
    assert!(summary.mape_pct < 15.0, "{summary:?}");
}

#[test]
fn rank_correlation_is_reported_for_groups_of_three_or_more() {
    let r = report();
    assert!(r.rank_groups.len() >= 5);
    assert!(r
        .rank_groups
        .iter()
        .all(|g| g.rows >= 3 && (-1.0..=1.0).contains(&g.spearman)));
    assert!(r.mean_spearman.unwrap() > 0.5, "{:?}", r.mean_spearman);
}

#[test]
fn narayanan_table2_ptd_scales_down_with_more_gpus() {
    // Regression: at fixed batch, doubling the GPUs of a PTD layout must roughly halve the step.
    let rows = &report().rows;
    let step = |id: &str| {
        rows.iter()
            .find(|r| r.run_id == id)
            .unwrap()
            .predicted_step_time_s
            .unwrap()
    };
    let a = step("narayanan21_t2_PTD_174.6B_384g");
    let b = step("narayanan21_t2_PTD_174.6B_768g");
    let c = step("narayanan21_t2_PTD_174.6B_1536g");
    assert!(a > b && b > c, "{a} {b} {c}");
    assert!(
        (a / b - 2.0).abs() < 0.3 && (b / c - 2.0).abs() < 0.3,
        "{a} {b} {c}"
    );
}

#[test]
fn fp8_runs_are_predicted_faster_than_their_bf16_twins() {
    let rows = &report().rows;
    for model in ["GPT3-175B", "Llama3.1-405B", "Nemotron4-15B"] {
        let bf16 = rows
            .iter()
            .find(|r| r.run_id == format!("dgxc_{model}_BF16_512g"))
            .unwrap();
        let fp8 = rows
            .iter()
            .find(|r| r.run_id == format!("dgxc_{model}_FP8_512g"))
            .unwrap();
        assert!(fp8.predicted_step_time_s < bf16.predicted_step_time_s, "{model}");
    }
}

#[test]
fn the_committed_model_error_is_what_cross_validation_gives() {
    // catalog/model-error.csv is regenerated by `clustersweep fit tests/data/measured-runs.csv
    // --skip-runs tests/data/fit-skipped-runs.csv --write-model-error catalog/model-error.csv`;
    // a model or catalog change that moves a prediction must regenerate it.
    let fresh: Vec<_> = held_out()
        .iter()
        .flat_map(|h| h.predictions.iter().cloned())
        .collect();
    let committed = &ModelError::builtin().predictions;
    assert_eq!(
        fresh.len(),
        committed.len(),
        "rows: regenerate catalog/model-error.csv"
    );
    for (f, c) in fresh.iter().zip(committed) {
        assert_eq!(f.run_id, c.run_id);
        for (what, a, b) in [
            ("in sample", f.in_sample_step_time_s, c.in_sample_step_time_s),
            ("held out", f.held_out_step_time_s, c.held_out_step_time_s),
        ] {
            assert!(
                (a / b - 1.0).abs() < 1e-4,
                "{} {what}: {a} now, {b} committed: regenerate catalog/model-error.csv",
                f.run_id
            );
        }
    }
}

#[test]
fn eighty_percent_intervals_cover_75_to_85_percent_of_publications_they_never_saw() {
    // The calibration target: every row's held-out prediction against the interval the
    // other publications' errors give (its own publication left out of the offsets and the
    // scatter alike).
    let c = coverage(ModelError::builtin(), DEFAULT_CONFIDENCE);
    assert!(c.rows >= 330, "{c:?}");
    assert!(
        (0.75..=0.85).contains(&c.covered_fraction),
        "80 % intervals cover {:.1} % of {} rows (median width {:.1} %)",
        100.0 * c.covered_fraction,
        c.rows,
        100.0 * c.median_width_fraction
    );
    // No wider than the errors require: the one interval that holds the central 80 % of every
    // held-out error, chosen in hindsight, is as wide as a single interval for all rows can be
    // and still cover 80 %; intervals that follow the regime (wider for an unmeasured stack,
    // narrower for a measured one) may not be wider at the median by more than 5 %.
    let mut errors: Vec<f64> = ModelError::builtin()
        .predictions
        .iter()
        .map(|p| p.held_out_log_ratio())
        .collect();
    errors.sort_by(f64::total_cmp);
    let hindsight = quantile(&errors, 0.9).exp() - quantile(&errors, 0.1).exp();
    assert!(
        c.median_width_fraction <= 1.05 * hindsight && c.median_width_fraction < 0.35,
        "median width {:.1} % against the hindsight interval's {:.1} %",
        100.0 * c.median_width_fraction,
        100.0 * hindsight
    );
    // Narrower confidence, narrower and less covering intervals.
    let half = coverage(ModelError::builtin(), 0.5);
    assert!(
        half.covered_fraction < c.covered_fraction && half.median_width_fraction < c.median_width_fraction
    );
}

#[test]
fn gb200_runs_the_fit_never_saw_mostly_fall_inside_their_intervals() {
    // Unseen runs judge the coverage: the seven held-out GB200 rows (dense and DeepSeek-V3),
    // priced with the committed catalog, against the estimate's 80 % interval.
    let rows = read_runs(&data("held-out-runs.csv")).unwrap();
    let held = validate(&rows, &Catalog::builtin(), Assume::Stack);
    let inside = held
        .rows
        .iter()
        .filter(|r| r.within_interval == Some(true))
        .count();
    assert!(
        inside >= 5,
        "{inside} of {} inside their 80 % intervals",
        held.rows.len()
    );
}

#[test]
fn deepseek_v3_on_gb200_in_v25_05_ran_the_unfused_attention_its_transformer_engine_fell_back_to() {
    // Regression for the 69 % miss: read with the stack's fused default the three rows were
    // priced at 10.5 s against 34.2 s; the recorded unfused kernel (and the recomputation it
    // then needs to fit) brings them to about 21 s.
    for r in report()
        .rows
        .iter()
        .filter(|r| r.run_id.starts_with("dgxc_v25.05.04_DeepSeekV3_gb200"))
    {
        assert_eq!(
            r.assumed["attention_kernel"].source,
            Source::Recorded,
            "{}",
            r.run_id
        );
        let predicted = r.predicted_step_time_s.unwrap();
        assert!(
            (18.0..26.0).contains(&predicted),
            "{}: {predicted:.2} s",
            r.run_id
        );
    }
}
