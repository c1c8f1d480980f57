//! Printing results: one [`Exporter`] trait, one implementation per format (table, JSON, CSV),
//! so every command offers the same formats the same way.

use crate::analysis::fit::{toml_snippet, FamilyFit, HoldOut};
use crate::analysis::plan::{Plan, PlanReport, SensitivityRow};
use crate::analysis::uncertainty::{tie_line, Coverage, Interval, DEFAULT_CONFIDENCE};
use crate::analysis::validate::{Assume, Source, ValidationReport};
use crate::engine::sweep::bench::BenchReport;
use crate::engine::sweep::driver::SweepReport;
use crate::engine::sweep::gpu::AdapterReport;
use crate::engine::sweep::SweepLayout;
use crate::input::catalog::stacks::{MicrobatchDefault, RankOrder, TpOverlapMechanism};
use crate::input::catalog::{Catalog, StackSpec};
use crate::model::run::{Estimate, Pricing};
use crate::model::{AttentionKernel, Dtype, Layout, Recompute};
use crate::units::{human_bytes, human_count, human_duration, human_mw, human_mwh, human_rounded, human_usd};
use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table};
use serde::Serialize;

/// What `estimate` reports: the scenario in brief, then every field of the estimate.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct EstimateReport {
    pub model: String,
    #[serde(serialize_with = "crate::units::whole_number")]
    pub parameters: f64,
    /// Parameters one token passes through: the routed experts it visits (not all of them),
    /// embeddings and output layer included.
    #[serde(serialize_with = "crate::units::whole_number")]
    pub active_parameters: f64,
    pub accelerator: String,
    /// The network the accelerators run on.
    pub network: crate::input::catalog::Network,
    pub count: u64,
    /// The software stack and the attention kernel it runs.
    pub stack: String,
    pub attention_kernel: AttentionKernel,
    pub layout: Layout,
    pub global_batch: u32,
    pub seq_len: u32,
    #[serde(serialize_with = "crate::units::rounded_count")]
    pub tokens: f64,
    pub dtype: Dtype,
    pub pricing: Pricing,
    #[serde(flatten)]
    pub estimate: Estimate,
    /// `[low, high]` of the step time at `interval.confidence`: the model's error on measured
    /// runs it was not fitted on (the inputs' own ranges are not drawn).
    pub step_time_s_interval: [f64; 2],
    /// The time to train scaled by the same factors.
    pub time_to_train_s_interval: [f64; 2],
    pub interval: Interval,
}

/// What `fit` reports.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct FitReport {
    pub families: Vec<FamilyFit>,
    pub cross_validation: Option<Vec<HoldOut>>,
    /// The calibration of the intervals on the cross-validation's predictions.
    pub interval_coverage: Option<Coverage>,
}

/// A way of printing each kind of result.
pub trait Exporter {
    fn estimate(&self, report: &EstimateReport) -> anyhow::Result<String>;
    fn validation(&self, report: &ValidationReport) -> anyhow::Result<String>;
    fn catalog(&self, catalog: &Catalog) -> anyhow::Result<String>;
    fn stacks(&self, stacks: &[StackSpec]) -> anyhow::Result<String>;
    fn fit(&self, report: &FitReport) -> anyhow::Result<String>;
    fn sweep(&self, report: &SweepReport) -> anyhow::Result<String>;
    fn adapters(&self, adapters: &[AdapterReport]) -> anyhow::Result<String>;
    fn bench(&self, report: &BenchReport) -> anyhow::Result<String>;
    fn plan(&self, report: &PlanReport) -> anyhow::Result<String>;
}

/// Human-readable tables: at most the terminal's width (100 columns when not a terminal),
/// unless `wide`.
pub struct TableExporter {
    pub wide: bool,
}
/// One JSON document per command, field names stable.
pub struct JsonExporter;
/// Comma-separated rows, one per item.
pub struct CsvExporter;

/// The exporter for the flags given (`wide`: tables keep every column).
pub fn exporter(json: bool, csv: bool, wide: bool) -> Box<dyn Exporter> {
    if json {
        Box::new(JsonExporter)
    } else if csv {
        Box::new(CsvExporter)
    } else {
        Box::new(WrappedTableExporter {
            tables: TableExporter { wide },
        })
    }
}

/// Width a table may take when stdout is not a terminal.
pub const PIPE_TABLE_WIDTH: usize = 100;

/// Fit `t` to the terminal (or [`PIPE_TABLE_WIDTH`]): columns whose rows all hold one value
/// leave the table for a line under it, then columns in `drop_order` are hidden until it fits,
/// and the longest cells of what is left wrap.
/// Returns that line ("" when nothing moved), naming what was hidden and `--wide`. With
/// `wide` the table stays whole.
fn fit_width(t: &mut Table, drop_order: &[usize], wide: bool) -> String {
    if wide {
        return String::new();
    }
    let max_width = t.width().map(usize::from).unwrap_or(PIPE_TABLE_WIDTH);
    let rendered_width = |t: &Table| {
        t.to_string()
            .lines()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
    };
    if rendered_width(t) <= max_width {
        return String::new();
    }
    let names: Vec<String> = t
        .header()
        .map(|h| h.cell_iter().map(|c| c.content()).collect())
        .unwrap_or_default();
    let rows = t.row_iter().count();
    let mut constant = vec![];
    for (i, name) in names.iter().enumerate() {
        let values: Vec<String> = t
            .column_cells_iter(i)
            .map(|c| c.map(|c| c.content()).unwrap_or_default())
            .collect();
        if rows > 1 && values.windows(2).all(|w| w[0] == w[1]) {
            constant.push(format!("{name} {}", values[0]));
            if let Some(col) = t.column_mut(i) {
                col.set_constraint(ColumnConstraint::Hidden);
            }
        }
    }
    let mut hidden = vec![];
    for &i in drop_order {
        if rendered_width(t) <= max_width {
            break;
        }
        if let Some(col) = t.column_mut(i) {
            if !col.is_hidden() {
                col.set_constraint(ColumnConstraint::Hidden);
                hidden.push(names.get(i).cloned().unwrap_or_default());
            }
        }
    }
    if rendered_width(t) > max_width {
        // What is left wraps its longest cells (the binding constraint's sentence).
        t.set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(max_width as u16);
    }
    let mut line = String::new();
    if !constant.is_empty() {
        line += &format!("every row: {}", constant.join(", "));
    }
    if !hidden.is_empty() {
        if !line.is_empty() {
            line += "; ";
        }
        line += &format!("not shown: {}", hidden.join(", "));
    }
    if line.is_empty() {
        // Only wrapped: nothing is missing.
        return String::new();
    }
    line + " (--wide shows every column)\n"
}

/// The width tables and prose fit: the terminal's, or [`PIPE_TABLE_WIDTH`] in a pipe; None
/// with `--wide`.
fn output_width(wide: bool) -> Option<usize> {
    (!wide).then(|| Table::new().width().map(usize::from).unwrap_or(PIPE_TABLE_WIDTH))
}

/// `out` with its prose lines (not table borders or rows) wrapped to `width`, each continuation
/// indented under the text after a leading `label: ` (where that label is short), else four
/// spaces in from the line's own indent.
fn wrap_prose(out: &str, width: Option<usize>) -> String {
    let Some(width) = width else {
        return out.to_string();
    };
    let is_table = |l: &str| l.starts_with(['┌', '│', '╞', '├', '└', '╰', '╭', '+', '|']);
    let mut wrapped = String::with_capacity(out.len());
    for line in out.split_inclusive('\n') {
        let text = line.strip_suffix('\n').unwrap_or(line);
        if is_table(text) || text.chars().count() <= width {
            wrapped += line;
            continue;
        }
        let lead = text.len() - text.trim_start().len();
        // A comment (the TOML that fit prints) stays a comment on every line.
        let indent = if text[lead..].starts_with("# ") {
            format!("{}# ", &text[..lead])
        } else {
            let label = text[lead..]
                .find(": ")
                .map(|at| lead + at + 2)
                .filter(|end| *end <= width / 3)
                .unwrap_or(lead + 4);
            " ".repeat(label)
        };
        // Hyphenated words ("reliability-bound", "megatron-core-2025") stay whole.
        let options = textwrap::Options::new(width)
            .subsequent_indent(&indent)
            .word_splitter(textwrap::WordSplitter::NoHyphenation);
        wrapped += &textwrap::fill(text, options);
        if line.ends_with('\n') {
            wrapped.push('\n');
        }
    }
    wrapped
}

