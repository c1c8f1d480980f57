//! The JSON Schema of each command's `--json` output (`clustersweep schema COMMAND`), made from
//! the report types themselves, so that a schema cannot drift from what is printed.

use crate::analysis::plan::{PlanPart, PlanReport};
use crate::analysis::validate::ValidationReport;
use crate::engine::sweep::bench::BenchReport;
use crate::engine::sweep::driver::SweepReport;
use crate::report::export::{
    AdaptersReport, EstimateReport, FitReport, StacksReport, Versioned, SCHEMA_VERSION,
};
use schemars::generate::SchemaSettings;
use schemars::transform::{transform_subschemas, Transform};
use schemars::{JsonSchema, Schema};

/// A command whose `--json` output has a schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum JsonCommand {
    Estimate,
    Validate,
    Catalog,
    /// `catalog --stacks`.
    CatalogStacks,
    Fit,
    /// `sweep`, its `--shard K/N` parts and `merge` print the same report.
    Sweep,
    Merge,
    Adapters,
    Bench,
    Plan,
    /// `plan --shard K/N`: the part `plan --merge` reads.
    PlanShard,
}

impl JsonCommand {
    /// The command line whose output the schema describes.
    pub fn command_line(self) -> &'static str {
        match self {
            JsonCommand::Estimate => "clustersweep estimate --json",
            JsonCommand::Validate => "clustersweep validate --json",
            JsonCommand::Catalog => "clustersweep catalog --json",
            JsonCommand::CatalogStacks => "clustersweep catalog --stacks --json",
            JsonCommand::Fit => "clustersweep fit --json",
            JsonCommand::Sweep => "clustersweep sweep --json",
            JsonCommand::Merge => "clustersweep merge --json",
            JsonCommand::Adapters => "clustersweep adapters --json",
            JsonCommand::Bench => "clustersweep bench --json",
            JsonCommand::Plan => "clustersweep plan --json",
            JsonCommand::PlanShard => "clustersweep plan --shard K/N",
        }
    }
}

/// The schema (JSON Schema draft 2020-12) of `command`'s JSON output. Every object lists its
/// keys and allows no others, so a key printed but not declared is caught by validating
/// against it; `schema_version` is the constant of this build.
pub fn json_schema(command: JsonCommand) -> serde_json::Value {
    let mut schema = match command {
        JsonCommand::Estimate => schema_of::<EstimateReport>(),
        JsonCommand::Validate => schema_of::<ValidationReport>(),
        JsonCommand::Catalog => schema_of::<crate::input::catalog::Catalog>(),
        JsonCommand::CatalogStacks => schema_of::<StacksReport<'static>>(),
        JsonCommand::Fit => schema_of::<FitReport>(),
        JsonCommand::Sweep | JsonCommand::Merge => schema_of::<SweepReport>(),
        JsonCommand::Adapters => schema_of::<AdaptersReport<'static>>(),
        JsonCommand::Bench => schema_of::<BenchReport>(),
        JsonCommand::Plan => schema_of::<PlanReport>(),
        JsonCommand::PlanShard => schema_of::<PlanPart>(),
    };
    schema.insert("title".into(), command.command_line().into());
    schema.insert(
        "description".into(),
        format!(
            "The JSON that `{}` prints (schema_version {SCHEMA_VERSION}).",
            command.command_line()
        )
        .into(),
    );
    if let Some(version) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("schema_version"))
        .and_then(|v| v.as_object_mut())
    {
        version.insert("const".into(), SCHEMA_VERSION.into());
    }
    schema.to_value()
}

fn schema_of<T: JsonSchema + serde::Serialize + 'static>() -> Schema {
    SchemaSettings::draft2020_12()
        .with_transform(ClosedObjects)
        .into_generator()
        .into_root_schema_for::<Versioned<'static, T>>()
}

/// Objects with declared properties allow no other keys.
#[derive(Clone)]
struct ClosedObjects;

impl Transform for ClosedObjects {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(object) = schema.as_object_mut() {
            if object.contains_key("properties") && !object.contains_key("additionalProperties") {
                object.insert("additionalProperties".into(), false.into());
            }
        }
        transform_subschemas(self, schema);
    }
}
