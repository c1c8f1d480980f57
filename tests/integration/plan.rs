//! `clustersweep plan` and `init`: constraints hold, the Pareto set is right, the plots parse.

use crate::{clustersweep, stderr, stdout, temp_file, LAYOUT_KEYS};
use clustersweep::analysis::plan::{plan, PlanOptions, PlanReport, DEFAULT_PLAN};
use clustersweep::engine::search::{Objective, SearchSpace};
use clustersweep::engine::sweep::driver::Backend;
use clustersweep::input::catalog::Catalog;
use clustersweep::input::scenario::ScenarioFile;
use clustersweep::model::run::{estimate, Estimate};
use serde_json::Value;
use std::process::Output;

/// LLaMA 3 8B on four accelerators and four sizes: small enough to enumerate every layout.
const SMALL_PLAN: &str = r#"
[model]
preset = "llama3-8b"
[training]
global_batch = 512
tokens = 1e12
dtype = "bf16"
[cluster]
pricing = "rental"
[search]
accelerators = ["a100-80gb", "h100-sxm", "mi300x", "b200"]
counts = [16, 32, 64, 128]
tp = [1, 2, 4, 8]
pp = [1, 2, 4]
cp = [1, 2]
microbatch = [1, 2]
interleave = [1, 2]
zero = [1, 3]
"#;

fn small_plan(constraints: &str) -> ScenarioFile {
    ScenarioFile::parse(&format!("{SMALL_PLAN}\n[constraints]\n{constraints}"), "small").unwrap()
}

fn run(file: &ScenarioFile, objective: Objective, backend: Backend) -> PlanReport {
    let options = PlanOptions {
        objective,
        backend,
        pareto: true,
        top: usize::MAX,
    };
    plan(file, &Catalog::builtin(), &options, "test").unwrap()
}

/// Every layout of the small plan's space that fits, evaluated one by one.
fn every_layout(file: &ScenarioFile) -> Vec<Estimate> {
    let space = SearchSpace::resolve(file, &Catalog::builtin(), Objective::Time, "small").unwrap();
    (0..space.size)
        .filter_map(|i| space.candidate(i).ok())
        .map(|c| {
            let a = &space.accelerators[c.accelerator];
            estimate(
                &space.model,
                &space.training_for(&c),
                &a.hardware,
                &a.economics,
                &c.layout,
            )
        })
        .filter(|e| e.fits)
        .collect()
}

fn within(e: &Estimate, power_mw: f64, budget_usd: f64, max_days: f64) -> bool {
    e.power_mw <= power_mw && e.cost_usd <= budget_usd && e.time_to_train_s / 86400.0 <= max_days
}

fn triple(e: &Estimate) -> [f64; 3] {
    [e.time_to_train_s, e.cost_usd, e.energy_mwh]
}

fn dominated(a: [f64; 3], by: [f64; 3]) -> bool {
    by.iter().zip(&a).all(|(b, a)| b <= a) && by != a
}

#[test]
fn reported_plans_never_break_a_constraint() {
    let catalog = Catalog::builtin();
    // Loose to tight; each limit binds in some of them.
    for (power_mw, budget_usd, max_days, max_accelerators) in [
        (1.0, 1e6, 400.0, 128),
        (0.2, 5e5, 200.0, 64),
        (0.1, 2e5, 60.0, 128),
        (0.05, 1e5, 100.0, 32),
    ] {
        let file = small_plan(&format!(
            "power_mw = {power_mw}\nbudget_usd = {budget_usd}\nmax_days = {max_days}\nmax_accelerators = {max_accelerators}"
        ));
        for objective in [Objective::Time, Objective::Cost, Objective::Energy] {
            let r = plan(
                &file,
                &catalog,
                &PlanOptions {
                    objective,
                    backend: Backend::Cpu,
                    pareto: true,
                    top: usize::MAX,
                },
                "test",
            )
            .unwrap();
            let all = r
                .plans
                .iter()
                .chain(r.pareto.as_ref().unwrap())
                .chain(&r.per_accelerator);
            for p in all {
                let e = &p.estimate;
                assert!(
                    within(e, power_mw, budget_usd, max_days) && p.layout.count <= max_accelerators,
                    "{} x {} breaks ({power_mw} MW, ${budget_usd}, {max_days} days, {max_accelerators}): {} MW, ${}, {} days",
                    p.layout.count,
                    p.layout.accelerator,
                    e.power_mw,
                    e.cost_usd,
                    p.time_to_train_days
                );
                assert!(e.fits);
            }
            let d = r.dropped;
            assert_eq!(
                r.pairs,
                r.plans.len() as u64 + d.power + d.budget + d.time + d.no_layout
            );
            let values: Vec<f64> = r
                .plans
                .iter()
                .map(|p| clustersweep::engine::sweep::objective_value(objective, &p.estimate))
                .collect();
            assert!(
                values.windows(2).all(|w| w[0] <= w[1]),
                "{objective:?} ranking {values:?}"
            );
        }
    }
}

