//! SVG plots of a plan (plotters): the Pareto set, how time and MFU scale with cluster size,
//! the step-time terms of the top plans, and the sensitivity tornado.
//!
//! Each Pareto member is one filled circle per panel, labelled with its accelerator count; the
//! legends sit beside the panels, outside the data, under a heading "accelerators" (their
//! markers are circles too, so a plot can be checked by counting circles between captions); the
//! objective's winner is marked with a cross; the deadline, the budget and the power envelope
//! are drawn as dashed lines where the scenario sets them.

use crate::analysis::plan::{Plan, PlanReport};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// matplotlib's tab20 palette, dark shades first, then the light ones.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

/// A colour per accelerator id, the same in every plot and every run: the id's place in the
/// built-in catalog, or for an accelerator a `--catalog` file adds, a hash of its id.
pub fn colour(id: &str) -> RGBColor {
    static BUILTIN: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let ids = BUILTIN.get_or_init(|| {
        crate::input::catalog::Catalog::builtin()
            .accelerators
            .iter()
            .map(|a| a.id.clone())
            .collect()
    });
    let i = match ids.iter().position(|a| a == id) {
        Some(i) => i,
        None => {
            let hash = crate::engine::sweep::driver::fnv1a_hex(id);
            u64::from_str_radix(&hash, 16).unwrap_or(0) as usize
        }
    };
    PALETTE[i % PALETTE.len()]
}

fn accelerators(plans: &[Plan]) -> Vec<String> {
    let mut ids: Vec<String> = plans.iter().map(|p| p.layout.accelerator.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Thousands as "12k", millions as "1.5M": tick labels that stay short.
fn short_number(v: f64) -> String {
    match v.abs() {
        x if x >= 1e6 => format!("{}M", trim(v / 1e6)),
        x if x >= 1e3 => format!("{}k", trim(v / 1e3)),
        _ => trim(v),
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// An accelerator count as a point label: "131k", "1.5M", "96".
fn count_label(count: u64) -> String {
    let c = count as f64;
    match c {
        x if x >= 1e6 => format!("{}M", trim(c / 1e6)),
        x if x >= 1e4 => format!("{:.0}k", c / 1e3),
        x if x >= 1e3 => format!("{}k", trim(c / 1e3)),
        _ => format!("{count}"),
    }
}

/// The unit a money axis reads in, by the largest value on it: (divisor, name).
pub fn money_unit(max_usd: f64) -> (f64, &'static str) {
    match max_usd.abs() {
        x if x >= 1e9 => (1e9, "$ billion"),
        x if x >= 1e6 => (1e6, "$ million"),
        x if x >= 1e3 => (1e3, "$ thousand"),
        _ => (1.0, "$"),
    }
}

/// The unit a power axis reads in: (divisor from MW, name).
fn power_unit(max_mw: f64) -> (f64, &'static str) {
    match max_mw.abs() {
        x if x >= 1e3 => (1e3, "GW"),
        x if x >= 1.0 => (1.0, "MW"),
        _ => (1e-3, "kW"),
    }
}

/// A range around `values` with 8 % room each side.
fn padded(values: impl Iterator<Item = f64> + Clone) -> std::ops::Range<f64> {
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let span = (hi - lo).max(hi.abs() * 0.05).max(1e-9);
    (lo - 0.08 * span).max(0.0)..hi + 0.08 * span
}

/// Limits further than this factor beyond the data are named in the caption, not drawn, so
/// that the points keep the plot.
const LIMIT_REACH: f64 = 3.0;

/// `limit` if it is within [`LIMIT_REACH`] of the largest of `values`.
fn drawable(limit: Option<f64>, values: impl Iterator<Item = f64>) -> Option<f64> {
    let hi = values.fold(0.0, f64::max);
    limit.filter(|l| l.is_finite() && *l <= LIMIT_REACH * hi.max(f64::MIN_POSITIVE))
}

type Failure = Box<dyn std::error::Error>;

/// The label of a horizontal bar chart's tick at `y`: rows run top to bottom, row `i` in the
/// band `[n - 1 - i, n - i)`, labelled at its middle (ticks fall every half unit).
fn row_label(labels: &[String], y: f64) -> String {
    let n = labels.len() as i64;
    let row = n - 1 - y.floor() as i64;
    let at_middle = (y - y.floor() - 0.5).abs() < 1e-6;
    match usize::try_from(row) {
        Ok(r) if at_middle && r < labels.len() => labels[r].clone(),
        _ => String::new(),
    }
}

/// A limit's label: ending at its anchor point, above it (`Bottom`) or below it (`Top`).
fn anchored(vertical: VPos) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Right, vertical))
}

/// One axis of a Pareto panel: the value of a plan in the axis' unit, the unit's name, and the
/// constraint on it (in the same unit), if any.
struct Axis<'a> {
    value: &'a dyn Fn(&Plan) -> f64,
    desc: String,
    limit: Option<(f64, String)>,
}

