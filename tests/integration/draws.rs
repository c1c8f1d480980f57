//! `--uncertainty` and `plan --sensitivity`: rankings across drawn assumptions are
//! reproducible, sum to at most one and agree between the engines; sensitivity rows move the
//! way their mechanisms say, in swing order; the tornado plot draws them.

use crate::{clustersweep, stderr, temp_file};
use clustersweep::analysis::draws::{plan_ranking, sensitivity, sweep_ranking, DrawOptions};
use clustersweep::analysis::plan::{plan, PlanOptions, PlanReport};
use clustersweep::engine::search::{Objective, SearchSpace};
use clustersweep::engine::sweep::driver::{run_sweep, Adapters, Backend, SweepOptions};
use clustersweep::input::catalog::assumptions::{apply, with_resolved_families, Assumption};
use clustersweep::input::catalog::Catalog;
use clustersweep::input::scenario::ScenarioFile;
use clustersweep::model::run::estimate;
use serde_json::Value;

/// LLaMA 3 8B on three accelerators and three sizes under a budget: a plan in seconds.
const PLAN: &str = r#"
[model]
preset = "llama3-8b"
[training]
global_batch = 512
tokens = 1e12
dtype = "bf16"
[cluster]
pricing = "rental"
[search]
accelerators = ["a100-80gb", "h100-sxm", "mi300x"]
counts = [32, 64, 128]
tp = [1, 2, 4, 8]
pp = [1, 2]
microbatch = [1, 2]
zero = [1, 3]
[constraints]
budget_usd = 2e6
"#;

/// LLaMA 3 8B on 64 H100s: a sweep of 16 layouts.
const SWEEP: &str = r#"
[model]
preset = "llama3-8b"
[training]
global_batch = 256
[search]
accelerators = ["h100-sxm"]
counts = [64]
tp = [1, 2, 4, 8]
pp = [1, 2]
microbatch = [1, 2]
"#;

fn plan_file() -> ScenarioFile {
    ScenarioFile::parse(PLAN, "draws").unwrap()
}

fn options(top: usize) -> PlanOptions {
    PlanOptions {
        objective: Objective::Time,
        backend: Backend::Cpu,
        pareto: false,
        top,
    }
}

fn central(top: usize) -> PlanReport {
    plan(&plan_file(), &Catalog::builtin(), &options(top), "draws").unwrap()
}

fn draws(draws: usize, seed: u64) -> DrawOptions {
    DrawOptions {
        draws,
        seed,
        confidence: 0.8,
    }
}