#[test]
fn pareto_set_matches_brute_force_on_a_small_space() {
    let (power_mw, budget_usd, max_days) = (0.15, 3e5, 150.0);
    let file = small_plan(&format!(
        "power_mw = {power_mw}\nbudget_usd = {budget_usd}\nmax_days = {max_days}"
    ));
    let feasible: Vec<[f64; 3]> = every_layout(&file)
        .iter()
        .filter(|e| within(e, power_mw, budget_usd, max_days))
        .map(triple)
        .collect();
    assert!(
        feasible.len() > 1000,
        "the space is too small to test: {}",
        feasible.len()
    );
    let mut brute: Vec<[f64; 3]> = feasible
        .iter()
        .filter(|a| !feasible.iter().any(|b| dominated(**a, *b)))
        .copied()
        .collect();
    brute.sort_by(|a, b| a.partial_cmp(b).unwrap());
    brute.dedup();

    let report = run(&file, Objective::Time, Backend::Cpu);
    let pareto = report.pareto.unwrap();
    let mut planned: Vec<[f64; 3]> = pareto.iter().map(|p| triple(&p.estimate)).collect();
    planned.sort_by(|a, b| a.partial_cmp(b).unwrap());
    planned.dedup();
    assert!(brute.len() >= 3, "a trivial front: {brute:?}");
    // Non-dominated against every feasible layout, and complete.
    for p in &planned {
        assert!(!feasible.iter().any(|f| dominated(*p, *f)), "{p:?} is dominated");
    }
    assert_eq!(planned, brute);
}

#[test]
fn a_tight_power_envelope_binds_and_says_so() {
    // 1 MW: several hundred accelerators, few failures. More accelerators train faster, so the
    // fastest plan uses (nearly) all the power; the planner picks the counts itself.
    let text = r#"
[model]
preset = "llama3-8b"
[training]
global_batch = 1024
tokens = 1e12
[cluster]
pricing = "rental"
[constraints]
power_mw = 1.0
[search]
accelerators = ["h100-sxm"]
pp = [1, 2, 4]
cp = [1]
microbatch = [1, 2]
interleave = [1]
"#;
    let file = ScenarioFile::parse(text, "power").unwrap();
    let r = run(&file, Objective::Time, Backend::Cpu);
    let winner = &r.plans[0];
    assert!(
        winner.binding_constraint.text.starts_with("power-bound"),
        "{}",
        winner.binding_constraint.text
    );
    assert!(winner.estimate.power_mw > 0.9 && winner.estimate.power_mw <= 1.0);
    // Bought, fewer accelerators cost less: the cheapest plan is the smallest, slowest one. Set
    // the deadline at its time, and it is bound by the deadline.
    let bought = |constraints: &str| {
        let text = format!(
            "{}\n[constraints]\n{constraints}",
            SMALL_PLAN.replace("rental", "capex")
        );
        ScenarioFile::parse(&text, "bought").unwrap()
    };
    let cheapest = &run(&bought("power_mw = 0.1"), Objective::Cost, Backend::Cpu).plans[0];
    let deadline_days = cheapest.time_to_train_days * 1.001;
    let r = run(
        &bought(&format!("power_mw = 0.1\nmax_days = {deadline_days}")),
        Objective::Cost,
        Backend::Cpu,
    );
    assert_eq!(r.plans[0].layout, cheapest.layout);
    assert!(
        r.plans[0].binding_constraint.text.starts_with("deadline-bound"),
        "{}",
        r.plans[0].binding_constraint.text
    );
}