/// One Pareto panel: `plans` at (days, `y`), coloured by accelerator and labelled with their
/// counts, the winner crossed, the deadline and `y`'s limit dashed.
fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    report: &PlanReport,
    plans: &[Plan],
    y: &Axis,
    caption: &str,
) -> Result<(), Failure> {
    let deadline = report.constraints.max_days;
    let drawn_deadline = drawable(deadline, plans.iter().map(|p| p.time_to_train_days));
    let drawn_limit = y
        .limit
        .as_ref()
        .and_then(|(l, _)| drawable(Some(*l), plans.iter().map(y.value)));
    let x_range = padded(plans.iter().map(|p| p.time_to_train_days).chain(drawn_deadline));
    let y_range = padded(plans.iter().map(y.value).chain(drawn_limit));
    let mut off_chart = vec![];
    if let (Some(d), None) = (deadline, drawn_deadline) {
        off_chart.push(format!("deadline {d:.0} days"));
    }
    if let (Some((_, text)), None) = (&y.limit, drawn_limit) {
        off_chart.push(text.clone());
    }
    let caption = match off_chart.is_empty() {
        true => caption.to_string(),
        false => format!("{caption} ({} off the chart)", off_chart.join(", ")),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range.clone(), y_range.clone())?;
    chart
        .configure_mesh()
        .x_desc("time to train (days)")
        .y_desc(y.desc.as_str())
        .x_label_formatter(&|x| short_number(*x))
        .y_label_formatter(&|y| short_number(*y))
        .draw()?;
    let dashed = |from: (f64, f64), to: (f64, f64)| {
        DashedPathElement::new(vec![from, to], 6, 4, BLACK.mix(0.7).stroke_width(1))
    };
    if let Some(d) = drawn_deadline {
        chart.draw_series(std::iter::once(dashed((d, y_range.start), (d, y_range.end))))?;
        // Left of the line, so that it stays inside the panel.
        chart.draw_series(std::iter::once(Text::new(
            format!("deadline {d:.0} d "),
            (d, y_range.end),
            anchored(VPos::Top),
        )))?;
    }
    if let (Some(l), Some((_, text))) = (drawn_limit, &y.limit) {
        chart.draw_series(std::iter::once(dashed((x_range.start, l), (x_range.end, l))))?;
        // At the right end, above the line.
        chart.draw_series(std::iter::once(Text::new(
            text.clone(),
            (x_range.end, l),
            anchored(VPos::Bottom),
        )))?;
    }
    for p in plans {
        let c = colour(&p.layout.accelerator);
        let point = EmptyElement::at((p.time_to_train_days, (y.value)(p)))
            + Circle::new((0, 0), 5, c.filled())
            + Text::new(
                count_label(p.layout.count),
                (6, -14),
                ("sans-serif", 11).into_font(),
            );
        chart.draw_series(std::iter::once(point))?;
    }
    if let Some(w) = report.plans.first() {
        chart.draw_series(std::iter::once(Cross::new(
            (w.time_to_train_days, (y.value)(w)),
            9,
            BLACK.stroke_width(2),
        )))?;
    }
    Ok(())
}

/// A legend in its own strip beside the panels: a heading, then one coloured circle and name
/// per entry.
fn legend(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    heading: &str,
    entries: &[(String, RGBColor)],
) -> Result<(), Failure> {
    let font = ("sans-serif", 14).into_font();
    area.draw(&Text::new(heading.to_string(), (8, 40), font.clone()))?;
    for (i, (name, c)) in entries.iter().enumerate() {
        let y = 66 + 22 * i as i32;
        area.draw(&Circle::new((14, y), 5, c.filled()))?;
        area.draw(&Text::new(name.clone(), (26, y - 7), font.clone()))?;
    }
    Ok(())
}

/// The width of the legend strip at the right of each plot.
const LEGEND_WIDTH: u32 = 170;

