//! The model against the measured runs of tests/data/measured-runs.csv: the headline figure.

use crate::data;
use clustersweep::catalog::Catalog;
use clustersweep::validate::{read_runs, validate, ValidationReport};
use std::sync::OnceLock;

fn report() -> &'static ValidationReport {
    static REPORT: OnceLock<ValidationReport> = OnceLock::new();
    REPORT.get_or_init(|| {
        validate(
            &read_runs(&data("measured-runs.csv")).unwrap(),
            &Catalog::builtin(),
        )
    })
}

#[test]
fn mape_over_measured_step_times_is_at_most_10_percent() {
    let overall = report().overall.as_ref().unwrap();
    assert!(overall.rows >= 320, "{} rows priced", overall.rows);
    assert!(
        overall.mape_pct <= 10.0,
        "MAPE {:.2} % (worst {} at {:.1} %)",
        overall.mape_pct,
        overall.worst_run_id,
        overall.max_abs_error_pct
    );
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
        }
    }
    // Six NeMo 24.07 rows publish no model shape.
    assert_eq!(report().skipped, 6);
}

#[test]
fn measured_layouts_fit_in_memory() {
    // Every row ran on real hardware, so its layout fit. The one exception the model allows is
    // DeepSpeed ZeRO-3 of a 530B model on 640 GPUs at microbatch 4, which DeepSpeed ran with
    // its own memory-saving machinery (partitioned activation checkpoints).
    let misfits: Vec<&str> = report()
        .rows
        .iter()
        .filter(|r| r.fits == Some(false))
        .map(|r| r.run_id.as_str())
        .collect();
    assert!(
        misfits.iter().all(|id| id.starts_with("narayanan21_t2_ZeRO-3")),
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