#[test]
fn plan_chooses_counts_itself_from_the_power_envelope() {
    // No counts and no [cluster] accelerator: the planner sizes the cluster.
    let text = r#"
[model]
preset = "llama3-70b"
[training]
global_batch = 1024
tokens = 15e12
[cluster]
pricing = "capex"
[constraints]
power_mw = 20
budget_usd = 1e9
[search]
accelerators = ["h100-sxm", "b200"]
tp = [4, 8]
cp = [1]
microbatch = [1]
interleave = [1]
zero = [1]
"#;
    let file = ScenarioFile::parse(text, "sized").unwrap();
    let r = run(&file, Objective::Time, Backend::Cpu);
    let counts: Vec<u64> = r.scaling.iter().map(|p| p.layout.count).collect();
    assert!(
        counts.contains(&64) && counts.iter().any(|c| *c > 4096),
        "{counts:?}"
    );
    assert!(r
        .plans
        .iter()
        .all(|p| p.estimate.power_mw <= 20.0 && p.estimate.cost_usd <= 1e9));
    assert!(r.plans[0].layout.count >= 4096, "{}", r.plans[0].layout.count);
}

#[test]
fn default_plan_names_a_winner_per_accelerator_in_seconds() {
    let clock = std::time::Instant::now();
    let o = clustersweep(&["plan", "--backend", "cpu", "--json"]);
    let elapsed_s = clock.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", stderr(&o));
    // The issue's bar is a minute on the 2-core CI machine; it takes about a second.
    assert!(elapsed_s < 60.0, "default plan took {elapsed_s:.1} s");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let plans = v["plans"].as_array().unwrap();
    assert!(!plans.is_empty());
    for p in plans.iter().chain(v["per_accelerator"].as_array().unwrap()) {
        for key in [
            "step_time_s",
            "tokens_per_s",
            "mfu_fraction",
            "memory_per_accelerator_bytes",
            "fits",
            "breakdown",
            "memory",
            "power_mw",
            "cost_usd",
            "time_to_train_days",
            "energy_mwh",
            "goodput_fraction",
            "binding_constraint",
        ] {
            assert!(p.get(key).is_some(), "missing {key} in {p}");
        }
        for key in LAYOUT_KEYS {
            assert!(p["layout"].get(key).is_some(), "missing layout.{key} in {p}");
        }
        // How sure: the model's held-out error around the plan's step and time to train.
        for (interval, value) in [
            ("step_time_s_interval", p["step_time_s"].as_f64().unwrap()),
            ("time_to_train_s_interval", p["time_to_train_s"].as_f64().unwrap()),
        ] {
            let (low, high) = (p[interval][0].as_f64().unwrap(), p[interval][1].as_f64().unwrap());
            assert!(
                low < value && value < high,
                "{interval} [{low}, {high}] around {value}"
            );
        }
        let binding = &p["binding_constraint"];
        assert!(
            binding["kind"].is_string() && binding["text"].is_string(),
            "{binding}"
        );
        assert!(p["power_mw"].as_f64().unwrap() <= 5000.0);
        assert!(p["cost_usd"].as_f64().unwrap() <= 100e9);
        assert!(p["time_to_train_days"].as_f64().unwrap() <= 365.0);
    }
    let ids: Vec<&str> = v["per_accelerator"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["layout"]["accelerator"].as_str().unwrap())
        .collect();
    assert!(
        ids.len() >= 8 && ids.contains(&"gb200") && ids.contains(&"mi355x"),
        "{ids:?}"
    );
    // fp8 only: accelerators without it are left out, and the report says why.
    let skipped = v["skipped_accelerators"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("a100-80gb: no fp8")),
        "{skipped:?}"
    );
    assert!(v.get("pareto").is_some_and(Value::is_null));

    let csv = clustersweep(&["plan", "--backend", "cpu", "--csv", "--top", "3"]);
    let text = stdout(&csv);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.starts_with("rank,accelerator,scale_up_domain,scale_out_gbps,pod_size,pod_oversubscription,topology,stack,count,tp,pp,dp,cp,ep,"),
        "{text}"
    );
    assert!(text.lines().next().unwrap().ends_with(
        ",goodput_fraction,binding_constraint,time_to_train_days_low,time_to_train_days_high,p_best,tied_with_best,set"
    ));
    // Regression (issue 13): --pareto --csv printed the ranked plans only.
    let with_pareto = stdout(&clustersweep(&[
        "plan",
        "--backend",
        "cpu",
        "--csv",
        "--top",
        "3",
        "--pareto",
    ]));
    let pareto_json: Value =
        serde_json::from_slice(&clustersweep(&["plan", "--backend", "cpu", "--json", "--pareto"]).stdout)
            .unwrap();
    let members = pareto_json["pareto"].as_array().unwrap().len();
    assert!(members > 0);
    assert_eq!(
        with_pareto.lines().filter(|l| l.ends_with(",pareto")).count(),
        members,
        "{with_pareto}"
    );
    assert_eq!(with_pareto.lines().filter(|l| l.ends_with(",ranked")).count(), 3);

    let table = clustersweep(&["plan", "--backend", "cpu"]);
    let out = stdout(&table);
    assert!(
        out.contains("The plan:") && out.contains("The best plan on each accelerator"),
        "{out}"
    );
    // The headline says how sure its time to train is (its prose wraps at 100 columns).
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("days to train (80 % interval of the model's error: "),
        "{out}"
    );
}