/// The Pareto set over time to train, cost and energy: days against $, against MWh and
/// against facility power, with the constraints.
pub fn pareto_svg(report: &PlanReport, path: &Path) -> Result<(), String> {
    let plans = report.pareto.as_deref().unwrap_or_default();
    let c = &report.constraints;
    let (usd, usd_unit) = money_unit(plans.iter().map(|p| p.estimate.cost_usd).fold(0.0, f64::max));
    let (mw, mw_unit) = power_unit(plans.iter().map(|p| p.estimate.power_mw).fold(0.0, f64::max));
    let cost_value = move |p: &Plan| p.estimate.cost_usd / usd;
    let energy_value = |p: &Plan| p.estimate.energy_mwh;
    let power_value = move |p: &Plan| p.estimate.power_mw / mw;
    let cost = Axis {
        value: &cost_value,
        desc: format!("cost ({usd_unit})"),
        limit: c
            .budget_usd
            .map(|b| (b / usd, format!("budget {}", crate::units::human_usd(b)))),
    };
    let energy = Axis {
        value: &energy_value,
        desc: "energy (MWh)".into(),
        limit: None,
    };
    let power = Axis {
        value: &power_value,
        desc: format!("facility power ({mw_unit})"),
        limit: c
            .power_mw
            .map(|p| (p / mw, format!("power {} {mw_unit}", trim(p / mw)))),
    };
    let draw = || -> Result<(), Failure> {
        let root = SVGBackend::new(path, (1500, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let (title, body) = root.split_vertically(34);
        title.draw(&Text::new(
            format!(
                "{}: Pareto set ({} plans; x marks the {} winner; labels are accelerator counts)",
                report.model,
                plans.len(),
                report.objective
            ),
            (12, 8),
            ("sans-serif", 18).into_font(),
        ))?;
        let (panels, side) = body.split_horizontally(1500 - LEGEND_WIDTH);
        let areas = panels.split_evenly((1, 3));
        panel(&areas[0], report, plans, &cost, "cost against time")?;
        panel(&areas[1], report, plans, &energy, "energy against time")?;
        panel(&areas[2], report, plans, &power, "power against time")?;
        let entries: Vec<(String, RGBColor)> = accelerators(plans)
            .into_iter()
            .map(|id| {
                let c = colour(&id);
                (id, c)
            })
            .collect();
        legend(&side, "accelerators", &entries)?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("{}: {e}", path.display()))
}

/// Goodput below which a cluster fails faster than it restarts and makes no progress to speak
/// of; such sizes are left out of the scaling plot (their time to train is astronomical).
const NO_PROGRESS_GOODPUT: f64 = 0.01;

/// Time to train and MFU against cluster size, one line per accelerator, for the best layout
/// at each size that makes progress; the deadline and `max_accelerators` dashed.
pub fn scaling_svg(report: &PlanReport, path: &Path) -> Result<(), String> {
    let plans: Vec<Plan> = report
        .scaling
        .iter()
        .filter(|p| p.estimate.goodput >= NO_PROGRESS_GOODPUT)
        .cloned()
        .collect();
    let plans = &plans;
    let draw = || -> Result<(), Failure> {
        let root = SVGBackend::new(path, (1300 + LEGEND_WIDTH, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let (panels, side) = root.split_horizontally(1300);
        let (left, right) = panels.split_horizontally(650);
        let ids = accelerators(plans);
        let days_lo = plans
            .iter()
            .map(|p| p.time_to_train_days)
            .fold(f64::INFINITY, f64::min)
            .clamp(1e-3, 1e9);
        let counts = plans.iter().map(|p| p.layout.count as f64);
        let lo = counts.clone().fold(f64::INFINITY, f64::min).max(1.0);
        let hi = counts.fold(1.0, f64::max);
        let days_hi = plans.iter().map(|p| p.time_to_train_days).fold(1.0, f64::max);
        // One point per size: the fastest of the networks the accelerator was tried on there.
        let series = |id: &str| -> Vec<&Plan> {
            let mut v: Vec<&Plan> = plans.iter().filter(|p| p.layout.accelerator == id).collect();
            v.sort_by(|a, b| {
                a.layout
                    .count
                    .cmp(&b.layout.count)
                    .then(a.time_to_train_days.total_cmp(&b.time_to_train_days))
            });
            v.dedup_by_key(|p| p.layout.count);
            v
        };
        let x_range = lo * 0.8..hi * 1.25;
        let days_range = days_lo * 0.7..days_hi * 1.5;
        let mut days = ChartBuilder::on(&left)
            .caption(
                format!("{}: time to train by cluster size", report.model),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range.clone().log_scale(), days_range.clone().log_scale())?;
        days.configure_mesh()
            .x_desc("accelerators (best layout at each size)")
            .y_desc("days (log)")
            .x_label_formatter(&|x| short_number(*x))
            .y_label_formatter(&|y| short_number(*y))
            .draw()?;
        let mut mfu = ChartBuilder::on(&right)
            .caption("MFU by cluster size", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range.clone().log_scale(), 0.0..100.0)?;
        mfu.configure_mesh()
            .x_desc("accelerators (best layout at each size)")
            .y_desc("MFU (%)")
            .x_label_formatter(&|x| short_number(*x))
            .draw()?;
        let dashed =
            |points: Vec<(f64, f64)>| DashedPathElement::new(points, 6, 4, BLACK.mix(0.7).stroke_width(1));
        let font = ("sans-serif", 12).into_font();
        if let Some(d) = report.constraints.max_days.filter(|d| days_range.contains(d)) {
            days.draw_series(std::iter::once(dashed(vec![
                (x_range.start, d),
                (x_range.end, d),
            ])))?;
            days.draw_series(std::iter::once(Text::new(
                format!("deadline {d:.0} d"),
                (x_range.start, d),
                font.clone(),
            )))?;
        }
        if let Some(n) = report
            .constraints
            .max_accelerators
            .map(|n| n as f64)
            .filter(|n| x_range.contains(n))
        {
            days.draw_series(std::iter::once(dashed(vec![
                (n, days_range.start),
                (n, days_range.end),
            ])))?;
            mfu.draw_series(std::iter::once(dashed(vec![(n, 0.0), (n, 100.0)])))?;
            mfu.draw_series(std::iter::once(Text::new(
                format!("max_accelerators {}", short_number(n)),
                (n, 100.0),
                font.clone(),
            )))?;
        }
        for id in &ids {
            let c = colour(id);
            let s = series(id);
            days.draw_series(LineSeries::new(
                s.iter().map(|p| (p.layout.count as f64, p.time_to_train_days)),
                c.stroke_width(2),
            ))?;
            mfu.draw_series(LineSeries::new(
                s.iter().map(|p| (p.layout.count as f64, 100.0 * p.estimate.mfu)),
                c.stroke_width(2),
            ))?;
        }
        let entries: Vec<(String, RGBColor)> = ids.iter().map(|id| (id.clone(), colour(id))).collect();
        legend(&side, "accelerators", &entries)?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("{}: {e}", path.display()))
}

/// Colours of the step-time terms in the breakdown plot, in [`crate::model::step::StepBreakdown::terms`]'s
/// order: compute in blues, communication in oranges and reds, the pipeline in greens, the
/// rest in greys and purples.
const TERM_COLOURS: [RGBColor; 14] = [
    RGBColor(31, 119, 180),  // forward
    RGBColor(174, 199, 232), // backward
    RGBColor(158, 218, 229), // recompute
    RGBColor(255, 127, 14),  // tp_comm
    RGBColor(255, 187, 120), // cp_comm
    RGBColor(214, 39, 40),   // ep_comm
    RGBColor(44, 160, 44),   // pp_p2p_exposed
    RGBColor(152, 223, 138), // pp_bubble
    RGBColor(255, 152, 150), // dp_comm
    RGBColor(148, 103, 189), // optimizer
    RGBColor(127, 127, 127), // step_overhead
    RGBColor(140, 86, 75),   // offload
    RGBColor(199, 199, 199), // host_overhead
    RGBColor(197, 176, 213), // sync_jitter
];

/// A step-time term's name as a legend says it: "tp_comm_s" as "tp comm".
fn term_name(key: &str) -> String {
    key.strip_suffix("_s").unwrap_or(key).replace('_', " ")
}

/// `plan --plot-breakdown`: the step time of each ranked plan as a bar, stacked from its
/// terms (forward, backward, recompute, each exposed communication, bubble, optimizer,
/// overheads), in seconds; the legend names the terms that any plan has.
pub fn breakdown_svg(report: &PlanReport, path: &Path) -> Result<(), String> {
    let plans = &report.plans;
    if plans.is_empty() {
        return Err(format!(
            "{}: no plan meets the constraints, so there is no breakdown to draw",
            path.display()
        ));
    }
    let n = plans.len();
    let present: Vec<usize> = (0..TERM_COLOURS.len())
        .filter(|i| plans.iter().any(|p| p.estimate.breakdown.terms()[*i].1 > 0.0))
        .collect();
    let longest = plans.iter().map(|p| p.estimate.step_time_s).fold(0.0, f64::max);
    let labels: Vec<String> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}. {}", i + 1, crate::analysis::plan::plan_words(p)))
        .collect();
    let draw = || -> Result<(), Failure> {
        let root = SVGBackend::new(path, (1100 + LEGEND_WIDTH, 110 + 40 * n as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let (body, side) = root.split_horizontally(1100);
        let mut chart = ChartBuilder::on(&body)
            .caption(
                format!("{}: step time of the ranked plans, by term", report.model),
                ("sans-serif", 18),
            )
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(330)
            .build_cartesian_2d(0.0..longest * 1.05, 0.0..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("seconds per step")
            .x_label_formatter(&|x| trim(*x))
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| row_label(&labels, *y))
            .draw()?;
        for (row, p) in plans.iter().enumerate() {
            let y0 = (n - 1 - row) as f64 + 0.2;
            let y1 = y0 + 0.6;
            let mut at = 0.0;
            for (i, (_, seconds)) in p.estimate.breakdown.terms().into_iter().enumerate() {
                if seconds <= 0.0 {
                    continue;
                }
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(at, y0), (at + seconds, y1)],
                    TERM_COLOURS[i].filled(),
                )))?;
                at += seconds;
            }
        }
        let terms = crate::model::step::StepBreakdown::default().terms();
        let entries: Vec<(String, RGBColor)> = present
            .iter()
            .map(|i| (term_name(terms[*i].0), TERM_COLOURS[*i]))
            .collect();
        legend(&side, "step-time terms", &entries)?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("{}: {e}", path.display()))
}

/// Colours of the tornado's two halves: the assumption at the low end of its range, and at the
/// high end (tab10's blue and orange).
const LOW_END: RGBColor = RGBColor(31, 119, 180);
const HIGH_END: RGBColor = RGBColor(255, 127, 14);

/// `plan --sensitivity` as a tornado: one row per assumption, largest swing on top, a bar from
/// the best plan's days at the central assumptions to its days with the assumption at the low
/// end of its range (blue) and at the high end (orange). An end at which no plan meets the
/// constraints runs to the plot's edge, and its label says so.
pub fn tornado_svg(report: &PlanReport, path: &Path) -> Result<(), String> {
    let rows = report.sensitivity.as_deref().unwrap_or_default();
    let Some(central) = report.plans.first().map(|p| p.time_to_train_days) else {
        return Err(format!("{}: no plan to draw the sensitivity of", path.display()));
    };
    let finite_days = rows
        .iter()
        .flat_map(|r| [r.time_to_train_days_low, r.time_to_train_days_high])
        .flatten()
        .chain(std::iter::once(central));
    let x_range = padded(finite_days);
    let n = rows.len().max(1);
    let labels: Vec<String> = rows
        .iter()
        .map(|r| {
            let missing = match (r.time_to_train_days_low, r.time_to_train_days_high) {
                (None, _) | (_, None) => " (no plan at one end)",
                _ => "",
            };
            format!("{} x{}-{}{missing}", r.assumption, trim2(r.low), trim2(r.high))
        })
        .collect();
    let draw = || -> Result<(), Failure> {
        let root = SVGBackend::new(path, (1100, 120 + 44 * n as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{}: time to train of the best plan ({:.1} days) as each assumption moves",
                    report.model, central
                ),
                ("sans-serif", 18),
            )
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(330)
            .build_cartesian_2d(x_range.clone(), 0.0..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("time to train (days): blue at the low end of the range, orange at the high end")
            .x_label_formatter(&|x| short_number(*x))
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| row_label(&labels, *y))
            .draw()?;
        for (i, r) in rows.iter().enumerate() {
            let y0 = (n - 1 - i) as f64 + 0.2;
            let y1 = y0 + 0.6;
            for (end, colour) in [
                (r.time_to_train_days_low, LOW_END),
                (r.time_to_train_days_high, HIGH_END),
            ] {
                let days = end.unwrap_or(x_range.end);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(central.min(days), y0), (central.max(days), y1)],
                    colour.filled(),
                )))?;
            }
        }
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(central, 0.0), (central, n as f64)],
            BLACK.stroke_width(1),
        )))?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("{}: {e}", path.display()))
}

/// A factor with at most three significant figures ("0.58", "2.5", "1").
fn trim2(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}
