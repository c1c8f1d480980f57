//! `sweep`, `merge`, `adapters` and `bench` through the real binary.

use crate::{clustersweep, stderr, stdout, temp_file, LAYOUT_KEYS};
use serde_json::Value;

const SCENARIO: &str = r#"
[model]
preset = "llama3-8b"
[training]
tokens = 1e12
dtype = "bf16"
[cluster]
price_per_hour_usd = 2.5
[search]
accelerators = ["h100-sxm", "a100-80gb", "mi300x"]
counts = [64, 128, 256]
global_batch_tokens = 4194304
"#;

/// The CPU sweep of [`SCENARIO`] with its top 12, run once for every test that reads it.
/// Every layout evaluated: the reference that shards, the GPU and pruned sweeps are compared with.
fn whole_sweep() -> &'static Value {
    static WHOLE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    WHOLE.get_or_init(|| sweep_json("whole", &["--exhaustive"]))
}

fn sweep_json(test: &str, extra: &[&str]) -> Value {
    let path = temp_file(test, "sweep.toml", SCENARIO);
    let mut args = vec![
        "sweep",
        path.to_str().unwrap(),
        "--backend",
        "cpu",
        "--json",
        "--top",
        "12",
    ];
    args.extend_from_slice(extra);
    let o = clustersweep(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_pruned_sweep_gives_the_exhaustive_top_and_counts_what_it_skipped() {
    let whole = whole_sweep();
    let pruned = sweep_json("pruned", &[]);
    assert_eq!(pruned["top"], whole["top"]);
    let (c, size) = (&pruned["counts"], pruned["space_size"].as_u64().unwrap());
    let evaluated = c["evaluated"].as_u64().unwrap();
    let skipped = c["pruned"].as_u64().unwrap();
    assert!(skipped > 0, "{c}");
    assert_eq!(evaluated + skipped, size);
    assert!(c["valid"].as_u64().unwrap() < whole["counts"]["valid"].as_u64().unwrap());
    assert_eq!(whole["counts"]["pruned"], 0);
    // The table says what it skipped.
    let path = temp_file("pruned", "sweep.toml", SCENARIO);
    let o = clustersweep(&["sweep", path.to_str().unwrap(), "--backend", "cpu"]);
    assert!(
        stdout(&o).contains("more: bounds that could not enter the top"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn sweep_json_has_the_layout_and_every_estimate_field() {
    let v = whole_sweep();
    let top = v["top"].as_array().unwrap();
    assert_eq!(top.len(), 12);
    for key in LAYOUT_KEYS {
        assert!(top[0]["layout"].get(key).is_some(), "layout.{key}");
    }
    for key in [
        "step_time_s",
        "tokens_per_s",
        "mfu_fraction",
        "fits",
        "time_to_train_s",
        "energy_mwh",
        "cost_usd",
        "breakdown",
        "memory",
    ] {
        assert!(top[0].get(key).is_some(), "{key}");
    }
    for entry in top {
        let step = entry["step_time_s"].as_f64().unwrap();
        let interval = &entry["step_time_s_interval"];
        assert!(
            interval[0].as_f64().unwrap() < step && step < interval[1].as_f64().unwrap(),
            "{entry}"
        );
    }
    let c = &v["counts"];
    let sum = c["invalid_degrees"].as_u64().unwrap()
        + c["invalid_layout"].as_u64().unwrap()
        + c["invalid_dtype"].as_u64().unwrap()
        + c["did_not_fit"].as_u64().unwrap()
        + c["valid"].as_u64().unwrap();
    assert_eq!(sum, c["evaluated"].as_u64().unwrap());
    assert_eq!(c["evaluated"], v["space_size"]);
    assert!(v["elapsed_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["backend"], "cpu");
    // Ranked best first.
    let t: Vec<f64> = top
        .iter()
        .map(|e| e["time_to_train_s"].as_f64().unwrap())
        .collect();
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "{t:?}");
}

#[test]
fn estimate_of_a_top_layout_gives_the_same_numbers() {
    let v = whole_sweep();
    for entry in v["top"].as_array().unwrap().iter().take(3) {
        let l = &entry["layout"];
        let text = format!(
            "[model]\npreset = \"llama3-8b\"\n[training]\ntokens = 1e12\nglobal_batch = {}\n[cluster]\naccelerator = {}\ncount = {}\nprice_per_hour_usd = 2.5\n[layout]\ntp = {}\npp = {}\ncp = {}\nep = {}\nmicrobatch = {}\ninterleave = {}\nrecompute = {}\nsequence_parallel = {}\ntp_overlap = {}\nzero = {}\n",
            l["global_batch"], l["accelerator"], l["count"], l["tp"], l["pp"], l["cp"], l["ep"], l["microbatch"],
            l["interleave"], l["recompute"], l["sequence_parallel"], l["sequence_parallel"], l["zero"]
        );
        let path = temp_file("estimate-agrees", "one.toml", &text);
        let o = clustersweep(&["estimate", path.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let e: Value = serde_json::from_slice(&o.stdout).unwrap();
        for key in [
            "step_time_s",
            "tokens_per_s",
            "mfu_fraction",
            "memory_per_accelerator_bytes",
            "time_to_train_s",
            "energy_mwh",
            "cost_usd",
        ] {
            let (a, b) = (entry[key].as_f64().unwrap(), e[key].as_f64().unwrap());
            assert!(((a - b) / a).abs() <= 1e-4, "{key}: sweep {a} estimate {b}");
        }
        assert_eq!(e["layout"]["dp"], l["dp"]);
    }
}

#[test]
fn merged_shards_give_the_single_run_top_k() {
    let whole = whole_sweep();
    let mut parts = vec![];
    for k in 1..=3 {
        let part = sweep_json("shards", &["--shard", &format!("{k}/3"), "--exhaustive"]);
        let path = temp_file("shards", &format!("part-{k}.json"), &part.to_string());
        parts.push(path.to_str().unwrap().to_string());
    }
    let mut args = vec!["merge", "--json"];
    args.extend(parts.iter().map(String::as_str));
    let o = clustersweep(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let merged: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids = |v: &Value| {
        v["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&merged), ids(whole));
    assert_eq!(merged["counts"], whole["counts"]);
    // Merging a part twice is refused.
    let o = clustersweep(&["merge", &parts[0], &parts[0]]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("overlap"), "{}", stderr(&o));
}

#[test]
fn merges_refuse_missing_shards_and_shallower_parts_and_merges_of_merges_work() {
    let whole = whole_sweep();
    let scenario = temp_file("merge-checks", "sweep.toml", SCENARIO);
    let part = |k: u32, top: &str| {
        let shard = format!("{k}/3");
        let args = [
            "sweep",
            scenario.to_str().unwrap(),
            "--backend",
            "cpu",
            "--json",
            "--top",
            top,
            "--shard",
            &shard,
            "--exhaustive",
        ];
        let o = clustersweep(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let path = temp_file(
            "merge-checks",
            &format!("part-{k}-{top}.json"),
            &String::from_utf8(o.stdout).unwrap(),
        );
        path.to_str().unwrap().to_string()
    };
    let (p1, p2, p3) = (part(1, "12"), part(2, "12"), part(3, "12"));
    // Two of three parts: refused (it merged them with a note), unless asked.
    let o = clustersweep(&["merge", &p1, &p2]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unswept"), "{}", stderr(&o));
    let o = clustersweep(&["merge", "--allow-partial", "--json", &p1, &p2]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A merge of a merge with the rest is the whole run (it was refused as overlapping, and
    // its range spanned what it had not swept).
    let first_two = temp_file(
        "merge-checks",
        "first-two.json",
        &String::from_utf8(o.stdout).unwrap(),
    );
    let o = clustersweep(&["merge", "--json", first_two.to_str().unwrap(), &p3]);
    assert!(o.status.success(), "{}", stderr(&o));
    let merged: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(merged["counts"], whole["counts"]);
    assert_eq!(merged["slices"].as_array().unwrap().len(), 1);
    let o = clustersweep(&["merge", "--allow-partial", "--json", &p1, &p3]);
    let gap: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(gap["slices"].as_array().unwrap().len(), 2, "{}", gap["slices"]);
    // A part that kept its best 5 cannot be merged into a top 12 (the ranking would miss what
    // it dropped); by default the merge keeps 5.
    let shallow = part(3, "5");
    let o = clustersweep(&["merge", "--top", "12", &p1, &p2, &shallow]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--top 12"), "{}", stderr(&o));
    let o = clustersweep(&["merge", "--json", &p1, &p2, &shallow]);
    assert!(o.status.success(), "{}", stderr(&o));
    let five: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(five["top"].as_array().unwrap().len(), 5);
}

/// One CSV rule for every command: `--csv` prints CSV on stdout, `-o FILE` writes what is
/// printed to FILE (`sweep --csv FILE` used to write a file and print the table).
#[test]
fn sweep_csv_goes_to_stdout_or_to_the_output_file() {
    let path = temp_file("csv", "sweep.toml", SCENARIO);
    let csv = path.with_file_name("top.csv");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "sweep",
            path.to_str().unwrap(),
            "--backend",
            "cpu",
            "--top",
            "5",
            "--csv",
        ];
        a.extend_from_slice(extra);
        clustersweep(&a)
    };
    let o = args(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = stdout(&o);
    assert_eq!(printed.lines().count(), 6, "{printed}");
    assert!(printed.starts_with("rank,index,objective,accelerator,scale_up_domain,scale_out_gbps,pod_size,pod_oversubscription,topology,stack,count,tp"));
    let o = args(&["-o", csv.to_str().unwrap()]);
    assert!(o.status.success() && stdout(&o).is_empty(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 6, "{text}");
    assert!(text.starts_with("rank,index,objective,accelerator,scale_up_domain,scale_out_gbps,pod_size,pod_oversubscription,topology,stack,count,tp"));
}

#[test]
fn bad_search_axis_exits_2_naming_the_key() {
    let path = temp_file(
        "bad-axis",
        "s.toml",
        &SCENARIO.replace("counts = [64, 128, 256]", "counts = { from = 256, to = 64 }"),
    );
    let o = clustersweep(&["sweep", path.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("[search] counts"), "{}", stderr(&o));
    let o = clustersweep(&["sweep", path.to_str().unwrap(), "--shard", "4/3"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn cost_objective_needs_prices_and_says_which() {
    let text = SCENARIO
        .replace("price_per_hour_usd = 2.5\n", "")
        .replace("\"mi300x\"", "\"gb300\"");
    let path = temp_file("cost-price", "s.toml", &text);
    let o = clustersweep(&[
        "sweep",
        path.to_str().unwrap(),
        "--backend",
        "cpu",
        "--objective",
        "cost",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("gb300") && stderr(&o).contains("price_per_hour_usd"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn adapters_json_lists_what_wgpu_sees() {
    let o = clustersweep(&["adapters", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = v["adapters"].as_array().unwrap();
    if std::env::var("REQUIRE_GPU").is_ok_and(|v| v == "1") {
        assert!(
            list.iter()
                .any(|a| a["usable"] == true && a["backend"] == "Vulkan"),
            "{v}"
        );
    }
}

#[test]
fn bench_reports_layouts_per_second() {
    let o = clustersweep(&["bench", "--backend", "cpu", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["layouts_per_s"].as_f64().unwrap() > 0.0);
    // The headline is the valid (priced) rate, and the machine is named.
    let valid = v["valid_layouts_per_s"].as_f64().unwrap();
    assert!(valid > 0.0 && valid < v["layouts_per_s"].as_f64().unwrap(), "{v}");
    assert_eq!(valid, v["results"][0]["valid_layouts_per_s"].as_f64().unwrap());
    let machine = &v["machine"];
    assert!(machine["logical_cores"].as_u64().unwrap() >= 1, "{machine}");
    assert!(!machine["cpu_model"].as_str().unwrap().is_empty(), "{machine}");
    assert!(
        machine["simd"].is_string() && machine["compiled_simd"].is_string(),
        "{machine}"
    );
    assert!(v["space_size"].as_u64().unwrap() >= 10_000_000);
    assert_eq!(v["results"][0]["counts"]["evaluated"], v["space_size"]);
    // Beside it, a pruned sweep: the same top, part of the space skipped and counted so.
    let pruned = &v["pruned"][0];
    assert_eq!(pruned["backend"], "cpu");
    assert_eq!(pruned["same_top"], true, "{pruned}");
    let (evaluated, skipped) = (
        pruned["evaluated"].as_u64().unwrap(),
        pruned["pruned"].as_u64().unwrap(),
    );
    assert!(skipped > 0, "{pruned}");
    assert_eq!(evaluated + skipped, v["space_size"].as_u64().unwrap());
    // The draws of --uncertainty are timed too: 200 draws of the top 20 layouts.
    let draws = &v["draws"][0];
    assert_eq!(draws["backend"], "cpu");
    assert_eq!(draws["draws"], 200);
    assert_eq!(draws["candidates"], 20);
    assert!(draws["draws_per_s"].as_f64().unwrap() > 0.0, "{draws}");
}

/// Needs a GPU adapter: skips without one unless REQUIRE_GPU=1.
mod gpu_or_skip {
    use super::*;

    #[test]
    fn a_gpu_that_fails_mid_sweep_is_finished_on_the_cpu() {
        if crate::gpu_or_skip::engine().is_none() {
            return;
        }
        let path = temp_file("fault", "sweep.toml", SCENARIO);
        let cpu = whole_sweep();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_clustersweep"))
            .args([
                "sweep",
                path.to_str().unwrap(),
                "--backend",
                "gpu",
                "--json",
                "--top",
                "12",
                "--exhaustive",
            ])
            .env("CLUSTERSWEEP_GPU_FAULT_AFTER", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("the CPU finished"), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["counts"], cpu["counts"]);
        let ids = |v: &Value| {
            v["top"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["index"].as_u64().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&v), ids(cpu));
        // The report names both backends, and what each did (it said "gpu" alone).
        assert_eq!(v["backend"], "gpu+cpu", "{}", v["backend"]);
        let by = &v["layouts_by_backend"];
        let (gpu, cpu_layouts) = (by["gpu"].as_u64().unwrap(), by["cpu"].as_u64().unwrap());
        assert!(gpu > 0 && cpu_layouts > 0);
        assert_eq!(gpu + cpu_layouts, v["counts"]["evaluated"].as_u64().unwrap());
    }
}

#[test]
fn a_405b_model_on_16384_h100s_keeps_tensor_parallelism_inside_the_nvlink_domain() {
    // Regression: a TP group of 16 spans two 8-GPU servers; no stack overlaps TP traffic that
    // crosses NICs, so its collectives are exposed and the best layout keeps TP at 8.
    let text = "[model]\npreset = \"llama3-405b\"\n[training]\nglobal_batch = 2048\n\
                [cluster]\naccelerator = \"h100-sxm\"\ncount = 16384\n[search]\n\
                tp = [4, 8, 16]\npp = [8, 9, 14, 16, 18]\ncp = [1, 2]\nmicrobatch = [1]\n\
                interleave = [1, 2, 4, 7]\nrecompute = [\"none\", \"selective\"]\n\
                sequence_parallel = [true]\nzero = [1]\n";
    let path = temp_file("405b-16k", "s.toml", text);
    let o = clustersweep(&[
        "sweep",
        path.to_str().unwrap(),
        "--backend",
        "cpu",
        "--top",
        "5",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let top = v["top"].as_array().unwrap();
    assert!(!top.is_empty());
    for e in top {
        assert!(e["layout"]["tp"].as_u64().unwrap() <= 8, "{}", e["layout"]);
    }
    // The same layout at TP 16 pays its TP collectives: overlap does not reach across servers.
    let best = &top[0]["layout"];
    let at = |tp: u64| {
        let text = format!(
            "[model]\npreset = \"llama3-405b\"\n[training]\nglobal_batch = 2048\n[cluster]\naccelerator = \"h100-sxm\"\ncount = 16384\n\
             [layout]\ntp = {tp}\npp = {}\ncp = {}\nmicrobatch = 1\ninterleave = {}\nrecompute = {}\nzero = 1\n",
            best["pp"], best["cp"], best["interleave"], best["recompute"]
        );
        let path = temp_file(&format!("405b-tp{tp}"), "s.toml", &text);
        let o = clustersweep(&["estimate", path.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (tp8, tp16) = (at(8), at(16));
    let comm = |e: &serde_json::Value| e["breakdown"]["tp_comm_s"].as_f64().unwrap();
    assert!(
        comm(&tp16) > 2.0 * comm(&tp8),
        "{} vs {}",
        comm(&tp16),
        comm(&tp8)
    );
    assert!(tp16["step_time_s"].as_f64().unwrap() > tp8["step_time_s"].as_f64().unwrap());
}

#[test]
fn deepseek_v3_on_2048_h800s_trains_in_about_the_reported_54_days() {
    // DeepSeek-V3 Technical Report (arXiv 2412.19437): pre-training on 14.8T tokens took
    // 2.664M H800 GPU hours on 2,048 H800s (54.2 days; 19.9 s per step of 15,360 x 4,096
    // tokens), with TP 1, PP 16 (DualPipe), EP 64 over 8 nodes, ZeRO-1, FP8. Its all-to-all
    // hides behind the paired microbatch (Sec. 3.2) and goes once per node (Sec. 3.2.2).
    let text = "[model]\npreset = \"deepseek-v3\"\n[training]\nstack = \"hai-llm\"\ndtype = \"fp8\"\n\
                global_batch = 15360\ntokens = 14.8e12\n[cluster]\naccelerator = \"h800\"\ncount = 2048\n\
                [layout]\ntp = 1\npp = 16\nep = 64\nzero = 1\nmicrobatch = 1\n";
    let path = temp_file("deepseek-v3-h800", "s.toml", text);
    let o = clustersweep(&["estimate", path.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let days = e["time_to_train_s"].as_f64().unwrap() / 86400.0;
    assert!((days / 54.2 - 1.0).abs() <= 0.15, "{days:.1} days against 54.2");
    let step = e["step_time_s"].as_f64().unwrap();
    assert!((step / 19.9 - 1.0).abs() <= 0.15, "{step:.2} s against 19.9");
    // The all-to-all is no longer most of the step (it was 56 % before the overlap).
    let ep = e["breakdown"]["ep_comm_s"].as_f64().unwrap();
    assert!(ep < 0.10 * step, "exposed all-to-all {ep:.2} s of {step:.2} s");
    // Known gap: the model keeps ~10 % more than the 80 GB DeepSeek fits in (its microbatch
    // and in-flight activations are not published); it must stay within 15 %.
    let memory = e["memory_per_accelerator_bytes"].as_f64().unwrap();
    assert!(memory < 1.15 * 80e9, "{:.1} GB", memory / 1e9);
    // Without the overlap and the per-node dispatch (Megatron-Core as DGX Cloud ran it in
    // 2025) the same layout is much slower.
    let plain = text.replace("stack = \"hai-llm\"", "stack = \"megatron-core-2025\"");
    let path = temp_file("deepseek-v3-h800-mcore", "s.toml", &plain);
    let o = clustersweep(&["estimate", path.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(m["breakdown"]["ep_comm_s"].as_f64().unwrap() > 3.0 * ep);
}