/// Circles per panel of the Pareto SVG and in its legend; plotters draws each panel as its own
/// group of elements after the panel's caption, and the legend after its heading, so points are
/// counted between the captions.
fn circles_per_panel(svg: &str) -> [usize; 4] {
    let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
    let headings = [
        "cost against time",
        "energy against time",
        "power against time",
        "accelerators",
    ];
    let mut part: Option<usize> = None;
    let mut counts = [0; 4];
    for node in doc.descendants() {
        if node.has_tag_name("text") {
            if let Some(i) = headings
                .iter()
                .position(|h| node.text().is_some_and(|t| t.trim().starts_with(h)))
            {
                part = Some(i);
            }
        }
        if node.has_tag_name("circle") {
            counts[part.expect("no circle before the first caption")] += 1;
        }
    }
    counts
}

/// The texts of an SVG.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

#[test]
fn plots_parse_with_one_point_per_pareto_member() {
    let dir = temp_file(
        "plots",
        "scenario.toml",
        &format!("{SMALL_PLAN}\n[constraints]\npower_mw = 0.2\nmax_days = 400\n"),
    );
    let pareto_svg = dir.with_file_name("pareto.svg");
    let scaling_svg = dir.with_file_name("scaling.svg");
    let breakdown_svg = dir.with_file_name("breakdown.svg");
    let o = clustersweep(&[
        "plan",
        dir.to_str().unwrap(),
        "--backend",
        "cpu",
        "--pareto",
        "--plot",
        pareto_svg.to_str().unwrap(),
        "--plot-scaling",
        scaling_svg.to_str().unwrap(),
        "--plot-breakdown",
        breakdown_svg.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let members = v["pareto"].as_array().unwrap();
    assert!(members.len() >= 3);
    let svg = std::fs::read_to_string(&pareto_svg).unwrap();
    let mut accelerators: Vec<&str> = members
        .iter()
        .map(|m| m["layout"]["accelerator"].as_str().unwrap())
        .collect();
    accelerators.sort();
    accelerators.dedup();
    let n = members.len();
    assert_eq!(circles_per_panel(&svg), [n, n, n, accelerators.len()]);
    // Every accelerator of the front is in the legend, every point is labelled with its
    // count, the axes say their units (the small plan's rental costs are thousands of
    // dollars, so not "$ billion") and the deadline and the power envelope are drawn.
    let labels = texts(&svg);
    for a in &accelerators {
        assert!(labels.iter().any(|t| t.trim() == *a), "{a} not in the legend");
    }
    for m in members {
        let count = m["layout"]["count"].as_u64().unwrap().to_string();
        let labelled = labels.iter().filter(|t| t.trim() == count).count();
        assert!(labelled >= 3, "count {count} labelled {labelled} times");
    }
    let max_cost = members
        .iter()
        .map(|m| m["cost_usd"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let (_, unit) = clustersweep::report::plot::money_unit(max_cost);
    assert_ne!(unit, "$ billion");
    for text in [unit, "MWh", "days", "deadline 400 d", "power 200 kW"] {
        assert!(svg.contains(text), "no {text:?} in the Pareto plot");
    }
    let dashed = roxmltree::Document::parse(&svg)
        .unwrap()
        .descendants()
        .filter(|n| n.has_tag_name("polyline") || n.has_tag_name("line") || n.has_tag_name("path"))
        .count();
    assert!(dashed > 0);

    // The scaling plot: one line per accelerator per panel, and one legend for both.
    let svg = std::fs::read_to_string(&scaling_svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    // Data lines are drawn 2 px wide, axes and ticks 1 px.
    let lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("2"))
        .count();
    assert_eq!(lines, 2 * 4, "4 accelerators in two panels");
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("circle")).count(), 4);

    // The breakdown: one bar segment per ranked plan and term it has, one label per plan.
    let svg = std::fs::read_to_string(&breakdown_svg).unwrap();
    let plans = v["plans"].as_array().unwrap();
    let segments: usize = plans
        .iter()
        .map(|p| {
            p["breakdown"]
                .as_object()
                .unwrap()
                .values()
                .filter(|s| s.as_f64().unwrap() > 0.0)
                .count()
        })
        .sum();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let bars = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .filter(|n| {
            n.attribute("fill")
                .is_some_and(|f| !f.eq_ignore_ascii_case("#FFFFFF"))
        })
        .count();
    assert_eq!(bars, segments);
    let labels = texts(&svg);
    for (i, p) in plans.iter().enumerate() {
        let prefix = format!(
            "{}. {} x {}",
            i + 1,
            p["layout"]["count"],
            p["layout"]["accelerator"].as_str().unwrap()
        );
        assert!(labels.iter().any(|t| t.starts_with(&prefix)), "no label {prefix}");
    }
    for term in ["forward", "backward"] {
        assert!(labels.iter().any(|t| t.trim() == term), "no {term} in the legend");
    }
}

/// Regression (issue 13): colours followed an accelerator's place among those a plan evaluated,
/// so the same accelerator changed colour between two plans.
#[test]
fn an_accelerator_keeps_its_colour_whatever_else_is_plotted() {
    use clustersweep::report::plot::colour;
    let h100 = colour("h100-sxm");
    assert_eq!(h100, colour("h100-sxm"));
    assert_ne!(h100, colour("b200"));
    // An accelerator a user catalog adds gets a colour from its id.
    assert_eq!(colour("my-accelerator"), colour("my-accelerator"));
}

#[test]
fn init_stargate_round_trips_through_plan() {
    let o = clustersweep(&["init", "stargate"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), DEFAULT_PLAN);
    let path = temp_file("init", "stargate.toml", &stdout(&o));
    let from_file = clustersweep(&[
        "plan",
        path.to_str().unwrap(),
        "--backend",
        "cpu",
        "--json",
        "--top",
        "1",
    ]);
    let built_in = clustersweep(&["plan", "--backend", "cpu", "--json", "--top", "1"]);
    let (a, b): (Value, Value) = (
        serde_json::from_slice(&from_file.stdout).unwrap(),
        serde_json::from_slice(&built_in.stdout).unwrap(),
    );
    assert_eq!(a["plans"], b["plans"]);
    for (name, args) in [
        ("estimate", vec!["estimate"]),
        ("sweep", vec!["sweep", "--backend", "cpu"]),
    ] {
        let o = clustersweep(&["init", name]);
        let path = temp_file("init", &format!("{name}.toml"), &stdout(&o));
        let mut args = args.clone();
        args.insert(1, path.to_str().unwrap());
        let run = clustersweep(&args);
        assert!(run.status.success(), "init {name}: {}", stderr(&run));
    }
}

#[test]
fn init_of_an_unknown_example_exits_2_naming_the_known_ones() {
    let o = clustersweep(&["init", "colossus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("stargate"), "{}", stderr(&o));
}

#[test]
fn plan_without_any_size_limit_says_what_to_give() {
    let text = "[model]\npreset = \"llama3-8b\"\n[training]\nglobal_batch = 512\n[search]\naccelerators = [\"h100-sxm\"]\n";
    let path = temp_file("no-limit", "plan.toml", text);
    let o = clustersweep(&["plan", path.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("power_mw") && err.contains("counts"), "{err}");
}

#[test]
fn bad_constraint_exits_2_naming_the_key() {
    let path = temp_file(
        "bad-constraint",
        "plan.toml",
        &format!("{SMALL_PLAN}\n[constraints]\npower_mw = -5\n"),
    );
    let o = clustersweep(&["plan", path.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("power_mw = -5"), "{}", stderr(&o));
    let path = temp_file(
        "bad-constraint",
        "typo.toml",
        &format!("{SMALL_PLAN}\n[constraints]\npower_gw = 5\n"),
    );
    let o = clustersweep(&["plan", path.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("power_gw"), "{}", stderr(&o));
}

/// Needs a GPU adapter: skips without one unless REQUIRE_GPU=1.
mod gpu_or_skip {
    use super::*;

    #[test]
    fn a_gpu_that_fails_mid_plan_is_finished_on_the_cpu_and_noted() {
        if crate::gpu_or_skip::engine().is_none() {
            return;
        }
        let path = temp_file(
            "plan-fault",
            "plan.toml",
            &format!("{SMALL_PLAN}\n[constraints]\npower_mw = 0.2\n"),
        );
        let run = |backend: &str, fault: Option<&str>| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_clustersweep"));
            command.args([
                "plan",
                path.to_str().unwrap(),
                "--backend",
                backend,
                "--json",
                "--top",
                "5",
            ]);
            if let Some(after) = fault {
                command.env("CLUSTERSWEEP_GPU_FAULT_AFTER", after);
            }
            let o = command.output().unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            serde_json::from_slice::<Value>(&o.stdout).unwrap()
        };
        let (cpu, faulty) = (run("cpu", None), run("gpu", Some("0")));
        let notes = faulty["notes"].as_array().unwrap();
        assert!(
            !notes.is_empty() && notes[0].as_str().unwrap().contains("the CPU finished"),
            "{notes:?}"
        );
        let pairs = |v: &Value| {
            v["plans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["layout"].clone(), p["step_time_s"].as_f64().unwrap()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&faulty), pairs(&cpu));
        // The CPU prunes what cannot beat a pair's fastest; the GPU and its fallback evaluate
        // every layout: both cover the whole space.
        let covered =
            |v: &Value| v["counts"]["evaluated"].as_u64().unwrap() + v["counts"]["pruned"].as_u64().unwrap();
        assert_eq!(covered(&faulty), covered(&cpu));
    }
}

#[test]
fn a_plan_can_search_software_stacks() {
    let text = stdout(&clustersweep(&["init", "stargate"])).replace(
        "[search]",
        "[search]\nstacks = [\"megatron-core-2024\", \"megatron-core-2025\"]\naccelerators = [\"gb200\", \"h200\"]",
    );
    let path = temp_file("plan-stacks", "s.toml", &text);
    let o = clustersweep(&["plan", path.to_str().unwrap(), "--backend", "cpu", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let plans = v["plans"].as_array().unwrap();
    assert!(!plans.is_empty());
    for p in plans {
        let stack = p["layout"]["stack"].as_str().unwrap();
        assert!(
            ["megatron-core-2024", "megatron-core-2025"].contains(&stack),
            "{stack}"
        );
    }
    let table = stdout(&clustersweep(&[
        "plan",
        path.to_str().unwrap(),
        "--backend",
        "cpu",
    ]));
    assert!(table.contains("on megatron-core-20"), "{table}");
}

/// Regression (issue 11): a plan too large for one machine could not be split. `plan --shard
/// K/N` plans a slice of the (accelerator, count) pairs and `plan --merge` finishes the plan
/// from the parts: the same report as one run, refusals for parts of another plan, a shard
/// given twice or missing, and `--allow-partial` to finish anyway with a note.
#[test]
fn a_plan_split_into_shards_and_merged_is_the_plan_of_one_run() {
    let scenario = temp_file(
        "plan-shards",
        "plan.toml",
        &format!("{SMALL_PLAN}\n[constraints]\nmax_days = 400\n"),
    );
    let scenario = scenario.to_str().unwrap();
    let json = |args: &[&str]| -> Value {
        let o = clustersweep(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let whole = json(&["plan", scenario, "--backend", "cpu", "--pareto", "--json"]);
    let mut parts = vec![];
    for k in 1..=3 {
        let part = json(&["plan", scenario, "--backend", "cpu", "--shard", &format!("{k}/3")]);
        assert_eq!(part["part"], "plan");
        assert_eq!(part["shard"], format!("{k}/3"));
        assert!(
            !part["results"].as_array().unwrap().is_empty(),
            "shard {k}/3 planned no pair"
        );
        let path = temp_file("plan-shards", &format!("part{k}.json"), &part.to_string());
        parts.push(path.to_str().unwrap().to_string());
    }
    let merge = |parts: &[&str], extra: &[&str]| {
        let mut args = vec!["plan", scenario, "--backend", "cpu", "--pareto", "--json"];
        args.extend(extra);
        args.push("--merge");
        args.extend(parts);
        clustersweep(&args)
    };
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    // The parts in any order give one run's report, all but its timing.
    let o = merge(&[p[2], p[0], p[1]], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let merged: Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "plans",
        "per_accelerator",
        "pareto",
        "pairs",
        "dropped",
        "counts",
        "skipped_accelerators",
    ] {
        assert_eq!(merged[key], whole[key], "{key}");
    }
    assert!(!whole["plans"].as_array().unwrap().is_empty());

    let refused = |o: &Output, says: &str| {
        assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
        assert!(stderr(o).contains(says), "{}", stderr(o));
    };
    refused(&merge(&[p[0], p[2]], &[]), "shard 2/3 missing");
    refused(&merge(&[p[0], p[0], p[1], p[2]], &[]), "are both shard 1/3");
    // A part of another plan: other constraints change the pairs' fingerprint.
    let other = temp_file(
        "plan-shards",
        "other.toml",
        &format!("{SMALL_PLAN}\n[constraints]\nmax_days = 200\n"),
    );
    let o = clustersweep(&[
        "plan",
        other.to_str().unwrap(),
        "--backend",
        "cpu",
        "--merge",
        p[0],
        p[1],
        p[2],
    ]);
    refused(&o, "planned from another scenario");
    // Finishing without a shard says what is missing and plans the rest.
    let o = merge(&[p[0], p[2]], &["--allow-partial"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let partial: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(partial["pairs"].as_u64().unwrap() < whole["pairs"].as_u64().unwrap());
    let notes = partial["notes"].to_string();
    assert!(notes.contains("shard 2/3 missing"), "{notes}");
    // A shard's output is for merging: flags that shape a report are refused.
    refused(
        &clustersweep(&["plan", scenario, "--shard", "1/3", "--csv"]),
        "--csv",
    );
    refused(
        &clustersweep(&["plan", scenario, "--shard", "4/3"]),
        "--shard 4/3",
    );
}
