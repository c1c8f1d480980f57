//! Mutation fuzzing of the inputs a planner hand-edits: valid scenarios, catalog entries and runs
//! rows with one or two numbers replaced by extreme values (zero, negative, huge, tiny, past 32
//! bits, NaN, infinity). Every input must give a clear error or a right answer: no panic, and
//! every number of an accepted estimate finite with the estimate's invariants.

use crate::data;
use clustersweep::analysis::validate::{parse_runs, validate, Assume};
use clustersweep::engine::search::{Objective, SearchSpace};
use clustersweep::engine::sweep::cpu::evaluate_range;
use clustersweep::input::catalog::Catalog;
use clustersweep::input::scenario::{ScenarioFile, DEFAULT_SCENARIO};
use clustersweep::model::run::{estimate, Estimate};
use proptest::prelude::*;

/// Values a spreadsheet or a typo puts where a number belongs.
const EXTREMES: [&str; 16] = [
    "0",
    "-1",
    "-0.0",
    "1",
    "0.5",
    "3",
    "65537",
    "4294967295",
    "4294967296",
    "1e308",
    "1e-300",
    "1e-308",
    "nan",
    "inf",
    "-inf",
    "1e19",
];

/// The text with the `which`-th `key = number` line's value replaced by `value`.
fn mutate(text: &str, which: usize, value: &str) -> String {
    let numeric: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            !l.starts_with('#')
                && l.split_once('=')
                    .map(|(_, v)| v.trim().starts_with(|c: char| c.is_ascii_digit() || c == '-'))
                    .unwrap_or(false)
        })
        .map(|(i, _)| i)
        .collect();
    if numeric.is_empty() {
        return text.to_string();
    }
    let target = numeric[which % numeric.len()];
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == target {
                let (key, rest) = l.split_once('=').unwrap();
                // Keep a trailing comment; replace the value up to it.
                let comment = rest.find('#').map(|at| &rest[at..]).unwrap_or("");
                format!("{key}= {value} {comment}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What an accepted estimate must satisfy.
fn check_estimate(e: &Estimate, tokens: f64) -> Result<(), TestCaseError> {
    prop_assert!(
        e.non_finite_term().is_none(),
        "non-finite {:?} in {e:?}",
        e.non_finite_term()
    );
    prop_assert!(e.step_time_s > 0.0, "step {}", e.step_time_s);
    prop_assert!(e.mfu > 0.0 && e.mfu <= 1.0, "mfu {}", e.mfu);
    prop_assert!(e.cost_usd >= 0.0 && e.energy_mwh >= 0.0 && e.power_mw >= 0.0);
    prop_assert!(e.goodput > 0.0 && e.goodput <= 1.0, "goodput {}", e.goodput);
    let expected = tokens / e.tokens_per_s / e.goodput;
    prop_assert!(
        ((e.time_to_train_s - expected) / expected).abs() < 1e-6,
        "time to train {} against tokens / throughput / goodput {expected}",
        e.time_to_train_s
    );
    for (k, v) in e.breakdown.terms() {
        prop_assert!(v >= 0.0, "{k} = {v}");
    }
    Ok(())
}

const SWEEP: &str = "[model]\npreset = \"mixtral-8x7b\"\nseq_len = 4096\n[training]\nglobal_batch = 512\n\
                     tokens = 1e12\n[cluster]\nprice_per_hour_usd = 2.0\nsite_power_mw = 1.0\n[search]\n\
                     accelerators = [\"h100-sxm\", \"gb200\"]\ncounts = [64, 1024]\ntp = [1, 2, 4]\nep = [1, 2, 8]\n\
                     microbatch = [1, 2]\n";

proptest! {
    // 1,500 cases each unless PROPTEST_CASES says otherwise (the default reads the environment).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1500),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_scenarios_give_an_error_or_a_finite_estimate(
        first in 0usize..64, second in 0usize..64,
        a in prop::sample::select(EXTREMES.to_vec()), b in prop::sample::select(EXTREMES.to_vec()),
        twice in prop::bool::ANY,
    ) {
        let mut text = mutate(DEFAULT_SCENARIO, first, a);
        if twice {
            text = mutate(&text, second, b);
        }
        let catalog = Catalog::builtin();
        let Ok(file) = ScenarioFile::parse(&text, "fuzz") else { return Ok(()) };
        let Ok(s) = file.resolve(&catalog, "fuzz") else { return Ok(()) };
        let e = estimate(&s.model, &s.training, &s.hardware, &s.economics, &s.layout);
        // The command refuses a non-finite estimate with the term's name (see `estimate`); a
        // finite one must be right.
        if e.non_finite_term().is_none() {
            check_estimate(&e, s.training.tokens)?;
        }
    }

    #[test]
    fn mutated_sweeps_resolve_or_refuse_and_price_finitely(
        which in 0usize..64, value in prop::sample::select(EXTREMES.to_vec()),
    ) {
        let text = mutate(SWEEP, which, value);
        let Ok(file) = ScenarioFile::parse(&text, "fuzz") else { return Ok(()) };
        let Ok(space) = SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "fuzz") else {
            return Ok(());
        };
        let end = space.size.min(3000);
        let p = evaluate_range(&space, 0..end, 5, false);
        prop_assert_eq!(p.counts.evaluated, end);
        // Pruning skips only what cannot enter: the same top, every layout counted once.
        let pruned = evaluate_range(&space, 0..end, 5, true);
        prop_assert_eq!(pruned.counts.evaluated + pruned.counts.pruned, end);
        let top = p.top.into_sorted();
        prop_assert_eq!(pruned.top.into_sorted(), top.clone());
        for r in top {
            prop_assert!(r.objective.is_finite() && r.objective > 0.0, "objective {}", r.objective);
        }
    }

    #[test]
    fn mutated_catalog_entries_are_refused_or_give_finite_estimates(
        which in 0usize..40, value in prop::sample::select(EXTREMES.to_vec()),
    ) {
        let entry = "[[accelerator]]\nid = \"fuzz-gpu\"\nname = \"fuzz\"\nyear = 2025\nefficiency = \"nvidia-hopper\"\n\
                     peak_tflops = { bf16 = 989.4 }\nhbm_gb = 80.0\nhbm_tb_per_s = 3.35\nscale_up_gb_per_s = 450.0\n\
                     scale_up_domain = 8\nscale_out_gbps = 400.0\nscale_up_latency_us = 3.4\nscale_out_latency_us = 14.0\n\
                     memory_efficiency = 0.89\nscale_up_efficiency = 0.82\nscale_out_efficiency = 0.94\ntdp_w = 700.0\n\
                     power_all_in_w = 1275.0\naverage_power_fraction = 0.75\nprice_usd = 30000.0\nprice_per_hour_usd = 2.0\n\
                     host_link_gb_per_s = 53.0\nhost_memory_gb = 256.0\n[facility]\npue = 1.2\nrestart_minutes = 10.0\n";
        let text = mutate(entry, which, value);
        let mut catalog = Catalog::builtin();
        if catalog.merge_text(&text, "fuzz").is_err() {
            return Ok(());
        }
        let scenario = DEFAULT_SCENARIO.replace("\"h100-sxm\"", "\"fuzz-gpu\"");
        let Ok(s) = ScenarioFile::parse(&scenario, "fuzz").unwrap().resolve(&catalog, "fuzz") else {
            return Ok(());
        };
        let e = estimate(&s.model, &s.training, &s.hardware, &s.economics, &s.layout);
        if e.non_finite_term().is_none() {
            check_estimate(&e, s.training.tokens)?;
        }
    }

    #[test]
    fn mutated_runs_rows_are_refused_or_priced_finitely(
        row in 1usize..60, column in 0usize..70, value in prop::sample::select(EXTREMES.to_vec()),
    ) {
        let text = std::fs::read_to_string(data("measured-runs.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let header = lines[0];
        let line = lines[1 + (row * 6) % (lines.len() - 1)];
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_bytes());
        let mut cells: Vec<String> = reader.records().next().unwrap().unwrap().iter().map(str::to_string).collect();
        let at = column % cells.len();
        cells[at] = value.to_string();
        let mut out = csv::Writer::from_writer(vec![]);
        out.write_record(&cells).unwrap();
        let mutated = format!("{header}\n{}", String::from_utf8(out.into_inner().unwrap()).unwrap());
        let Ok(rows) = parse_runs(&mutated, "fuzz") else { return Ok(()) };
        let report = validate(&rows, &Catalog::builtin(), Assume::Stack);
        for r in &report.rows {
            if let (Some(p), Some(err)) = (r.predicted_step_time_s, r.error_pct) {
                prop_assert!(p.is_finite() && p > 0.0 && err.is_finite(), "{p} {err}");
            }
        }
    }
}
