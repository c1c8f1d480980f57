//! `clustersweep schema COMMAND`: every command's `--json` output conforms to its schema, and
//! the schema declares every key printed (its objects allow no others).

use crate::{clustersweep, data, stderr, stdout, temp_file};
use clustersweep::report::schema::JsonCommand;
use serde_json::Value;

/// The schema the binary prints for `command`, compiled.
fn validator(command: &str) -> jsonschema::Validator {
    let o = clustersweep(&["schema", command]);
    assert!(o.status.success(), "schema {command}: {}", stderr(&o));
    let schema: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("schema {command} compiles: {e}"))
}

fn assert_conforms(command: &str, args: &[&str]) -> Value {
    let o = clustersweep(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    let output: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let errors: Vec<String> = validator(command)
        .iter_errors(&output)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{args:?} against `schema {command}`:\n{}",
        errors.join("\n")
    );
    output
}

/// One JSON vocabulary: every report starts with its schema_version and conforms to the schema
/// of its command, options that add keys included (intervals, p_best, the Pareto set,
/// sensitivity, shards, a mixture of experts).
#[test]
fn every_json_report_conforms_to_the_schema_of_its_command() {
    let runs = data("measured-runs.csv");
    let runs = runs.to_str().unwrap();
    let sweep = temp_file("schema", "sweep.toml", &stdout(&clustersweep(&["init", "sweep"])));
    let sweep = sweep.to_str().unwrap();
    let moe = temp_file(
        "schema",
        "moe.toml",
        "[model]\npreset = \"deepseek-v3\"\n[training]\nstack = \"hai-llm\"\ndtype = \"fp8\"\n\
         global_batch = 15360\ntokens = 14.8e12\n[cluster]\naccelerator = \"h800\"\ncount = 2048\n\
         [layout]\ntp = 1\npp = 16\nep = 64\nzero = 1\nmicrobatch = 1\n",
    );
    let sweep_args = |extra: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = ["sweep", sweep, "--backend", "cpu", "--json", "--no-progress"]
            .map(String::from)
            .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let mut parts = vec![];
    for k in 1..=2 {
        let shard = format!("{k}/2");
        let mut args = sweep_args(&[]);
        args.extend(["--shard".to_string(), shard]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let part = assert_conforms("sweep", &args);
        parts.push(temp_file("schema", &format!("part{k}.json"), &part.to_string()));
    }
    let mut merge = vec!["merge", "--json"];
    merge.extend(parts.iter().map(|p| p.to_str().unwrap()));
    let checked: Vec<(&str, Vec<&str>)> = vec![
        ("estimate", vec!["estimate", "--json"]),
        ("estimate", vec!["estimate", moe.to_str().unwrap(), "--json"]),
        ("validate", vec!["validate", runs, "--json"]),
        ("catalog", vec!["catalog", "--json"]),
        ("catalog-stacks", vec!["catalog", "--stacks", "--json"]),
        ("fit", vec!["fit", runs, "--json"]),
        ("merge", merge),
        ("adapters", vec!["adapters", "--json"]),
        ("bench", vec!["bench", "--backend", "cpu", "--json"]),
        (
            "plan",
            vec![
                "plan",
                sweep,
                "--backend",
                "cpu",
                "--json",
                "--pareto",
                "--uncertainty",
                "--sensitivity",
            ],
        ),
        (
            "plan-shard",
            vec!["plan", sweep, "--backend", "cpu", "--shard", "1/2"],
        ),
    ];
    for (command, args) in checked {
        let output = assert_conforms(command, &args);
        assert_eq!(
            output["schema_version"],
            clustersweep::report::export::SCHEMA_VERSION,
            "{args:?}"
        );
    }
    let args = sweep_args(&["--uncertainty"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = assert_conforms("sweep", &args);
    assert!(output["top"][0]["p_best"].is_number(), "{}", output["top"][0]);
}

/// A schema that allowed any key could not fail the test above: a key the report does not
/// declare is an error, and a schema exists for every command that prints JSON.
#[test]
fn a_schema_refuses_keys_it_does_not_declare() {
    let o = clustersweep(&["estimate", "--json"]);
    let mut output: Value = serde_json::from_slice(&o.stdout).unwrap();
    let estimate = validator("estimate");
    assert!(estimate.is_valid(&output));
    for (path, key) in [
        ("", "undeclared"),
        ("/breakdown", "undeclared_s"),
        ("/layout", "undeclared"),
    ] {
        let object = output.pointer_mut(path).unwrap().as_object_mut().unwrap();
        object.insert(key.into(), 1.0.into());
        assert!(!estimate.is_valid(&output), "{path}/{key} passed");
        output
            .pointer_mut(path)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
    }
    assert!(estimate.is_valid(&output));
    output["schema_version"] = (clustersweep::report::export::SCHEMA_VERSION + 1).into();
    assert!(!estimate.is_valid(&output), "the version is a constant");
    for command in <JsonCommand as clap::ValueEnum>::value_variants() {
        let name = clap::ValueEnum::to_possible_value(command)
            .unwrap()
            .get_name()
            .to_string();
        validator(&name);
    }
}