#[test]
fn plan_p_best_is_reproducible_by_seed_and_sums_to_at_most_one() {
    let catalog = Catalog::builtin();
    let report = central(8);
    assert!(report.plans.len() >= 4, "the test plan ranks several plans");
    let rank = |seed| {
        plan_ranking(
            &plan_file(),
            &catalog,
            &report,
            Objective::Time,
            None,
            &draws(64, seed),
            "draws",
        )
        .unwrap()
    };
    let a = rank(7);
    assert_eq!(a, rank(7), "the same seed gives the same ranking");
    assert_eq!(a.p_best.len(), report.plans.len());
    let total: f64 = a.p_best.iter().sum();
    assert!(total <= 1.0 + 1e-12, "p_best sums to {total}");
    assert!(a.p_best.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(a.tied_with_first.contains(&0));
    // A plan more than twice as slow as the first is never best: no assumption's range moves
    // one plan by 2x against another.
    let first = report.plans[0].time_to_train_days;
    for (p, share) in report.plans.iter().zip(&a.p_best) {
        if p.time_to_train_days > 2.0 * first {
            assert_eq!(*share, 0.0, "{} x {}", p.layout.count, p.layout.accelerator);
        }
    }
}

/// Needs a GPU adapter: skips without one unless REQUIRE_GPU=1.
mod gpu_or_skip {
    use super::*;
    use crate::gpu_or_skip::engine;
    use clustersweep::engine::sweep::driver::Ranking;

    /// f32 against f64 can only flip near-ties: at most one of `draws` draws' winner each way.
    fn assert_one_draw_apart(cpu: &Ranking, gpu: &Ranking, draws: usize) {
        for (c, g) in cpu.p_best.iter().zip(&gpu.p_best) {
            assert!(
                (c - g).abs() <= 1.0 / draws as f64 + 1e-12,
                "cpu {:?} gpu {:?}",
                cpu.p_best,
                gpu.p_best
            );
        }
    }

    #[test]
    fn sweep_p_best_agrees_between_the_cpu_and_the_gpu_for_one_seed() {
        let Some(gpu) = engine() else { return };
        let file = ScenarioFile::parse(
            r#"
    [model]
    preset = "llama3-8b"
    [training]
    global_batch = 256
    [search]
    accelerators = ["h100-sxm", "b200"]
    counts = [64]
    tp = [1, 2, 4, 8]
    pp = [1, 2, 4]
    microbatch = [1, 2]
    zero = [1, 3]
    "#,
            "gpu-draws",
        )
        .unwrap();
        let catalog = Catalog::builtin();
        let space = SearchSpace::resolve(&file, &catalog, Objective::Time, "gpu-draws").unwrap();
        let report = run_sweep(
            &space,
            &SweepOptions {
                backend: Backend::Cpu,
                adapters: Adapters::Best,
                top: 8,
                shard: None,
                progress: false,
                prune: true,
            },
        )
        .unwrap();
        let opts = draws(40, 3);
        let cpu = sweep_ranking(
            &file,
            &catalog,
            &report,
            Objective::Time,
            None,
            &opts,
            "gpu-draws",
        )
        .unwrap();
        let on_gpu = sweep_ranking(
            &file,
            &catalog,
            &report,
            Objective::Time,
            Some(&gpu),
            &opts,
            "gpu-draws",
        )
        .unwrap();
        assert_one_draw_apart(&cpu, &on_gpu, 40);
        assert!(cpu.p_best.iter().sum::<f64>() <= 1.0 + 1e-12);
    }

    #[test]
    fn plan_p_best_agrees_between_the_cpu_and_the_gpu_for_one_seed() {
        // The plan's draws on the GPU: each plan's pair space per draw, its constraints held on
        // the shader's metrics (the test plan has a budget that some draws break).
        let Some(gpu) = engine() else { return };
        let catalog = Catalog::builtin();
        let report = central(8);
        let opts = draws(70, 5);
        let rank = |engine| {
            plan_ranking(
                &plan_file(),
                &catalog,
                &report,
                Objective::Time,
                engine,
                &opts,
                "draws",
            )
            .unwrap()
        };
        let (cpu, on_gpu) = (rank(None), rank(Some(&gpu)));
        // 70 draws: more than one chunk of draws resolved and priced together.
        assert_one_draw_apart(&cpu, &on_gpu, 70);
        assert!(on_gpu.p_best.iter().sum::<f64>() <= 1.0 + 1e-12);
        assert!(on_gpu.p_best.iter().any(|p| *p > 0.0));
    }
}

#[test]
fn sensitivity_rows_are_in_swing_order_and_move_as_their_mechanisms_say() {
    let catalog = Catalog::builtin();
    let report = central(1);
    let rows = sensitivity(&plan_file(), &catalog, &options(1), &report, "draws").unwrap();
    assert_eq!(rows.len(), catalog.assumptions.len(), "one row per assumption");
    for w in rows.windows(2) {
        assert!(
            w[0].swing_days >= w[1].swing_days,
            "{} before {}",
            w[0].assumption,
            w[1].assumption
        );
    }
    let row = |id: &str| rows.iter().find(|r| r.assumption == id).unwrap();
    let days = |id: &str| {
        let r = row(id);
        (
            r.time_to_train_days_low.unwrap(),
            r.time_to_train_days_high.unwrap(),
        )
    };
    // More failures or slower restarts never train faster; faster checkpoints or higher
    // efficiency never train slower (the planner may pick another plan at either end).
    let (low, high) = days("failure_rate");
    assert!(high >= low, "failure rate: {low} -> {high}");
    let (low, high) = days("restart");
    assert!(high >= low, "restart: {low} -> {high}");
    let (low, high) = days("checkpoint_bandwidth");
    assert!(high <= low, "checkpoint bandwidth: {low} -> {high}");
    let (low, high) = days("model_error");
    assert!(high < low, "efficiency: {low} -> {high}");
    // The facility values are reported at both ends.
    let r = row("restart");
    assert_eq!(r.low_value, Some(catalog.facility.restart_minutes * r.low));
    assert_eq!(r.high_value, Some(catalog.facility.restart_minutes * r.high));
}

/// Regression: a scenario that set `restart_minutes` itself still had its restart row priced
/// at the catalog's 5-20 minutes, though no draw varies a value the scenario sets.
#[test]
fn sensitivity_leaves_a_value_the_scenario_sets_alone() {
    let text = PLAN.replace("[cluster]\n", "[cluster]\nrestart_minutes = 1\n");
    let file = ScenarioFile::parse(&text, "draws").unwrap();
    let catalog = Catalog::builtin();
    let report = plan(&file, &catalog, &options(1), "draws").unwrap();
    let rows = sensitivity(&file, &catalog, &options(1), &report, "draws").unwrap();
    let row = |id: &str| rows.iter().find(|r| r.assumption == id).unwrap();
    let restart = row("restart");
    assert!(restart.set_in_scenario);
    assert_eq!(restart.swing_days, 0.0);
    assert_eq!(
        restart.time_to_train_days_low,
        Some(report.plans[0].time_to_train_days)
    );
    // The others still move.
    assert!(!row("model_error").set_in_scenario);
    assert!(row("model_error").swing_days > 0.0);
}

/// An FP8 GEMM runs at `gemm * low_precision_gemm` of peak; scaling both by the model's error
/// moved FP8 steps by the square of the factor (the default plan's 80 % range came out 1.28x
/// where the interval says 1.15x).
#[test]
fn the_model_error_assumption_scales_an_fp8_step_once_not_twice() {
    let catalog = Catalog::builtin();
    let spec = catalog
        .assumptions
        .iter()
        .find(|a| a.from_model_error)
        .expect("a model-error assumption");
    let file = ScenarioFile::parse(
        r#"
[model]
preset = "llama3-70b"
[training]
global_batch = 512
dtype = "fp8"
[search]
accelerators = ["h100-sxm"]
counts = [256]
tp = [8]
pp = [4]
microbatch = [1]
zero = [1]
"#,
        "fp8",
    )
    .unwrap();
    let step = |c: &Catalog| {
        let space = SearchSpace::resolve(&file, c, Objective::Time, "fp8").unwrap();
        let (i, cand) = (0..space.size)
            .find_map(|i| space.candidate(i).ok().map(|c| (i, c)))
            .unwrap();
        let _ = i;
        let a = &space.accelerators[cand.accelerator];
        estimate(
            &space.model,
            &space.training_for(&cand),
            &a.hardware,
            &a.economics,
            &cand.layout,
        )
        .step_time_s
    };
    let factor = 0.85;
    let a = Assumption::from_step_time_interval(spec, 0.8, 1.0 / factor, None);
    let mut slow = with_resolved_families(&catalog);
    apply(&mut slow, &a, a.low);
    let ratio = step(&slow) / step(&catalog);
    assert!(
        ratio > 1.0 && ratio <= 1.0 / factor + 1e-9,
        "efficiency x{factor} moved the FP8 step x{ratio}"
    );
}

#[test]
fn plan_sensitivity_and_uncertainty_reach_the_json_and_the_tornado_plot() {
    let scenario = temp_file("draws-cli", "plan.toml", PLAN);
    let svg = scenario.with_file_name("tornado.svg");
    let o = clustersweep(&[
        "plan",
        scenario.to_str().unwrap(),
        "--backend",
        "cpu",
        "--uncertainty",
        "--draws",
        "32",
        "--seed",
        "5",
        "--plot-sensitivity",
        svg.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["sensitivity"]
        .as_array()
        .expect("--plot-sensitivity implies --sensitivity");
    for r in rows {
        for key in [
            "assumption",
            "low",
            "high",
            "plan_low",
            "plan_high",
            "time_to_train_days_low",
            "time_to_train_days_high",
        ] {
            assert!(r.get(key).is_some(), "sensitivity row without {key}: {r}");
        }
    }
    assert_eq!(v["uncertainty"]["draws"], 32);
    assert_eq!(v["uncertainty"]["seed"], 5);
    let p_best: f64 = v["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["p_best"].as_f64().unwrap())
        .sum();
    assert!(p_best <= 1.0 + 1e-12);
    // The tornado: one blue (low end) and one orange (high end) bar per assumption.
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    let bars = |fill: &str| {
        doc.descendants()
            .filter(|n| {
                n.has_tag_name("rect") && n.attribute("fill").is_some_and(|f| f.eq_ignore_ascii_case(fill))
            })
            .count()
    };
    assert_eq!(bars("#1F77B4"), rows.len());
    assert_eq!(bars("#FF7F0E"), rows.len());
    for r in rows {
        assert!(
            text.contains(r["assumption"].as_str().unwrap()),
            "the plot names every assumption"
        );
    }

    // The table says which plans are tied and what would change the answer.
    let path = scenario.to_str().unwrap();
    let table = table_of(&[
        "plan",
        path,
        "--backend",
        "cpu",
        "--uncertainty",
        "--draws",
        "32",
        "--sensitivity",
    ]);
    assert!(table.contains("p_best"), "{table}");
    assert!(
        table.contains("of 32 draws") && table.contains("(seed 1)"),
        "{table}"
    );
    assert!(table.contains("What would change the answer"), "{table}");
}

#[test]
fn draw_flags_out_of_range_exit_2_naming_the_flag() {
    let scenario = temp_file("draws-flags", "plan.toml", PLAN);
    let path = scenario.to_str().unwrap();
    for (args, flag) in [
        (vec!["plan", path, "--uncertainty", "--draws", "0"], "--draws"),
        (vec!["plan", path, "--confidence", "1.5"], "--confidence"),
        (
            vec!["plan", path, "--plot-sensitivity", "tornado.png"],
            "--plot-sensitivity",
        ),
    ] {
        let o = clustersweep(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn sweep_uncertainty_marks_the_top_layouts() {
    let scenario = temp_file("draws-sweep", "sweep.toml", SWEEP);
    let o = clustersweep(&[
        "sweep",
        scenario.to_str().unwrap(),
        "--backend",
        "cpu",
        "--top",
        "5",
        "--uncertainty",
        "--draws",
        "24",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let top = v["top"].as_array().unwrap();
    assert!(top
        .iter()
        .all(|t| t["p_best"].is_number() && t["tied_with_best"].is_boolean()));
    assert_eq!(v["uncertainty"]["p_best"].as_array().unwrap().len(), top.len());
    // The best is marked tied only when another is tied with it.
    let tied = v["uncertainty"]["tied_with_first"].as_array().unwrap().len();
    assert_eq!(top[0]["tied_with_best"], tied > 1);
}

/// Regression: plan's table headed its intervals "days (80 %)" whatever `--confidence` said, and
/// sweep's table showed no interval at all.
#[test]
fn tables_head_their_intervals_with_the_confidence_asked_for() {
    let scenario = temp_file("draws-confidence", "plan.toml", PLAN);
    let path = scenario.to_str().unwrap();
    let table = table_of(&["plan", path, "--backend", "cpu", "--confidence", "0.9"]);
    assert!(
        table.contains("days (90 %)") && !table.contains("days (80 %)"),
        "{table}"
    );
    let words = table.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("90 % interval of the model's error"), "{table}");

    let sweep = temp_file("draws-confidence", "sweep.toml", SWEEP);
    let path = sweep.to_str().unwrap();
    let table = table_of(&["sweep", path, "--backend", "cpu", "--top", "2", "--wide"]);
    assert!(table.contains("time to train (80 %)"), "{table}");
    // "13.5 days (11-16)": the value, then its interval in the same unit.
    assert!(
        table.lines().any(|l| l.contains(" days (") || l.contains(" h (")),
        "{table}"
    );
}

/// What a command that must succeed prints.
fn table_of(args: &[&str]) -> String {
    let o = clustersweep(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The CSV exports carry how sure each row is, in columns that are there whatever the flags.
#[test]
fn csv_rows_carry_their_interval_and_p_best() {
    let scenario = temp_file("draws-csv", "plan.toml", PLAN);
    let path = scenario.to_str().unwrap();
    let column = |text: &str, name: &str| -> Vec<String> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let at = reader
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name}"));
        reader.records().map(|r| r.unwrap()[at].to_string()).collect()
    };
    let ranked = table_of(&[
        "plan",
        path,
        "--backend",
        "cpu",
        "--uncertainty",
        "--draws",
        "16",
        "--csv",
    ]);
    let p_best: Vec<f64> = column(&ranked, "p_best")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        !p_best.is_empty() && p_best.iter().sum::<f64>() <= 1.0 + 1e-12,
        "{ranked}"
    );
    let days: Vec<f64> = column(&ranked, "time_to_train_days")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    let low: Vec<f64> = column(&ranked, "time_to_train_days_low")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    let high: Vec<f64> = column(&ranked, "time_to_train_days_high")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    for ((d, l), h) in days.iter().zip(&low).zip(&high) {
        assert!(l < d && d < h, "{l} < {d} < {h}");
    }
    // Without --uncertainty the column is there, empty.
    let plain = table_of(&["plan", path, "--backend", "cpu", "--csv"]);
    assert!(column(&plain, "p_best").iter().all(String::is_empty), "{plain}");

    let sweep = temp_file("draws-csv", "sweep.toml", SWEEP);
    let sweep = sweep.to_str().unwrap();
    let ranked = table_of(&[
        "sweep",
        sweep,
        "--backend",
        "cpu",
        "--top",
        "4",
        "--uncertainty",
        "--draws",
        "16",
        "--csv",
    ]);
    assert_eq!(column(&ranked, "p_best").len(), 4, "{ranked}");
    assert!(
        column(&ranked, "time_to_train_s_low")
            .iter()
            .all(|v| v.parse::<f64>().is_ok()),
        "{ranked}"
    );
}