/// Tables, and the prose around them wrapped to the width the tables fit.
struct WrappedTableExporter {
    tables: TableExporter,
}

/// Each method of [`WrappedTableExporter`]: the table exporter's text, its prose wrapped.
macro_rules! wrapped_methods {
    ($($method:ident: $report:ty),* $(,)?) => {
        impl Exporter for WrappedTableExporter {
            $(
                fn $method(&self, r: $report) -> anyhow::Result<String> {
                    let out = self.tables.$method(r)?;
                    Ok(wrap_prose(&out, output_width(self.tables.wide)))
                }
            )*
        }
    };
}

wrapped_methods!(
    estimate: &EstimateReport,
    validation: &ValidationReport,
    catalog: &Catalog,
    stacks: &[StackSpec],
    fit: &FitReport,
    sweep: &SweepReport,
    adapters: &[AdapterReport],
    bench: &BenchReport,
    plan: &PlanReport,
);

/// A duration with its interval in the same unit: "13.5 days (11-15)", "1.15 s (1.0-1.3)".
fn duration_with_interval(s: f64, interval: Option<[f64; 2]>) -> String {
    let text = human_duration(s);
    let Some([low, high]) = interval else {
        return text;
    };
    let Some((number, unit)) = text.split_once(' ') else {
        return text;
    };
    // The unit human_duration chose for `s`, applied to both ends.
    let per_unit_s = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "min" => 60.0,
        "h" => 3600.0,
        _ => 86_400.0,
    };
    let (low, high) = (low / per_unit_s, high / per_unit_s);
    let digits = if high >= 10.0 { 0 } else { 1 };
    format!("{number} {unit} ({low:.digits$}-{high:.digits$})")
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header(header.to_vec());
    t
}

