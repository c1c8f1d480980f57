//! The command line through the real binary: output, JSON field names, exit codes, messages.

use crate::{clustersweep, data, stderr, stdout, temp_file};

const ESTIMATE_FIELDS: [&str; 15] = [
    "parameters",
    "active_parameters",
    "step_time_s",
    "tokens_per_s",
    "tokens_per_s_per_accelerator",
    "model_flops_per_step",
    "mfu_fraction",
    "hfu_fraction",
    "memory_per_accelerator_bytes",
    "fits",
    "time_to_train_s",
    "energy_mwh",
    "cost_usd",
    "breakdown",
    "memory",
];

#[test]
fn estimate_without_a_file_runs_the_default_scenario() {
    let o = clustersweep(&["estimate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("llama3-70b") && out.contains("step time") && out.contains("MFU"),
        "{out}"
    );
}

#[test]
fn estimate_json_has_the_stable_field_names() {
    let o = clustersweep(&["estimate", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for f in ESTIMATE_FIELDS {
        assert!(v.get(f).is_some(), "missing {f} in {v}");
    }
    let step = v["step_time_s"].as_f64().unwrap();
    let terms: f64 = v["breakdown"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_f64().unwrap())
        .sum();
    assert!(
        (terms - step).abs() < 1e-9 * step,
        "breakdown {terms} vs step {step}"
    );
    assert!(v["memory"]["activations_bytes"].as_f64().unwrap() > 0.0);
    assert_eq!(v["layout"]["dp"], 64);
    // Counts are integers, not 7.05e10 written as 70553698304.0.
    assert!(
        v["parameters"].is_u64() && v["active_parameters"].is_u64(),
        "{}",
        v["parameters"]
    );
}

#[test]
fn estimate_states_how_sure_it_is() {
    // The interval brackets the estimate, a lower confidence narrows it, the time to train
    // moves with the step time, and the basis says where it comes from.
    let interval = |confidence: &str| {
        let o = clustersweep(&["estimate", "--json", "--confidence", confidence]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let pair = |k: &str| [v[k][0].as_f64().unwrap(), v[k][1].as_f64().unwrap()];
        let step = v["step_time_s"].as_f64().unwrap();
        let [low, high] = pair("step_time_s_interval");
        assert!(low < step && step < high, "{low} {step} {high}");
        let train = v["time_to_train_s"].as_f64().unwrap();
        let [train_low, train_high] = pair("time_to_train_s_interval");
        assert!(
            (train_low / train - low / step).abs() < 1e-12
                && (train_high / train - high / step).abs() < 1e-12
        );
        assert!(
            v["interval"]["basis"]
                .as_str()
                .unwrap()
                .contains("held-out error"),
            "{v}"
        );
        high - low
    };
    assert!(interval("0.5") < interval("0.8"));
    let table = stdout(&clustersweep(&["estimate"]));
    assert!(
        table.contains("(80 %: ") && table.contains("80 % intervals: held-out error"),
        "{table}"
    );
    let o = clustersweep(&["estimate", "--confidence", "80"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--confidence 80"), "{}", stderr(&o));
}

#[test]
fn estimate_csv_is_one_header_and_one_row() {
    let o = clustersweep(&["estimate", "--csv"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.starts_with("model,accelerator,count,step_time_s"));
}

#[test]
fn estimate_of_the_printed_default_matches_the_default() {
    let printed = stdout(&clustersweep(&["estimate", "--print-default"]));
    let path = temp_file("print-default", "default.toml", &printed);
    let a: serde_json::Value = serde_json::from_slice(&clustersweep(&["estimate", "--json"]).stdout).unwrap();
    let b: serde_json::Value =
        serde_json::from_slice(&clustersweep(&["estimate", path.to_str().unwrap(), "--json"]).stdout)
            .unwrap();
    assert_eq!(a["step_time_s"], b["step_time_s"]);
}

#[test]
fn unknown_key_exits_2_naming_key_and_section() {
    let path = temp_file(
        "unknown-key",
        "bad.toml",
        "[model]\npreset = \"llama3-8b\"\n[layout]\ntpp = 2\n",
    );
    let o = clustersweep(&["estimate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("`tpp`") && err.contains("[layout]") && err.contains("line 4"),
        "{err}"
    );
}

#[test]
fn layout_that_does_not_multiply_to_the_count_exits_2() {
    let text = "[model]\npreset = \"llama3-8b\"\n[training]\nglobal_batch = 64\n[cluster]\naccelerator = \"h100-sxm\"\ncount = 16\n[layout]\ntp = 2\npp = 2\ndp = 2\n";
    let path = temp_file("count", "bad.toml", text);
    let o = clustersweep(&["estimate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("count = 16"), "{}", stderr(&o));
}

#[test]
fn missing_scenario_file_exits_1() {
    let o = clustersweep(&["estimate", "/nonexistent/scenario.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/scenario.toml"));
}

#[test]
fn bad_flag_exits_2() {
    let o = clustersweep(&["estimate", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn layout_that_does_not_fit_is_reported_with_the_excess() {
    let text = "[model]\npreset = \"llama3-70b\"\n[training]\nglobal_batch = 8\n[cluster]\naccelerator = \"h100-sxm\"\ncount = 8\n";
    let path = temp_file("no-fit", "big.toml", text);
    let o = clustersweep(&["estimate", path.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["fits"], false);
    assert!(v["memory_excess_bytes"].as_f64().unwrap() > 0.0);
    let table = stdout(&clustersweep(&["estimate", path.to_str().unwrap()]));
    assert!(table.contains("NO:") && table.contains("over"), "{table}");
}

#[test]
fn catalog_lists_accelerators_presets_and_sources() {
    let o = clustersweep(&["catalog"]);
    assert!(o.status.success());
    let out = stdout(&o);
    for id in [
        "h100-sxm",
        "gb200",
        "tpu-v5p",
        "mi355x",
        "deepseek-v3",
        "Sources",
        "NV-H100-DS",
    ] {
        assert!(out.contains(id), "{id}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&clustersweep(&["catalog", "--json"]).stdout).unwrap();
    assert!(json["accelerators"].as_array().unwrap().len() >= 15);
}

#[test]
fn user_catalog_adds_an_accelerator_the_scenario_can_use() {
    let hw = "[[accelerator]]\nid = \"my-gpu\"\nname = \"Mine\"\nyear = 2027\nefficiency = \"nvidia-hopper\"\n\
              peak_tflops = { bf16 = 2000.0 }\nhbm_gb = 200.0\nhbm_tb_per_s = 6.0\nscale_up_gb_per_s = 900.0\n\
              scale_up_domain = 8\nscale_out_gbps = 800.0\nscale_up_latency_us = 3.4\nscale_out_latency_us = 14.0\n\
              memory_efficiency = 0.85\nscale_up_efficiency = 0.8\nscale_out_efficiency = 0.9\ntdp_w = 1000.0\n\
              power_all_in_w = 1800.0\naverage_power_fraction = 0.75\nprice_usd = 40000.0\nprice_per_hour_usd = 4.0\n";
    let catalog = temp_file("user-catalog", "hw.toml", hw);
    let scenario = temp_file(
        "user-catalog",
        "s.toml",
        "[model]\npreset = \"llama3-8b\"\n[training]\nglobal_batch = 64\n[cluster]\naccelerator = \"my-gpu\"\ncount = 8\n",
    );
    let o = clustersweep(&[
        "--catalog",
        catalog.to_str().unwrap(),
        "estimate",
        scenario.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["accelerator"], "my-gpu");
}

#[test]
fn validate_json_rows_have_the_documented_fields() {
    let runs = data("measured-runs.csv");
    let o = clustersweep(&["validate", runs.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 368);
    for f in [
        "run_id",
        "stack",
        "predicted_step_time_s",
        "measured_step_time_s",
        "error_pct",
        "assumed",
    ] {
        assert!(rows[0].get(f).is_some(), "{f}");
    }
    assert!(v["overall"]["mape_pct"].as_f64().is_some());
    assert!(v["mean_group_mape_pct"].as_f64().is_some());
    assert!(!v["rank_groups"].as_array().unwrap().is_empty());
    let first = &rows[0]["assumed"]["microbatch"];
    assert!(
        ["recorded", "stack default"].contains(&first["source"].as_str().unwrap()),
        "{first}"
    );
}

#[test]
fn validate_assume_fastest_fills_empty_knobs_with_the_fastest() {
    let runs = data("measured-runs.csv");
    let o = clustersweep(&[
        "validate",
        runs.to_str().unwrap(),
        "--json",
        "--assume",
        "fastest",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["assume"], "fastest");
    let sources: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["assumed"]["interleave"]["source"].as_str())
        .collect();
    assert!(
        sources.contains(&"fastest") && !sources.contains(&"stack default"),
        "{sources:?}"
    );
}

#[test]
fn catalog_stacks_lists_every_stack_of_the_calibration_set() {
    let o = clustersweep(&["catalog", "--stacks", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = v["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for id in [
        "megatron-2020",
        "megatron-2021",
        "megatron-2022",
        "megatron-deepspeed",
        "deepspeed-zero3",
        "megatron-core-2023",
        "megatron-core-2024",
        "megatron-core-2025",
        "megascale",
        "meta-llama3",
        "llm-foundry",
        "torchtitan",
        "maxtext",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    for s in v["stacks"].as_array().unwrap() {
        assert!(s["sources"].as_object().unwrap().len() >= 2, "{}", s["id"]);
        assert!(s["defaults"]["zero"].is_u64(), "{}", s["id"]);
    }
    let table = stdout(&clustersweep(&["catalog", "--stacks"]));
    assert!(table.contains("megatron-2021") && table.contains("Defaults") && table.contains("Sources"));
}

fn scenario_on(stack: &str, layout: &str) -> String {
    format!(
        "[model]\npreset = \"gpt3-175b\"\n[training]\nstack = \"{stack}\"\nglobal_batch = 1536\ndtype = \"fp16\"\n\
         [cluster]\naccelerator = \"a100-80gb\"\ncount = 1536\n[layout]\ntp = 8\npp = 12\n{layout}"
    )
}

#[test]
fn unknown_stack_exits_2_listing_the_known_ones() {
    let path = temp_file("unknown-stack", "s.toml", &scenario_on("megatron-1999", ""));
    let o = clustersweep(&["estimate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("megatron-1999") && err.contains("megatron-core-2025"),
        "{err}"
    );
}

#[test]
fn a_knob_the_stack_lacks_exits_2_naming_key_and_stack() {
    let path = temp_file(
        "stack-sp",
        "s.toml",
        &scenario_on("megatron-2021", "sequence_parallel = true\n"),
    );
    let o = clustersweep(&["estimate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("sequence_parallel") && err.contains("megatron-2021"),
        "{err}"
    );
    // Its defaults run: the 2021 stack's own knobs (no sequence parallelism, full recompute).
    let path = temp_file("stack-ok", "s.toml", &scenario_on("megatron-2021", ""));
    let o = clustersweep(&["estimate", path.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stack"], "megatron-2021");
    assert_eq!(v["attention_kernel"], "unfused");
    assert_eq!(v["layout"]["sequence_parallel"], false);
    assert_eq!(v["layout"]["recompute"], "full");
}

#[test]
fn a_newer_stack_trains_the_same_layout_faster() {
    let step = |stack: &str| {
        let path = temp_file(
            &format!("stack-{stack}"),
            "s.toml",
            &scenario_on(stack, "microbatch = 1\n"),
        );
        let o = clustersweep(&["estimate", path.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{stack}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["step_time_s"].as_f64().unwrap()
    };
    let (old, new) = (step("megatron-2021"), step("megatron-core-2024"));
    assert!(new < old * 0.9, "{new} vs {old}");
}

#[test]
fn fit_writes_a_catalog_that_loads_as_it_is() {
    let runs = data("measured-runs.csv");
    let out = temp_file("fit-out", "fitted.toml", "");
    let o = clustersweep(&[
        "fit",
        runs.to_str().unwrap(),
        "--write-catalog",
        out.to_str().unwrap(),
        "--iterations",
        "20",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("[[efficiency]]") && text.contains("nvidia-hopper"),
        "{text}"
    );
    let o = clustersweep(&["--catalog", out.to_str().unwrap(), "estimate", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = stdout(&clustersweep(&[
        "fit",
        runs.to_str().unwrap(),
        "--iterations",
        "20",
    ]));
    assert!(report.contains("rows each parameter informs"), "{report}");
}

#[test]
fn validate_max_mape_exits_3_when_exceeded() {
    let runs = data("measured-runs.csv");
    let o = clustersweep(&["validate", runs.to_str().unwrap(), "--max-mape", "0.5"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("--max-mape"));
    let o = clustersweep(&["validate", runs.to_str().unwrap(), "--max-mape", "50"]);
    assert!(o.status.success());
}

#[test]
fn validate_of_a_file_without_required_columns_exits_2() {
    let path = temp_file("bad-runs", "runs.csv", "run_id,accelerator\nx,h100-sxm\n");
    let o = clustersweep(&["validate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing column"), "{}", stderr(&o));
}

#[test]
fn fit_reproduces_the_catalog_constants() {
    // The catalog's fitted constants are the fit's own output: refitting from them moves the
    // error by less than a hundredth of a point.
    let runs = data("measured-runs.csv");
    let skip = data("fit-skipped-runs.csv");
    let o = clustersweep(&[
        "fit",
        runs.to_str().unwrap(),
        "--skip-runs",
        skip.to_str().unwrap(),
        "--json",
        "--iterations",
        "60",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for f in v["families"].as_array().unwrap() {
        let before = f["mape_before_pct"].as_f64().unwrap();
        let after = f["mape_after_pct"].as_f64().unwrap();
        assert!(
            before - after < 0.05,
            "{}: {before} -> {after}: run `clustersweep fit` and update the catalog",
            f["family"]
        );
    }
}

// Bad input never gives a wrong answer: each test below reproduces a failure found by feeding
// the tool mutated inputs, and fails on b387639.

const SMALL_SWEEP: &str = "[model]\npreset = \"llama3-8b\"\n[training]\nglobal_batch = 256\n\
                           [cluster]\naccelerator = \"h100-sxm\"\ncount = 64\n[search]\ntp = [1, 2]\n";

#[test]
fn a_sweep_on_zero_accelerators_is_an_input_error_not_a_panic() {
    let path = temp_file(
        "count-zero",
        "s.toml",
        &SMALL_SWEEP.replace("count = 64", "count = 0"),
    );
    let o = clustersweep(&["sweep", path.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("[cluster] count = 0"), "{}", stderr(&o));
}

#[test]
fn dp_times_microbatch_past_2_to_the_32_is_refused_not_wrapped_onto_a_divisor() {
    // 65,536 x 65,537 = 2^32 + 65,536: in 32 bits it wrapped to the batch and "fit".
    let text = "[model]\npreset = \"llama3-8b\"\n[training]\nglobal_batch = 65536\n[cluster]\n\
                accelerator = \"h100-sxm\"\ncount = 65536\n[layout]\ndp = 65536\nmicrobatch = 65537\n";
    let path = temp_file("dp-mb-overflow", "s.toml", text);
    let o = clustersweep(&["estimate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("dp * microbatch must divide global_batch"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_value_listed_twice_in_search_is_an_error_naming_the_key() {
    for (key, list) in [
        ("tp", "[1, 2, 2]"),
        ("accelerators", "[\"h100-sxm\", \"h100-sxm\"]"),
        ("recompute", "[\"none\", \"none\"]"),
    ] {
        let text = SMALL_SWEEP.replace("tp = [1, 2]", &format!("{key} = {list}"));
        let path = temp_file(&format!("duplicate-{key}"), "s.toml", &text);
        let o = clustersweep(&["sweep", path.to_str().unwrap(), "--backend", "cpu"]);
        assert_eq!(o.status.code(), Some(2), "{key}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("[search] {key} lists")),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn output_lost_to_a_full_disk_fails_the_run_or_skips_without_dev_full() {
    let full = std::path::Path::new("/dev/full");
    if !full.exists() {
        eprintln!("skipping: no /dev/full on this system");
        return;
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_clustersweep"))
        .args(["estimate", "--json"])
        .stdout(std::fs::File::create(full).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("stdout"), "{}", stderr(&o));
}

#[test]
fn a_scenario_that_is_not_utf8_exits_2_naming_the_line() {
    let dir = std::env::temp_dir().join(format!("clustersweep-test-{}-utf8", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.toml");
    std::fs::write(&path, b"[model]\npreset = \"llama3-8b\"\n# caf\xe9\n").unwrap();
    let o = clustersweep(&["estimate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("line 3 is not valid UTF-8"), "{}", stderr(&o));
}

#[test]
fn max_mape_nan_is_refused_and_a_file_with_nothing_priced_does_not_pass() {
    let runs = data("measured-runs.csv");
    let o = clustersweep(&["validate", runs.to_str().unwrap(), "--max-mape", "nan"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let header = std::fs::read_to_string(&runs)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let empty = temp_file("nothing-priced", "runs.csv", &format!("{header}\n"));
    let o = clustersweep(&["validate", empty.to_str().unwrap(), "--max-mape", "1"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("no row"), "{}", stderr(&o));
}

#[test]
fn a_rental_sweep_over_an_accelerator_without_a_rental_price_names_the_fix() {
    // It ranked first and printed "$NaN" (cost_usd: null).
    let path = temp_file(
        "unpriced",
        "s.toml",
        &SMALL_SWEEP.replace("\"h100-sxm\"", "\"gb300\""),
    );
    let o = clustersweep(&["sweep", path.to_str().unwrap(), "--backend", "cpu", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("price_per_hour_usd"), "{}", stderr(&o));
}

#[test]
fn top_is_bounded_instead_of_aborting_on_allocation_or_returning_one_for_zero() {
    let path = temp_file("top-bounds", "s.toml", SMALL_SWEEP);
    for top in ["0", "1000000000000"] {
        let o = clustersweep(&["sweep", path.to_str().unwrap(), "--backend", "cpu", "--top", top]);
        assert_eq!(o.status.code(), Some(2), "--top {top}: {}", stderr(&o));
        assert!(stderr(&o).contains("--top"), "{}", stderr(&o));
    }
}

#[test]
fn a_catalog_with_a_negative_pue_a_zero_layer_preset_or_an_empty_id_is_refused() {
    // pue = -1 gave negative power and energy; layers = 0 and empty ids were accepted.
    let model = |id: &str, layers: u32| {
        format!(
            "[[model]]\nid = \"{id}\"\nlayers = {layers}\nhidden = 64\nheads = 4\nffn = 256\n\
             ffn_kind = \"mlp\"\nvocab = 100\nseq_len = 64\nsource = \"test\"\n"
        )
    };
    for (name, text, message) in [
        ("pue", "[facility]\npue = -1\n".to_string(), "[facility] pue = -1"),
        ("layers", model("tiny", 0), "model `tiny`: layers = 0"),
        ("empty-id", model(" ", 2), "empty id"),
    ] {
        let path = temp_file(&format!("catalog-{name}"), "c.toml", &text);
        let o = clustersweep(&["estimate", "--catalog", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{name}: {}", stderr(&o));
    }
}

#[test]
fn an_override_beyond_f64_is_an_error_naming_the_term_not_a_null() {
    // hbm_gb = 1e308 printed "memory_capacity_bytes": null with exit 0.
    let o = clustersweep(&["init", "estimate"]);
    let text = String::from_utf8(o.stdout)
        .unwrap()
        .replacen("[cluster]", "[cluster]\nhbm_gb = 1e308", 1);
    let path = temp_file("hbm-1e308", "s.toml", &text);
    let o = clustersweep(&["estimate", path.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("memory_capacity_bytes is not a finite number"),
        "{}",
        stderr(&o)
    );
}

/// Regression: wgpu ignores backend names it does not know, so a typo in WGPU_BACKEND left
/// "no usable GPU adapter" unexplained.
#[test]
fn an_unknown_wgpu_backend_exits_2_naming_the_variable() {
    let sweep = clustersweep(&["init", "sweep"]);
    let path = temp_file("wgpu-backend", "sweep.toml", &stdout(&sweep));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_clustersweep"))
        .args(["sweep", "--backend", "gpu", path.to_str().unwrap()])
        .env("WGPU_BACKEND", "vulcan")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("WGPU_BACKEND=vulcan names no backend"),
        "{}",
        stderr(&o)
    );
}

/// A Mixtral-8x7B config.json as released (abridged), for the model-import tests.
const MIXTRAL_CONFIG: &str = r#"{"_name_or_path": "mistralai/Mixtral-8x7B-v0.1", "model_type": "mixtral",
    "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "num_local_experts": 8, "num_experts_per_tok": 2,
    "vocab_size": 32000, "max_position_embeddings": 32768, "sliding_window": null, "tie_word_embeddings": false}"#;

#[test]
fn estimate_hf_config_prices_the_imported_model_with_its_active_parameters() {
    let config = temp_file("hf-flag", "config.json", MIXTRAL_CONFIG);
    let o = clustersweep(&["estimate", "--hf-config", config.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["model"], "mistralai/Mixtral-8x7B-v0.1");
    let (total, active) = (
        v["parameters"].as_f64().unwrap(),
        v["active_parameters"].as_f64().unwrap(),
    );
    assert!(
        (total / 46.7e9 - 1.0).abs() < 0.01 && (active / 12.9e9 - 1.0).abs() < 0.01,
        "{total} {active}"
    );
    let table = clustersweep(&["estimate", "--hf-config", config.to_str().unwrap()]);
    assert!(
        stdout(&table).contains("46.7B parameters, 12.9B active"),
        "{}",
        stdout(&table)
    );
}

#[test]
fn scenario_hf_config_is_read_beside_the_scenario_and_keys_beside_it_win() {
    let config = temp_file("hf-key", "config.json", MIXTRAL_CONFIG);
    let scenario = clustersweep::input::scenario::DEFAULT_SCENARIO.replace(
        "preset = \"llama3-70b\"",
        "hf_config = \"config.json\"\nseq_len = 2048\nname = \"mixtral-short\"",
    );
    let path = config.with_file_name("s.toml");
    std::fs::write(&path, scenario).unwrap();
    // Run from elsewhere: the relative path is the scenario's.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_clustersweep"))
        .args(["estimate", path.to_str().unwrap(), "--json"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["model"].as_str(), v["seq_len"].as_u64()),
        (Some("mixtral-short"), Some(2048))
    );
}

#[test]
fn an_hf_config_of_an_unknown_family_exits_2_naming_the_field() {
    let config = temp_file(
        "hf-unknown",
        "config.json",
        r#"{"model_type": "mamba", "hidden_size": 768}"#,
    );
    let o = clustersweep(&["estimate", "--hf-config", config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("model_type = \"mamba\""), "{}", stderr(&o));
    let scenario = clustersweep::input::scenario::DEFAULT_SCENARIO.replace(
        "preset = \"llama3-70b\"",
        "preset = \"llama3-70b\"\nhf_config = \"config.json\"",
    );
    let path = temp_file("hf-both", "s.toml", &scenario);
    let o = clustersweep(&["estimate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("hf_config") && stderr(&o).contains("preset are both set"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn completions_and_the_man_page_cover_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let o = clustersweep(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        for command in ["estimate", "sweep", "plan", "validate", "hf-config"] {
            assert!(stdout(&o).contains(command), "{shell} lacks {command}");
        }
    }
    let man = clustersweep(&["man"]);
    assert!(man.status.success(), "{}", stderr(&man));
    let page = stdout(&man);
    assert!(
        page.starts_with(".ie") && page.contains(".TH clustersweep 1"),
        "{page}"
    );
    assert!(page.contains("plan") && page.contains("Exit codes"), "{page}");
    assert_eq!(clustersweep(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn a_mistyped_preset_gets_a_did_you_mean() {
    let text = clustersweep::input::scenario::DEFAULT_SCENARIO.replace("llama3-70b", "Llama3-70B");
    let path = temp_file("did-you-mean", "s.toml", &text);
    let o = clustersweep(&["estimate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("(did you mean `llama3-70b`?)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn estimate_emit_prints_launch_arguments_and_refuses_json_beside_it() {
    let o = clustersweep(&["estimate", "--emit", "megatron"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("--tensor-model-parallel-size 4 \\") && text.contains("pretrain_gpt.py"),
        "{text}"
    );
    let o = clustersweep(&["estimate", "--emit", "megatron", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = clustersweep(&["estimate", "--emit", "deepspeed"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn plan_emit_writes_the_best_plans_layout() {
    let plan = clustersweep(&["plan", "--json", "--backend", "cpu"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let v: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let best = &v["plans"][0]["layout"];
    let o = clustersweep(&["plan", "--emit", "torchtitan", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let job: toml::Value = toml::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        job["parallelism"]["tensor_parallel_degree"].as_integer(),
        best["tp"].as_i64(),
        "{}",
        stdout(&o)
    );
    let o = clustersweep(&[
        "plan",
        "--emit",
        "megatron",
        "--emit-rank",
        "100000",
        "--backend",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--emit-rank 100000"), "{}", stderr(&o));
}

#[test]
fn sweep_emit_writes_the_ranked_layout_asked_for() {
    let sweep = clustersweep(&["init", "sweep"]);
    let path = temp_file("sweep-emit", "sweep.toml", &stdout(&sweep));
    let path = path.to_str().unwrap();
    let json = clustersweep(&["sweep", path, "--backend", "cpu", "--json", "--no-progress"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    for rank in [1usize, 2] {
        let layout = &v["top"][rank - 1]["layout"];
        let o = clustersweep(&[
            "sweep",
            path,
            "--backend",
            "cpu",
            "--no-progress",
            "--emit",
            "maxtext",
            "--emit-rank",
            &rank.to_string(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let header = format!(
            "on {} x {}: tp {} pp {} dp {} cp {}",
            layout["count"],
            layout["accelerator"].as_str().unwrap(),
            layout["tp"],
            layout["pp"],
            layout["dp"],
            layout["cp"]
        );
        assert!(stdout(&o).contains(&header), "{header}\n{}", stdout(&o));
    }
}

/// Regression: `--plot p.png` wrote SVG into a file named .png, and a path in a missing
/// directory failed only after the work.
#[test]
fn output_paths_are_checked_before_the_work() {
    let o = clustersweep(&["plan", "--plot", "pareto.png"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--plot pareto.png: plots are written as SVG"),
        "{}",
        stderr(&o)
    );
    let o = clustersweep(&["plan", "--plot-scaling", "/no/such/dir/s.svg"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/no/such/dir does not exist"),
        "{}",
        stderr(&o)
    );
    let o = clustersweep(&["estimate", "--json", "-o", "/no/such/dir/e.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let out = temp_file("output-flag", "placeholder", "");
    let target = out.with_file_name("e.json");
    let o = clustersweep(&["estimate", "--json", "--output", target.to_str().unwrap()]);
    assert!(o.status.success() && stdout(&o).is_empty(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert!(v["step_time_s"].as_f64().unwrap() > 0.0);
}

/// Regression: sweep, plan and validate tables were 200-530 columns wide and wrapped in a
/// terminal.
#[test]
fn tables_fit_100_columns_in_a_pipe_and_wide_keeps_every_column() {
    let sweep = temp_file(
        "table-width",
        "sweep.toml",
        &stdout(&clustersweep(&["init", "sweep"])),
    );
    let sweep = sweep.to_str().unwrap();
    let runs = data("measured-runs.csv");
    for args in [
        vec!["sweep", sweep, "--backend", "cpu", "--no-progress"],
        vec!["plan", "--backend", "cpu", "--pareto"],
        vec!["validate", runs.to_str().unwrap()],
        // Regression (issue 13): the catalog's tables and sources were 2,950 columns wide.
        vec!["catalog"],
        vec!["catalog", "--stacks"],
    ] {
        let o = clustersweep(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        // Table lines fit, and the prose around them wraps.
        for line in text.lines() {
            assert!(
                line.chars().count() <= 100,
                "{args:?}: {} columns:\n{line}",
                line.chars().count()
            );
        }
        // (the line under the table wraps like prose: compare its words)
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("(--wide shows every column)"), "{text}");
        let mut wide_args = args.clone();
        wide_args.push("--wide");
        let wide = stdout(&clustersweep(&wide_args));
        assert!(wide.lines().any(|l| l.chars().count() > 100), "{args:?} --wide");
        assert!(!wide.contains("--wide shows"), "{wide}");
    }
}

/// Regression (issue 11): a FIFO as the scenario blocked forever with no word. It still waits
/// for its writer, as `cat` would (process substitution needs that), but says so on stderr, and
/// the estimate is the file's once something writes it.
#[cfg(unix)]
#[test]
fn a_fifo_without_a_writer_says_what_it_waits_for_then_reads_the_scenario() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("clustersweep-test-{}-fifo", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("scenario.toml");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_clustersweep"))
        .args(["estimate", fifo.to_str().unwrap(), "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs_f64(
        clustersweep::error::FIFO_NOTICE_S + 1.0,
    ));
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writer
        .write_all(clustersweep::input::scenario::DEFAULT_SCENARIO.as_bytes())
        .unwrap();
    drop(writer);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("waiting for a writer on"), "{}", stderr(&o));
    let fifo_json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let default_json: serde_json::Value =
        serde_json::from_slice(&clustersweep(&["estimate", "--json"]).stdout).unwrap();
    assert_eq!(fifo_json["step_time_s"], default_json["step_time_s"]);
}

/// Flags that the command would ignore, or ranks it cannot report, are refused before any work
/// with the flag named (they used to be ignored: `--adapters` on the CPU backend, and
/// `--emit-rank` past `--top` failed only after the sweep).
#[test]
fn flags_that_would_be_ignored_are_refused_before_the_work() {
    let path = temp_file("ignored-flags", "s.toml", SMALL_SWEEP);
    let sweep = format!("sweep {} --backend cpu", path.display());
    let run = |args: &str| clustersweep(&args.split_whitespace().collect::<Vec<_>>());
    for (args, flag) in [
        (format!("{sweep} --adapters all"), "--adapters all"),
        (format!("{sweep} --adapters best"), "--adapters best"),
        (
            format!("{sweep} --emit megatron --emit-rank 4 --top 3"),
            "--emit-rank 4",
        ),
        (format!("{sweep} --emit megatron --emit-rank 0"), "--emit-rank 0"),
        (
            "plan --backend cpu --emit megatron --emit-rank 11".to_string(),
            "--emit-rank 11",
        ),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{args}: {}", stderr(&o));
    }
    // Within bounds, the same flags run.
    let o = run(&format!("{sweep} --emit megatron --emit-rank 2 --top 3"));
    assert!(o.status.success(), "{}", stderr(&o));
}
