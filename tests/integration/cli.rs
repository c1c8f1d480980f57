//! The command line through the real binary: output, JSON field names, exit codes, messages.

use crate::{clustersweep, data, stderr, stdout, temp_file};

const ESTIMATE_FIELDS: [&str; 13] = [
    "step_time_s",
    "tokens_per_s",
    "tokens_per_s_per_accelerator",
    "model_flops_per_step",
    "mfu",
    "hfu",
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
    let ids: Vec<&str> = v
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
    for s in v.as_array().unwrap() {
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
        "-o",
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