fn right(t: &mut Table, columns: &[usize]) {
    for &c in columns {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// One layout on one line, as `estimate` prints it and `--emit` heads its output.
pub fn layout_line(l: &Layout) -> String {
    format!(
        "tp {} pp {} dp {} cp {} ep {} | microbatch {} interleave {} | recompute {} | sp {} tp-overlap {} | zero {}",
        l.tp,
        l.pp,
        l.dp,
        l.cp,
        l.ep,
        l.microbatch,
        l.interleave,
        recompute_cell(l.recompute, l.recompute_layers, l.offload_layers),
        l.sequence_parallel,
        l.tp_overlap,
        l.zero
    )
}

/// "70.6B parameters", or "671.0B parameters, 37.6B active" for a mixture of experts.
fn parameter_counts(total: f64, active: f64) -> String {
    if active < total * (1.0 - 1e-9) {
        format!("{:.1}B parameters, {:.1}B active", total / 1e9, active / 1e9)
    } else {
        format!("{:.1}B parameters", total / 1e9)
    }
}

impl Exporter for TableExporter {
    fn estimate(&self, r: &EstimateReport) -> anyhow::Result<String> {
        let e = &r.estimate;
        let mut out = String::new();
        out += &format!(
            "{} ({}) on {} x {}, {} tokens/step of {}, {} pricing\nnetwork: {}\nstack: {} ({} attention)\nlayout: {}\n\n",
            r.model,
            parameter_counts(r.parameters, r.active_parameters),
            human_count(r.count),
            r.accelerator,
            human_count(r.global_batch as u64 * r.seq_len as u64),
            r.dtype.name(),
            r.pricing.price_kind(),
            r.network.label(),
            r.stack,
            r.attention_kernel.name(),
            layout_line(&r.layout)
        );
        let mut t = table(&["total", "value"]);
        let band = |value: f64, [low, high]: [f64; 2]| {
            format!(
                "{} ({:.0} %: {} to {})",
                human_duration(value),
                100.0 * r.interval.confidence,
                human_duration(low),
                human_duration(high)
            )
        };
        let rows: [(&str, String); 12] = [
            ("step time", band(e.step_time_s, r.step_time_s_interval)),
            ("tokens/s", human_rounded(e.tokens_per_s)),
            (
                "tokens/s per accelerator",
                human_rounded(e.tokens_per_s_per_accelerator),
            ),
            ("MFU (model FLOPs / peak)", format!("{:.1} %", e.mfu * 100.0)),
            ("HFU (with recompute)", format!("{:.1} %", e.hfu * 100.0)),
            (
                "memory per accelerator",
                format!(
                    "{} of {}",
                    human_bytes(e.memory_per_accelerator_bytes),
                    human_bytes(e.memory_capacity_bytes)
                ),
            ),
            (
                "fits",
                if e.fits {
                    "yes".to_string()
                } else {
                    format!("NO: {} over", human_bytes(e.memory_excess_bytes))
                },
            ),
            (
                "goodput (failures, checkpoints)",
                format!("{:.1} %", e.goodput * 100.0),
            ),
            (
                "time to train",
                band(e.time_to_train_s, r.time_to_train_s_interval),
            ),
            ("facility power", human_mw(e.power_mw)),
            ("energy", human_mwh(e.energy_mwh)),
            ("cost", human_usd(e.cost_usd)),
        ];
        for (k, v) in rows {
            t.add_row(vec![Cell::new(k), Cell::new(v)]);
        }
        right(&mut t, &[1]);
        out += &format!("{t}\n");
        out += &format!(
            "{:.0} % intervals: {}{}; the inputs' own ranges are not included.\n\n",
            100.0 * r.interval.confidence,
            r.interval.basis,
            r.interval
                .extrapolation
                .as_ref()
                .map(|why| format!(", {why}"))
                .unwrap_or_default()
        );
        let mut t = table(&["step breakdown", "per step", "share"]);
        for (k, v) in e.breakdown.terms() {
            t.add_row(vec![
                Cell::new(k.trim_end_matches("_s")),
                Cell::new(human_duration(v)),
                Cell::new(format!("{:.1} %", 100.0 * v / e.step_time_s)),
            ]);
        }
        right(&mut t, &[1, 2]);
        out += &format!("{t}\n\n");
        let mut t = table(&["memory per accelerator", "bytes", "share"]);
        for (k, v) in e.memory.kinds() {
            t.add_row(vec![
                Cell::new(k.trim_end_matches("_bytes")),
                Cell::new(human_bytes(v)),
                Cell::new(format!("{:.1} %", 100.0 * v / e.memory_per_accelerator_bytes)),
            ]);
        }
        right(&mut t, &[1, 2]);
        out += &format!("{t}\n");
        Ok(out)
    }

    fn validation(&self, r: &ValidationReport) -> anyhow::Result<String> {
        let confidence = r.interval_coverage.as_ref().map_or(0.8, |c| c.confidence);
        let interval_header = format!("{:.0} % interval", 100.0 * confidence);
        let mut t = table(&[
            "run",
            "stack",
            "measured",
            "predicted",
            &interval_header,
            "error",
            "assumed / reason",
        ]);
        for row in &r.rows {
            // The knobs the row did not record, with where their values came from.
            let chosen = match &row.reason {
                Some(reason) => reason.clone(),
                None => row
                    .assumed
                    .iter()
                    .filter(|(k, a)| a.source != Source::Recorded && k.as_str() != "stack")
                    .map(|(k, a)| format!("{k}={} ({})", a.value, a.source.name()))
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            let mark = match (row.measured_from, row.fits) {
                (Some("mfu_pct"), _) => " (from MFU)",
                (_, Some(false)) => " (does not fit)",
                _ => "",
            };
            t.add_row(vec![
                Cell::new(&row.run_id),
                Cell::new(&row.stack),
                Cell::new(
                    row.measured_step_time_s
                        .map_or("-".into(), |v| format!("{v:.3} s")),
                ),
                Cell::new(
                    row.predicted_step_time_s
                        .map_or("-".into(), |v| format!("{v:.3} s")),
                ),
                Cell::new(row.step_time_s_interval.map_or("-".into(), |[low, high]| {
                    // Three significant figures at the high end: the interval is a
                    // range, and the table has a hundred columns.
                    let decimals = if high < 10.0 {
                        2
                    } else if high < 100.0 {
                        1
                    } else {
                        0
                    };
                    format!("{low:.decimals$}-{high:.decimals$} s")
                })),
                Cell::new(row.error_pct.map_or("-".into(), |v| format!("{v:+.1} %{mark}"))),
                Cell::new(chosen),
            ]);
        }
        right(&mut t, &[2, 3, 4, 5]);
        // The assumed knobs are a paragraph per row: the first to go (JSON and --wide keep them).
        let fitted = fit_width(&mut t, &[6, 1, 4], self.wide);
        let mut out = format!("{t}\n{fitted}\n");
        let mut t = table(&["group", "rows", "MAPE", "max |error|", "worst run"]);
        for g in r
            .groups
            .iter()
            .chain(r.overall.iter())
            .chain(r.derived_from_mfu.iter())
        {
            t.add_row(vec![
                Cell::new(&g.group),
                Cell::new(g.rows),
                Cell::new(format!("{:.2} %", g.mape_pct)),
                Cell::new(format!("{:.1} %", g.max_abs_error_pct)),
                Cell::new(&g.worst_run_id),
            ]);
        }
        right(&mut t, &[1, 2, 3]);
        let fitted = fit_width(&mut t, &[], self.wide);
        out += &format!("{t}\n{fitted}\n");
        let mut t = table(&["same model, accelerator and batch", "rows", "Spearman"]);
        for g in &r.rank_groups {
            t.add_row(vec![
                Cell::new(&g.key),
                Cell::new(g.rows),
                Cell::new(format!("{:+.2}", g.spearman)),
            ]);
        }
        right(&mut t, &[1, 2]);
        out += &format!("{t}\n");
        if let Some(o) = &r.overall {
            out += &format!(
                "\nMean of the {} groups' MAPEs {} (knobs a row leaves empty: --assume {}). MAPE {:.2} % over {} rows with a measured step time (max {:.1} %, {}); mean Spearman {}; {} rows not modelled.\n",
                r.groups.len(),
                r.mean_group_mape_pct.map_or("-".into(), |m| format!("{m:.2} %")),
                match r.assume {
                    Assume::Stack => "stack",
                    Assume::Fastest => "fastest",
                },
                o.mape_pct,
                o.rows,
                o.max_abs_error_pct,
                o.worst_run_id,
                r.mean_spearman.map_or("-".into(), |s| format!("{s:+.2}")),
                r.skipped
            );
        }
        if let Some(c) = &r.interval_coverage {
            out += &format!(
                "{:.0} % intervals (learned from the other publications' held-out errors) hold {} of {} measured step times ({:.1} %) about these in-sample predictions (the calibration target judges them about held-out ones: `fit --cross-validate`).\n",
                100.0 * c.confidence,
                c.covered,
                c.rows,
                100.0 * c.covered_fraction
            );
        }
        Ok(out)
    }

    fn catalog(&self, c: &Catalog) -> anyhow::Result<String> {
        let mut t = table(&[
            "accelerator",
            "year",
            "bf16 TF",
            "fp8 TF",
            "fp4 TF",
            "HBM",
            "HBM TB/s",
            "scale-up GB/s",
            "domain",
            "scale-out Gb/s",
            "power W",
            "price",
            "$/h",
            "efficiency",
        ]);
        let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v}"));
        for a in &c.accelerators {
            t.add_row(vec![
                Cell::new(&a.id),
                Cell::new(a.year),
                Cell::new(num(a.peak_tflops.bf16.or(a.peak_tflops.fp16))),
                Cell::new(num(a.peak_tflops.fp8)),
                Cell::new(num(a.peak_tflops.fp4)),
                Cell::new(format!("{} GB", a.hbm_gb)),
                Cell::new(a.hbm_tb_per_s),
                Cell::new(a.scale_up_gb_per_s),
                // The sizes and NIC rates the part ships with: what `[search]` can choose.
                Cell::new(slashed(&a.shipped_domains())),
                Cell::new(slashed(&a.shipped_nic_rates())),
                Cell::new(a.power_all_in_w),
                Cell::new(a.price_usd.map_or("-".into(), human_usd)),
                Cell::new(num(a.price_per_hour_usd)),
                Cell::new(&a.efficiency),
            ]);
        }
        right(&mut t, &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        // Least needed first: the year, FP4, rental, scale-out, the family, power, scale-up.
        let fitted = fit_width(&mut t, &[1, 4, 12, 9, 13, 10, 7], self.wide);
        let mut out = format!("{t}\n{fitted}\n");
        let mut t = table(&[
            "efficiency family",
            "gemm",
            "half dim",
            "low-precision",
            "attention",
            "flash2",
            "flash1",
            "layer us",
            "step ms",
            "like",
        ]);
        for f in &c.efficiency {
            let e = c.fitted_efficiency(&f.id).map_err(anyhow::Error::msg)?;
            t.add_row(vec![
                Cell::new(&f.id),
                Cell::new(format!("{:.3}", e.gemm)),
                Cell::new(format!("{:.0}", e.gemm_half_dim)),
                Cell::new(format!("{:.3}", e.low_precision_gemm)),
                Cell::new(format!("{:.3}", e.attention)),
                Cell::new(format!("{:.3}", e.attention_flash2)),
                Cell::new(format!("{:.3}", e.attention_flash1)),
                Cell::new(format!("{:.1}", e.layer_overhead_us)),
                Cell::new(format!("{:.1}", e.step_overhead_ms)),
                Cell::new(f.like.clone().unwrap_or_default()),
            ]);
        }
        let fitted = fit_width(&mut t, &[9, 6, 5, 8, 7], self.wide);
        out += &format!("{t}\n{fitted}\n");
        let mut t = table(&[
            "model preset",
            "layers",
            "hidden",
            "heads",
            "kv",
            "ffn",
            "vocab",
            "seq",
            "experts",
        ]);
        for m in &c.models {
            t.add_row(vec![
                Cell::new(&m.id),
                Cell::new(m.layers),
                Cell::new(m.hidden),
                Cell::new(m.heads),
                Cell::new(m.kv_heads.unwrap_or(m.heads)),
                Cell::new(m.ffn),
                Cell::new(m.vocab),
                Cell::new(m.seq_len),
                Cell::new(m.experts.map_or("-".into(), |e| {
                    format!("{e} top-{}", m.experts_per_token.unwrap_or(1))
                })),
            ]);
        }
        let fitted = fit_width(&mut t, &[7, 6, 4], self.wide);
        out += &format!("{t}\n{fitted}\nSources\n");
        out += &format!(
            "facility: {}\n",
            c.facility
                .sources
                .values()
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
        for a in &c.accelerators {
            out += &format!("{}:\n", a.id);
            for (k, v) in &a.sources {
                out += &format!("  {k}: {v}\n");
            }
        }
        for f in &c.efficiency {
            out += &format!("{}:\n", f.id);
            for (k, v) in &f.sources {
                out += &format!("  {k}: {v}\n");
            }
        }
        for m in &c.models {
            out += &format!("{}: {}\n", m.id, m.source);
        }
        Ok(out)
    }

    fn stacks(&self, stacks: &[StackSpec]) -> anyhow::Result<String> {
        let yes = |b: bool| if b { "yes" } else { "-" };
        let mut t = table(&[
            "stack",
            "year",
            "TP",
            "SP",
            "TP overlap",
            "PP",
            "interleave",
            "PP overlap",
            "CP",
            "EP",
            "ZeRO",
            "attention",
            "formats",
            "rank order",
        ]);
        for st in stacks {
            t.add_row(vec![
                Cell::new(&st.id),
                Cell::new(st.year),
                Cell::new(yes(st.tensor_parallel)),
                Cell::new(yes(st.sequence_parallel)),
                Cell::new(match st.tp_overlap {
                    TpOverlapMechanism::None => "-",
                    TpOverlapMechanism::Userbuffers => "userbuffers",
                    TpOverlapMechanism::AsyncTp => "async TP",
                }),
                Cell::new(yes(st.pipeline_parallel)),
                Cell::new(if st.dualpipe {
                    "DualPipe"
                } else {
                    yes(st.interleave)
                }),
                Cell::new(yes(st.pp_overlap)),
                Cell::new(yes(st.context_parallel)),
                Cell::new(if st.expert_parallel {
                    let mut ep = vec!["yes"];
                    match (st.ep_overlap, st.defaults.ep_overlap) {
                        (true, true) => ep.push("overlapped"),
                        (true, false) => ep.push("overlap off by default"),
                        _ => {}
                    }
                    if st.dispatch_per_node {
                        ep.push("once per node");
                    }
                    if st.fp8_dispatch {
                        ep.push("FP8 dispatch");
                    }
                    ep.join(", ")
                } else {
                    "-".to_string()
                }),
                Cell::new(
                    st.zero
                        .iter()
                        .map(|z| z.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                Cell::new(st.attention.name()),
                Cell::new(st.formats.iter().map(|d| d.name()).collect::<Vec<_>>().join(" ")),
                Cell::new(match st.rank_order {
                    RankOrder::TpCpDpPp => "tp-cp-dp-pp",
                    RankOrder::TpCpPpDp => "tp-cp-pp-dp",
                }),
            ]);
        }
        // Least needed first: the rank order, the year, the formats, the overlaps.
        let fitted = fit_width(&mut t, &[13, 1, 12, 7, 4, 11], self.wide);
        let mut out = format!("{t}\n{fitted}\n");
        let mut t = table(&[
            "stack",
            "microbatch",
            "interleave",
            "recompute",
            "SP",
            "TP overlap",
            "zero",
            "grads",
            "DP overlap (grads, params)",
            "ZeRO-2/3 sync",
        ]);
        for st in stacks {
            let d = &st.defaults;
            t.add_row(vec![
                Cell::new(&st.id),
                Cell::new(match d.microbatch {
                    MicrobatchDefault::Sequences(m) => m.to_string(),
                    MicrobatchDefault::Named(_) => "per replica".into(),
                }),
                Cell::new(d.interleave),
                Cell::new(d.recompute.name()),
                Cell::new(yes(d.sequence_parallel)),
                Cell::new(yes(d.tp_overlap)),
                Cell::new(d.zero),
                Cell::new(&d.grad_dtype),
                Cell::new(format!(
                    "{}, {}",
                    yes(st.grad_reduce_overlap),
                    yes(st.param_gather_overlap)
                )),
                Cell::new(match st.zero_sync {
                    crate::model::ZeroSync::PerMicrobatch => "per microbatch",
                    crate::model::ZeroSync::PerStep => "per step",
                    crate::model::ZeroSync::PerStepWhenPipelined => "per step under PP",
                }),
            ]);
        }
        let fitted = fit_width(&mut t, &[9, 7, 8, 5], self.wide);
        out +=
            &format!("Defaults (what a run gets when it does not set the knob):\n{t}\n{fitted}\nSources\n");
        for st in stacks {
            out += &format!("{} ({}):\n", st.id, st.name);
            for (k, v) in &st.sources {
                out += &format!("  {k}: {v}\n");
            }
        }
        Ok(out)
    }

    fn fit(&self, r: &FitReport) -> anyhow::Result<String> {
        let mut out = String::new();
        for f in &r.families {
            let informed: Vec<String> = f.informed_rows.iter().map(|(k, n)| format!("{k} {n}")).collect();
            out += &format!(
                "[{}] fitted {}\nrows each parameter informs: {}\n{}",
                f.family,
                f.fitted_keys.join(", "),
                informed.join(", "),
                toml_snippet(f)
            );
            for (key, fitted, prior) in &f.drifted {
                out += &format!(
                    "note: {key} = {fitted:.4} is {:+.0} % from its prior {prior} (a sign of a mechanism the model lacks, or of a prior that does not describe these rows)\n",
                    (fitted / prior - 1.0) * 100.0
                );
            }
            out += "\n";
        }
        if let Some(cv) = &r.cross_validation {
            let mut t = table(&[
                "held-out group",
                "rows",
                "MAPE with catalog",
                "MAPE refitted without it",
            ]);
            for h in cv {
                t.add_row(vec![
                    Cell::new(&h.group),
                    Cell::new(h.rows),
                    Cell::new(format!("{:.2} %", h.in_sample_mape_pct)),
                    Cell::new(format!("{:.2} %", h.out_of_sample_mape_pct)),
                ]);
            }
            right(&mut t, &[1, 2, 3]);
            out += &format!("{t}\n");
        }
        if let Some(c) = &r.interval_coverage {
            out += &format!(
                "{:.0} % intervals, each row judged by the other publications' held-out errors: {} of {} rows inside ({:.1} %), median width {:.1} % of the prediction.\n",
                100.0 * c.confidence,
                c.covered,
                c.rows,
                100.0 * c.covered_fraction,
                100.0 * c.median_width_fraction
            );
        }
        Ok(out)
    }

    fn sweep(&self, r: &SweepReport) -> anyhow::Result<String> {
        let mut header = vec!["#"];
        header.extend(LAYOUT_HEADER);
        header.extend([
            "step",
            "tokens/s",
            "MFU",
            "memory",
            "time to train",
            "cost",
            "energy",
        ]);
        let train_header = match r.interval_confidence {
            Some(c) if r.top.iter().any(|e| e.time_to_train_s_interval.is_some()) => {
                format!("time to train ({:.0} %)", 100.0 * c)
            }
            _ => "time to train".to_string(),
        };
        if let Some(h) = header.iter_mut().find(|h| **h == "time to train") {
            *h = &train_header;
        }
        if r.uncertainty.is_some() {
            header.push("p_best");
        }
        let mut t = table(&header);
        for e in &r.top {
            let mut row = vec![Cell::new(e.rank)];
            row.extend(layout_cells(&e.layout));
            let m = &e.estimate;
            row.extend([
                Cell::new(human_duration(m.step_time_s)),
                Cell::new(human_rounded(m.tokens_per_s)),
                Cell::new(format!("{:.1} %", 100.0 * m.mfu)),
                Cell::new(human_bytes(m.memory_per_accelerator_bytes)),
                Cell::new(duration_with_interval(
                    m.time_to_train_s,
                    e.time_to_train_s_interval,
                )),
                Cell::new(human_usd(m.cost_usd)),
                Cell::new(human_mwh(m.energy_mwh)),
            ]);
            if r.uncertainty.is_some() {
                row.push(Cell::new(p_best_cell(e.p_best, e.tied_with_best)));
            }
            t.add_row(row);
        }
        right(&mut t, &numeric_columns(&header));
        // Least needed first: throughput and energy follow from the step and the cost. The
        // network is never dropped (a sweep over networks is asking which).
        let drop_order = column_indices(
            &header,
            &[
                "tokens/s", "energy", "memory", "batch", "sp", "stack", "v", "zero", "mb", "cost",
            ],
        );
        let fitted = fit_width(&mut t, &drop_order, self.wide);
        let c = &r.counts;
        let mut out = format!("{} ranked by {}\n{t}\n{fitted}\n", r.model, r.objective);
        out += &format!(
            "evaluated {} layouts{}{} in {} ({:.3e} layouts/s, {:.3e} valid/s) on {}{}\n",
            human_count(c.evaluated),
            pruned_clause(c),
            r.shard
                .as_ref()
                .map(|s| format!(
                    " (shard {s}, indices {}..{} of {})",
                    r.range[0], r.range[1], r.space_size
                ))
                .unwrap_or_default(),
            human_duration(r.elapsed_s),
            r.layouts_per_s,
            r.valid_layouts_per_s,
            r.backend,
            if r.adapters.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.adapters.join(", "))
            },
        );
        out += &format!(
            "invalid {} (degrees not dividing the count {}, layout rules {}, format unsupported {}, beyond the stack {}); did not fit {}; valid {}\n",
            c.invalid(), c.invalid_degrees, c.invalid_layout, c.invalid_dtype, c.invalid_stack, c.did_not_fit, c.valid
        );
        if let Some(u) = &r.uncertainty {
            out += &format!("{}\n", tie_line(u, "layout"));
        }
        Ok(out)
    }

    fn adapters(&self, adapters: &[AdapterReport]) -> anyhow::Result<String> {
        let mut t = table(&[
            "adapter",
            "backend",
            "type",
            "f64",
            "subgroups",
            "storage binding",
            "storage buffers",
            "workgroups/dim",
            "usable",
        ]);
        for a in adapters {
            t.add_row(vec![
                Cell::new(&a.name),
                Cell::new(&a.backend),
                Cell::new(&a.device_type),
                Cell::new(a.shader_f64),
                Cell::new(a.subgroups),
                Cell::new(human_bytes(a.max_storage_buffer_binding_size as f64)),
                Cell::new(a.max_storage_buffers_per_shader_stage),
                Cell::new(a.max_compute_workgroups_per_dimension),
                Cell::new(a.usable),
            ]);
        }
        if adapters.is_empty() {
            return Ok(
                "no wgpu adapter found (on Debian: apt-get install mesa-vulkan-drivers libvulkan1)\n".into(),
            );
        }
        Ok(format!("{t}\n"))
    }

    fn bench(&self, r: &BenchReport) -> anyhow::Result<String> {
        let mut t = table(&[
            "backend",
            "adapter",
            "elapsed",
            "valid layouts/s",
            "layouts/s",
            "GPU / readback / host",
        ]);
        for b in &r.results {
            let shares = match (
                b.gpu_time_fraction,
                b.readback_time_fraction,
                b.host_time_fraction,
            ) {
                (Some(g), Some(rb), Some(h)) => {
                    format!("{:.1} / {:.1} / {:.1} %", 100.0 * g, 100.0 * rb, 100.0 * h)
                }
                _ => "-".into(),
            };
            t.add_row(vec![
                Cell::new(&b.backend),
                Cell::new(b.adapter.clone().unwrap_or_default()),
                Cell::new(human_duration(b.elapsed_s)),
                Cell::new(format!("{:.3e}", b.valid_layouts_per_s)),
                Cell::new(format!("{:.3e}", b.layouts_per_s)),
                Cell::new(shares),
            ]);
        }
        right(&mut t, &[2, 3, 4]);
        let m = &r.machine;
        let mut out = format!(
            "{:.3e} valid layouts/s (the fastest backend's) of {} layouts (clustersweep bench's fixed space)\n\
             machine: {}, {} logical cores ({} engine threads), {} {}-bit SIMD (binary built for {}), {} {}\n{t}\n",
            r.valid_layouts_per_s,
            human_count(r.space_size),
            m.cpu_model,
            m.logical_cores,
            m.cpu_engine_threads,
            m.simd,
            m.simd_bits,
            m.compiled_simd,
            m.os,
            m.arch
        );
        for b in &r.results {
            if let Some(driver) = b.driver.as_deref().filter(|d| !d.is_empty()) {
                out += &format!("{} driver: {driver}\n", b.backend);
            }
        }
        if !r.pruned.is_empty() {
            let mut p = table(&[
                "backend",
                "elapsed",
                "evaluated",
                "pruned",
                "layouts/s",
                "speedup",
                "same top",
            ]);
            for b in &r.pruned {
                p.add_row(vec![
                    Cell::new(&b.backend),
                    Cell::new(human_duration(b.elapsed_s)),
                    Cell::new(human_count(b.evaluated)),
                    Cell::new(human_count(b.pruned)),
                    Cell::new(format!("{:.3e}", b.layouts_per_s)),
                    Cell::new(format!("{:.2}x", b.speedup)),
                    Cell::new(if b.same_top { "yes" } else { "NO" }),
                ]);
            }
            right(&mut p, &[1, 2, 3, 4, 5]);
            out += &format!(
                "pruned sweeps (skipping layouts whose block's bound cannot enter the top 20; \
                 layouts/s counts the space covered)\n{p}\n"
            );
        }
        if !r.draws.is_empty() {
            let mut d = table(&[
                "backend",
                "adapter",
                "draws",
                "layouts per draw",
                "elapsed",
                "draws/s",
            ]);
            for b in &r.draws {
                d.add_row(vec![
                    Cell::new(&b.backend),
                    Cell::new(b.adapter.clone().unwrap_or_default()),
                    Cell::new(b.draws),
                    Cell::new(b.candidates),
                    Cell::new(human_duration(b.elapsed_s)),
                    Cell::new(format!("{:.1}", b.draws_per_s)),
                ]);
            }
            right(&mut d, &[2, 3, 4, 5]);
            out += &format!("--uncertainty: the top layouts re-priced under drawn assumptions\n{d}\n");
        }
        for n in &r.notes {
            out += &format!("note: {n}\n");
        }
        Ok(out)
    }
    fn plan(&self, r: &PlanReport) -> anyhow::Result<String> {
        let c = &r.constraints;
        let pricing = r.pricing.name();
        let limits: Vec<String> = [
            c.budget_usd
                .map(|b| format!("budget {} ({pricing})", human_usd(b))),
            c.power_mw.map(|p| format!("power {}", human_mw(p))),
            c.max_days.map(|d| format!("at most {d:.0} days")),
            c.max_accelerators.map(|n| format!("at most {n} accelerators")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut out = format!(
            "{} ({:.2}T parameters) on {:.3}T tokens; {}; ranked by {}\n\n",
            r.model,
            r.parameters / 1e12,
            r.tokens / 1e12,
            if limits.is_empty() {
                "no constraints".to_string()
            } else {
                limits.join(", ")
            },
            r.objective
        );
        if let Some(best) = r.plans.first() {
            let (l, e) = (&best.layout, &best.estimate);
            out += &format!(
                "The plan: {} x {} ({}) on {}, tp {} pp {} dp {} cp {} ep {} (microbatch {}, interleave {}, recompute {}, zero {}), \
                 {:.1} days to train{}, {}, {}, {}, MFU {:.1} %, goodput {:.1} %. {}.\n\n",
                human_count(l.count),
                l.accelerator,
                l.network.label(),
                l.stack,
                l.tp,
                l.pp,
                l.dp,
                l.cp,
                l.ep,
                l.microbatch,
                l.interleave,
                recompute_cell(l.recompute, l.recompute_layers, l.offload_layers),
                l.zero,
                best.time_to_train_days,
                best.time_to_train_s_interval
                    .map(|[low, high]| format!(
                        " ({:.0} % interval of the model's error: {:.1}-{:.1})",
                        100.0 * r.interval_confidence.unwrap_or(DEFAULT_CONFIDENCE),
                        low / 86400.0,
                        high / 86400.0
                    ))
                    .unwrap_or_default(),
                human_mw(e.power_mw),
                human_usd(e.cost_usd),
                human_mwh(e.energy_mwh),
                100.0 * e.mfu,
                100.0 * e.goodput,
                best.binding_constraint.text
            );
        } else {
            out += "No plan meets the constraints.\n\n";
        }
        out += &format!(
            "The best plan on each accelerator\n{}\n",
            plan_table(&r.per_accelerator, r.interval_confidence, self.wide)
        );
        out += &format!(
            "The {} best plans\n{}\n",
            r.plans.len(),
            plan_table(&r.plans, r.interval_confidence, self.wide)
        );
        if let Some(u) = &r.uncertainty {
            out += &format!("{}\n\n", tie_line(u, "plan"));
        }
        if let Some(rows) = &r.sensitivity {
            out += &format!(
                "What would change the answer: each assumption at the ends of its range (10th and 90th percentiles), the others central\n{}\n",
                sensitivity_table(rows, r.plans.first().map(|p| p.time_to_train_days), self.wide)
            );
        }
        if let Some(p) = &r.pareto {
            out += &format!(
                "Pareto set over time, cost and energy ({} plans)\n{}\n",
                p.len(),
                plan_table(p, r.interval_confidence, self.wide)
            );
        }
        let d = &r.dropped;
        out += &format!(
            "{} (accelerator, count) pairs; dropped: {} over power, {} over budget, {} over the deadline, \
             {} with no layout that fits. {} layouts evaluated{} in {} on {}.\n",
            r.pairs,
            d.power,
            d.budget,
            d.time,
            d.no_layout,
            human_count(r.counts.evaluated),
            pruned_clause(&r.counts),
            human_duration(r.elapsed_s),
            r.backend
        );
        for s in &r.skipped_accelerators {
            out += &format!("left out: {s}\n");
        }
        for n in &r.notes {
            out += &format!("note: {n}\n");
        }
        Ok(out)
    }
}

/// The plans as a table fitted to the terminal (unless `wide`), with the line saying what it
/// leaves out.
/// ", and pruned N more" where blocks were skipped as unable to enter the top; nothing otherwise.
fn pruned_clause(c: &crate::engine::sweep::Counts) -> String {
    if c.pruned == 0 {
        String::new()
    } else {
        format!(
            " (and pruned {} more: bounds that could not enter the top)",
            human_count(c.pruned)
        )
    }
}

fn plan_table(plans: &[Plan], confidence: Option<f64>, wide: bool) -> String {
    let mut header = LAYOUT_HEADER.to_vec();
    let days = match confidence {
        Some(c) if plans.iter().any(|p| p.time_to_train_s_interval.is_some()) => {
            format!("days ({:.0} %)", 100.0 * c)
        }
        _ => "days".to_string(),
    };
    header.extend([
        days.as_str(),
        "MW",
        "cost",
        "energy",
        "MFU",
        "goodput",
        "binding constraint",
    ]);
    let ranked = plans.iter().any(|p| p.p_best.is_some());
    if ranked {
        header.push("p_best");
    }
    let mut t = table(&header);
    for p in plans {
        let e = &p.estimate;
        let mut row = layout_cells(&p.layout);
        row.extend([
            Cell::new(match p.time_to_train_s_interval {
                Some([low, high]) => format!(
                    "{:.1} ({:.0}-{:.0})",
                    p.time_to_train_days,
                    low / 86400.0,
                    high / 86400.0
                ),
                None => format!("{:.1}", p.time_to_train_days),
            }),
            Cell::new(human_mw(e.power_mw).trim_end_matches(" MW").to_string()),
            Cell::new(human_usd(e.cost_usd)),
            Cell::new(human_mwh(e.energy_mwh)),
            Cell::new(format!("{:.1} %", 100.0 * e.mfu)),
            Cell::new(format!("{:.1} %", 100.0 * e.goodput)),
            Cell::new(&p.binding_constraint.text),
        ]);
        if ranked {
            row.push(Cell::new(p_best_cell(p.p_best, p.tied_with_best)));
        }
        t.add_row(row);
    }
    right(&mut t, &numeric_columns(&header));
    // Least needed first: energy follows from power and days, MFU from the step. The network
    // is never dropped (the question asks on what network).
    let drop_order = column_indices(
        &header,
        &[
            "energy", "goodput", "MFU", "batch", "sp", "stack", "v", "zero", "mb", "MW",
        ],
    );
    let fitted = fit_width(&mut t, &drop_order, wide);
    format!("{t}\n{fitted}")
}

/// A ranked entry's share of draws in which it is best, starred when it is tied with the first.
fn p_best_cell(p_best: Option<f64>, tied: Option<bool>) -> String {
    match p_best {
        Some(p) => format!("{:.0} %{}", 100.0 * p, if tied == Some(true) { " *" } else { "" }),
        None => String::new(),
    }
}

/// `plan --sensitivity`'s rows: each assumption's range and the best plan at each end.
fn sensitivity_table(rows: &[SensitivityRow], central_days: Option<f64>, wide: bool) -> String {
    let mut t = table(&[
        "assumption",
        "range",
        "days at low",
        "days at high",
        "cluster at low",
        "cluster at high",
    ]);
    let days = |d: Option<f64>| match (d, central_days) {
        (Some(d), Some(c)) if c > 0.0 => format!("{d:.1} ({:+.0} %)", 100.0 * (d / c - 1.0)),
        (Some(d), _) => format!("{d:.1}"),
        (None, _) => "no plan".into(),
    };
    for r in rows {
        let range = match (r.low_value, r.high_value) {
            _ if r.set_in_scenario => "set in the scenario".to_string(),
            (Some(l), Some(h)) => format!(
                "{} to {}{}",
                short_value(l),
                short_value(h),
                unit_of_key(r.value_key.as_deref().unwrap_or(""))
            ),
            _ => format!("x{} to x{}", short_value(r.low), short_value(r.high)),
        };
        let same = r.plan_low == r.plan_high;
        // "131072 x gb300, tp 32 pp 1 dp 4096": the table names the cluster, JSON the layout.
        let cluster = |p: &Option<String>| match p {
            Some(p) => p.split(", ").next().unwrap_or(p).to_string(),
            None => "none".into(),
        };
        t.add_row(vec![
            Cell::new(&r.assumption),
            Cell::new(range),
            Cell::new(days(r.time_to_train_days_low)),
            Cell::new(days(r.time_to_train_days_high)),
            Cell::new(cluster(&r.plan_low)),
            Cell::new(if same {
                "same".to_string()
            } else {
                cluster(&r.plan_high)
            }),
        ]);
    }
    right(&mut t, &[2, 3]);
    let fitted = fit_width(&mut t, &[5, 4], wide);
    format!("{t}\n{fitted}")
}

/// The unit a facility key's name carries, as a table prints it after a value.
fn unit_of_key(key: &str) -> &'static str {
    [
        ("_minutes", " min"),
        ("_gb_per_s", " GB/s"),
        ("_usd_per_mwh", " $/MWh"),
        ("_latency_us", " us"),
        ("_latency_ms", " ms"),
        ("oversubscription", ":1"),
    ]
    .iter()
    .find(|(suffix, _)| key.ends_with(suffix))
    .map_or("", |(_, unit)| unit)
}

/// A number in at most three significant figures, in plain or e-notation.
fn short_value(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-2 || v.abs() >= 1e5) {
        format!("{v:.2e}")
    } else {
        let decimals = match v.abs() {
            a if a >= 100.0 => 0,
            a if a >= 10.0 => 1,
            a if a >= 1.0 => 2,
            _ => 3,
        };
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// The positions of the columns `names` in `header` (a name also matches its header with a
/// parenthesised qualifier, `days (80 %)`), in the order of `names`; names not in the table
/// are skipped.
fn column_indices(header: &[&str], names: &[&str]) -> Vec<usize> {
    names
        .iter()
        .filter_map(|n| {
            header
                .iter()
                .position(|h| h == n || h.strip_prefix(n).is_some_and(|rest| rest.starts_with(" (")))
        })
        .collect()
}

/// `16/64/256`: the options a catalog entry lists.
fn slashed<T: std::fmt::Display>(values: &[T]) -> String {
    values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("/")
}

/// The columns of a sweep's or plan's table that hold numbers (right-aligned): all but the
/// named text columns.
fn numeric_columns(header: &[&str]) -> Vec<usize> {
    const TEXT: [&str; 6] = [
        "accelerator",
        "network",
        "stack",
        "recompute",
        "sp",
        "binding constraint",
    ];
    (0..header.len())
        .filter(|i| !TEXT.contains(&header[*i]))
        .collect()
}

/// Table columns of a layout, shared by `sweep` and `plan`.
const LAYOUT_HEADER: [&str; 15] = [
    "accelerator",
    "network",
    "stack",
    "count",
    "tp",
    "pp",
    "dp",
    "cp",
    "ep",
    "mb",
    "v",
    "recompute",
    "sp",
    "zero",
    "batch",
];

/// The recompute mode, with partial recomputation and offload where a layout uses them.
fn recompute_cell(recompute: Recompute, layers: u32, offload: u32) -> String {
    let mut text = recompute.name().to_string();
    if layers > 0 {
        text += &format!(" ({layers} layers)");
    }
    if offload > 0 {
        text += &format!(", offload {offload}");
    }
    text
}

fn layout_cells(l: &SweepLayout) -> Vec<Cell> {
    vec![
        Cell::new(&l.accelerator),
        Cell::new(l.network.label()),
        Cell::new(&l.stack),
        Cell::new(human_count(l.count)),
        Cell::new(l.tp),
        Cell::new(l.pp),
        Cell::new(l.dp),
        Cell::new(l.cp),
        Cell::new(l.ep),
        Cell::new(l.microbatch),
        Cell::new(l.interleave),
        Cell::new(recompute_cell(l.recompute, l.recompute_layers, l.offload_layers)),
        Cell::new(if l.sequence_parallel { "on" } else { "off" }),
        Cell::new(l.zero),
        Cell::new(human_count(l.global_batch as u64)),
    ]
}

/// The version of the JSON reports' vocabulary, their first key: raised when a key is renamed,
/// removed or changes meaning (2: `binding_constraint` became `{kind, value, limit, text}` and
/// estimates gained `active_parameters`; 3: fractions say so in their names (`mfu_fraction`,
/// `hfu_fraction`, `goodput_fraction`, bench's `*_time_fraction`), validate's rows name their
/// accelerators `count` as every other report does, counts of bytes, FLOPs and tokens are
/// integers, and `catalog --stacks` and `adapters` print objects with `schema_version` too).
pub const SCHEMA_VERSION: u32 = 3;

/// A report with `schema_version` in front of its own keys.
#[derive(Serialize, schemars::JsonSchema)]
pub struct Versioned<'a, T: Serialize> {
    /// The vocabulary's version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    #[serde(flatten)]
    pub report: &'a T,
}

/// What `catalog --stacks --json` prints.
#[derive(Serialize, schemars::JsonSchema)]
pub struct StacksReport<'a> {
    pub stacks: &'a [StackSpec],
}

/// What `adapters --json` prints.
#[derive(Serialize, schemars::JsonSchema)]
pub struct AdaptersReport<'a> {
    pub adapters: &'a [AdapterReport],
}

fn versioned_json<T: Serialize>(report: &T) -> anyhow::Result<String> {
    let v = Versioned {
        schema_version: SCHEMA_VERSION,
        report,
    };
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

/// `plan --shard K/N`'s part, which only `plan --merge` reads: JSON whatever the flags.
pub fn plan_part_json(part: &crate::analysis::plan::PlanPart) -> anyhow::Result<String> {
    versioned_json(part)
}

impl Exporter for JsonExporter {
    fn estimate(&self, r: &EstimateReport) -> anyhow::Result<String> {
        versioned_json(r)
    }
    fn validation(&self, r: &ValidationReport) -> anyhow::Result<String> {
        versioned_json(r)
    }
    fn catalog(&self, c: &Catalog) -> anyhow::Result<String> {
        versioned_json(c)
    }
    fn stacks(&self, stacks: &[StackSpec]) -> anyhow::Result<String> {
        versioned_json(&StacksReport { stacks })
    }
    fn fit(&self, r: &FitReport) -> anyhow::Result<String> {
        versioned_json(r)
    }
    fn sweep(&self, r: &SweepReport) -> anyhow::Result<String> {
        versioned_json(r)
    }
    fn adapters(&self, adapters: &[AdapterReport]) -> anyhow::Result<String> {
        versioned_json(&AdaptersReport { adapters })
    }
    fn bench(&self, r: &BenchReport) -> anyhow::Result<String> {
        versioned_json(r)
    }
    fn plan(&self, r: &PlanReport) -> anyhow::Result<String> {
        versioned_json(r)
    }
}

/// The CSV columns of how sure a row is, empty where not computed (`p_best` needs
/// `--uncertainty`), so that the columns are the same whatever the flags. `unit` is the time
/// column's (`s` for sweep, `days` for plan).
fn uncertainty_columns(unit: &str) -> [String; 4] {
    [
        format!("time_to_train_{unit}_low"),
        format!("time_to_train_{unit}_high"),
        "p_best".into(),
        "tied_with_best".into(),
    ]
}

fn uncertainty_record(interval: Option<[f64; 2]>, p_best: Option<f64>, tied: Option<bool>) -> [String; 4] {
    let text = |v: Option<String>| v.unwrap_or_default();
    [
        text(interval.map(|i| i[0].to_string())),
        text(interval.map(|i| i[1].to_string())),
        text(p_best.map(|p| p.to_string())),
        text(tied.map(|t| t.to_string())),
    ]
}

/// The CSV columns of a layout, in `sweep --json`'s key order.
const LAYOUT_COLUMNS: [&str; 21] = [
    "accelerator",
    "scale_up_domain",
    "scale_out_gbps",
    "pod_size",
    "pod_oversubscription",
    "topology",
    "stack",
    "count",
    "tp",
    "pp",
    "dp",
    "cp",
    "ep",
    "microbatch",
    "interleave",
    "recompute",
    "sequence_parallel",
    "zero",
    "recompute_layers",
    "offload_layers",
    "global_batch",
];

fn layout_record(l: &SweepLayout) -> Vec<String> {
    vec![
        l.accelerator.clone(),
        l.network.scale_up_domain.to_string(),
        l.network.scale_out_gbps.to_string(),
        l.network.pod_size.to_string(),
        l.network.pod_oversubscription.to_string(),
        l.network.topology.name().to_string(),
        l.stack.clone(),
        l.count.to_string(),
        l.tp.to_string(),
        l.pp.to_string(),
        l.dp.to_string(),
        l.cp.to_string(),
        l.ep.to_string(),
        l.microbatch.to_string(),
        l.interleave.to_string(),
        l.recompute.name().to_string(),
        l.sequence_parallel.to_string(),
        l.zero.to_string(),
        l.recompute_layers.to_string(),
        l.offload_layers.to_string(),
        l.global_batch.to_string(),
    ]
}

fn csv_text(write: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> anyhow::Result<()>) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(vec![]);
    write(&mut w)?;
    Ok(String::from_utf8(w.into_inner()?)?)
}

impl Exporter for CsvExporter {
    fn estimate(&self, r: &EstimateReport) -> anyhow::Result<String> {
        let e = &r.estimate;
        csv_text(|w| {
            let mut header = vec![
                "model",
                "accelerator",
                "count",
                "step_time_s",
                "tokens_per_s",
                "mfu_fraction",
                "hfu_fraction",
                "memory_per_accelerator_bytes",
                "fits",
                "time_to_train_s",
                "power_mw",
                "energy_mwh",
                "cost_usd",
                "confidence",
                "step_time_s_low",
                "step_time_s_high",
                "time_to_train_s_low",
                "time_to_train_s_high",
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
            let mut row = vec![
                r.model.clone(),
                r.accelerator.clone(),
                r.count.to_string(),
                e.step_time_s.to_string(),
                e.tokens_per_s.to_string(),
                e.mfu.to_string(),
                e.hfu.to_string(),
                e.memory_per_accelerator_bytes.to_string(),
                e.fits.to_string(),
                e.time_to_train_s.to_string(),
                e.power_mw.to_string(),
                e.energy_mwh.to_string(),
                e.cost_usd.to_string(),
                r.interval.confidence.to_string(),
                r.step_time_s_interval[0].to_string(),
                r.step_time_s_interval[1].to_string(),
                r.time_to_train_s_interval[0].to_string(),
                r.time_to_train_s_interval[1].to_string(),
            ];
            for (k, v) in e.breakdown.terms() {
                header.push(k.to_string());
                row.push(v.to_string());
            }
            w.write_record(&header)?;
            w.write_record(&row)?;
            Ok(())
        })
    }

    fn validation(&self, r: &ValidationReport) -> anyhow::Result<String> {
        csv_text(|w| {
            w.write_record([
                "run_id",
                "group",
                "accelerator",
                "stack",
                "measured_step_time_s",
                "predicted_step_time_s",
                "error_pct",
                "measured_from",
                "fits",
                "assumed",
                "reason",
            ])?;
            for row in &r.rows {
                let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
                w.write_record([
                    row.run_id.clone(),
                    row.group.clone(),
                    row.accelerator.clone(),
                    row.stack.clone(),
                    opt(row.measured_step_time_s),
                    opt(row.predicted_step_time_s),
                    opt(row.error_pct),
                    row.measured_from.unwrap_or("").to_string(),
                    row.fits.map_or(String::new(), |f| f.to_string()),
                    serde_json::to_string(&row.assumed)?,
                    row.reason.clone().unwrap_or_default(),
                ])?;
            }
            Ok(())
        })
    }

    fn catalog(&self, c: &Catalog) -> anyhow::Result<String> {
        csv_text(|w| {
            w.write_record([
                "id",
                "name",
                "year",
                "efficiency",
                "fp16_tflops",
                "bf16_tflops",
                "fp8_tflops",
                "fp4_tflops",
                "hbm_gb",
                "hbm_tb_per_s",
                "scale_up_gb_per_s",
                "scale_up_domain",
                "scale_out_gbps",
                "tdp_w",
                "power_all_in_w",
                "price_usd",
                "price_per_hour_usd",
            ])?;
            let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
            for a in &c.accelerators {
                w.write_record([
                    a.id.clone(),
                    a.name.clone(),
                    a.year.to_string(),
                    a.efficiency.clone(),
                    opt(a.peak_tflops.fp16),
                    opt(a.peak_tflops.bf16),
                    opt(a.peak_tflops.fp8),
                    opt(a.peak_tflops.fp4),
                    a.hbm_gb.to_string(),
                    a.hbm_tb_per_s.to_string(),
                    a.scale_up_gb_per_s.to_string(),
                    a.scale_up_domain.to_string(),
                    a.scale_out_gbps.to_string(),
                    a.tdp_w.to_string(),
                    a.power_all_in_w.to_string(),
                    opt(a.price_usd),
                    opt(a.price_per_hour_usd),
                ])?;
            }
            Ok(())
        })
    }

    fn stacks(&self, stacks: &[StackSpec]) -> anyhow::Result<String> {
        csv_text(|w| {
            w.write_record([
                "id",
                "name",
                "year",
                "tensor_parallel",
                "sequence_parallel",
                "tp_overlap",
                "pipeline_parallel",
                "interleave",
                "pp_overlap",
                "context_parallel",
                "expert_parallel",
                "zero",
                "attention",
                "rank_order",
            ])?;
            for st in stacks {
                w.write_record([
                    st.id.clone(),
                    st.name.clone(),
                    st.year.to_string(),
                    st.tensor_parallel.to_string(),
                    st.sequence_parallel.to_string(),
                    serde_json::to_value(st.tp_overlap)?
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    st.pipeline_parallel.to_string(),
                    st.interleave.to_string(),
                    st.pp_overlap.to_string(),
                    st.context_parallel.to_string(),
                    st.expert_parallel.to_string(),
                    st.zero
                        .iter()
                        .map(|z| z.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                    st.attention.name().to_string(),
                    serde_json::to_value(st.rank_order)?
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                ])?;
            }
            Ok(())
        })
    }

    fn fit(&self, r: &FitReport) -> anyhow::Result<String> {
        csv_text(|w| {
            w.write_record([
                "family",
                "rows",
                "mape_before_pct",
                "mape_after_pct",
                "gemm",
                "gemm_half_dim",
                "low_precision_gemm",
                "attention",
                "layer_overhead_us",
                "step_overhead_ms",
            ])?;
            for f in &r.families {
                let a = &f.after;
                w.write_record([
                    f.family.clone(),
                    f.rows.to_string(),
                    f.mape_before_pct.to_string(),
                    f.mape_after_pct.to_string(),
                    a.gemm.to_string(),
                    a.gemm_half_dim.to_string(),
                    a.low_precision_gemm.to_string(),
                    a.attention.to_string(),
                    a.layer_overhead_us.to_string(),
                    a.step_overhead_ms.to_string(),
                ])?;
            }
            Ok(())
        })
    }

    fn sweep(&self, r: &SweepReport) -> anyhow::Result<String> {
        csv_text(|w| {
            // The estimate's scalar fields by name (its breakdowns are objects, which CSV does
            // not hold).
            let estimates: Vec<serde_json::Map<String, serde_json::Value>> = r
                .top
                .iter()
                .map(|e| match serde_json::to_value(e.estimate)? {
                    serde_json::Value::Object(m) => Ok(m),
                    _ => unreachable!("an estimate serializes to an object"),
                })
                .collect::<Result<_, serde_json::Error>>()?;
            let estimate_keys: Vec<String> = estimates
                .first()
                .map(|m| {
                    m.iter()
                        .filter(|(_, v)| !v.is_object())
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            let mut header: Vec<String> = ["rank", "index", "objective"]
                .iter()
                .chain(&LAYOUT_COLUMNS)
                .map(|s| s.to_string())
                .collect();
            header.extend(estimate_keys.iter().cloned());
            header.extend(uncertainty_columns("s"));
            w.write_record(&header)?;
            for (e, estimate) in r.top.iter().zip(&estimates) {
                let l = &e.layout;
                let mut row = vec![e.rank.to_string(), e.index.to_string(), e.objective.to_string()];
                row.extend(layout_record(l));
                row.extend(
                    estimate_keys
                        .iter()
                        .map(|k| estimate.get(k).map_or(String::new(), |v| v.to_string())),
                );
                row.extend(uncertainty_record(
                    e.time_to_train_s_interval,
                    e.p_best,
                    e.tied_with_best,
                ));
                w.write_record(&row)?;
            }
            Ok(())
        })
    }

    fn adapters(&self, adapters: &[AdapterReport]) -> anyhow::Result<String> {
        csv_text(|w| {
            w.write_record([
                "name",
                "backend",
                "device_type",
                "shader_f64",
                "subgroups",
                "max_storage_buffer_binding_size",
                "usable",
            ])?;
            for a in adapters {
                w.write_record([
                    a.name.clone(),
                    a.backend.clone(),
                    a.device_type.clone(),
                    a.shader_f64.to_string(),
                    a.subgroups.to_string(),
                    a.max_storage_buffer_binding_size.to_string(),
                    a.usable.to_string(),
                ])?;
            }
            Ok(())
        })
    }

    fn bench(&self, r: &BenchReport) -> anyhow::Result<String> {
        csv_text(|w| {
            w.write_record([
                "backend",
                "adapter",
                "driver",
                "cpu_model",
                "elapsed_s",
                "valid_layouts_per_s",
                "layouts_per_s",
                "draws_per_s",
            ])?;
            let cpu = &r.machine.cpu_model;
            for b in &r.results {
                w.write_record([
                    b.backend.clone(),
                    b.adapter.clone().unwrap_or_default(),
                    b.driver.clone().unwrap_or_default(),
                    cpu.clone(),
                    b.elapsed_s.to_string(),
                    b.valid_layouts_per_s.to_string(),
                    b.layouts_per_s.to_string(),
                    String::new(),
                ])?;
            }
            for b in &r.draws {
                w.write_record([
                    format!("{} draws", b.backend),
                    b.adapter.clone().unwrap_or_default(),
                    String::new(),
                    cpu.clone(),
                    b.elapsed_s.to_string(),
                    String::new(),
                    String::new(),
                    b.draws_per_s.to_string(),
                ])?;
            }
            Ok(())
        })
    }

    fn plan(&self, r: &PlanReport) -> anyhow::Result<String> {
        csv_text(|w| {
            let mut header = vec!["rank"];
            header.extend(LAYOUT_COLUMNS);
            header.extend([
                "time_to_train_days",
                "power_mw",
                "cost_usd",
                "energy_mwh",
                "mfu_fraction",
                "goodput_fraction",
                "binding_constraint",
            ]);
            let mut header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
            header.extend(uncertainty_columns("days"));
            // Which list a row is of: the ranked plans, then (with --pareto) the Pareto set,
            // each ranked within its list.
            header.push("set".into());
            w.write_record(&header)?;
            let ranked = r.plans.iter().map(|p| ("ranked", p));
            let pareto = r.pareto.iter().flatten().map(|p| ("pareto", p));
            let mut at = std::collections::BTreeMap::<&str, usize>::new();
            for (set, p) in ranked.chain(pareto) {
                let e = &p.estimate;
                let rank = at.entry(set).or_default();
                *rank += 1;
                let mut row = vec![rank.to_string()];
                row.extend(layout_record(&p.layout));
                row.extend([
                    p.time_to_train_days.to_string(),
                    e.power_mw.to_string(),
                    e.cost_usd.to_string(),
                    e.energy_mwh.to_string(),
                    e.mfu.to_string(),
                    e.goodput.to_string(),
                    p.binding_constraint.text.clone(),
                ]);
                row.extend(uncertainty_record(
                    p.time_to_train_s_interval.map(|i| i.map(|s| s / 86_400.0)),
                    p.p_best,
                    p.tied_with_best,
                ));
                row.push(set.into());
                w.write_record(&row)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_duration(14.66), "14.660 s");
        assert_eq!(human_duration(0.0123), "12.3 ms");
        assert_eq!(human_duration(86_400.0 * 3.0), "3.0 days");
        assert_eq!(human_usd(1.5e9), "$1.50B");
        assert_eq!(human_usd(2_500_000.0), "$2.50M");
        assert_eq!(human_bytes(80e9), "80.00 GB");
    }
}
