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
    assert_eq!(rows.len(), 343);
    for f in [
        "run_id",
        "predicted_step_time_s",
        "measured_step_time_s",
        "error_pct",
        "chosen",
    ] {
        assert!(rows[0].get(f).is_some(), "{f}");
    }
    assert!(v["overall"]["mape_pct"].as_f64().is_some());
    assert!(!v["rank_groups"].as_array().unwrap().is_empty());
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
    let o = clustersweep(&["fit", runs.to_str().unwrap(), "--json", "--iterations", "60"]);
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
