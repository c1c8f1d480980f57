//! SVG plots of a plan (plotters): the Pareto set, and how time and MFU scale with cluster size.
//!
//! Each Pareto member is one filled circle per panel (legend markers are squares), so a plot can
//! be checked by counting circles; the objective's winner is marked with a cross.

use crate::plan::{Plan, PlanReport};
use plotters::prelude::*;
use std::path::Path;

/// A colour per accelerator id, the same in both plots: the id's place among every accelerator
/// the plan evaluated (matplotlib's tab20 palette, dark shades first, then the light ones).
fn colour(report: &PlanReport, id: &str) -> RGBColor {
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
    let all = accelerators(&report.scaling);
    let i = all.iter().position(|a| a == id).unwrap_or(all.len());
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

fn padded(values: impl Iterator<Item = f64> + Clone) -> std::ops::Range<f64> {
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let span = (hi - lo).max(hi.abs() * 0.05).max(1e-9);
    (lo - 0.08 * span).max(0.0)..hi + 0.08 * span
}

type Failure = Box<dyn std::error::Error>;

/// One panel: `plans` at (days, `y`), coloured by accelerator, the winner crossed.
fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    report: &PlanReport,
    plans: &[Plan],
    winner: Option<&Plan>,
    y: impl Fn(&Plan) -> f64,
    y_desc: &str,
    caption: &str,
) -> Result<(), Failure> {
    let ids = accelerators(plans);
    let x_range = padded(plans.iter().map(|p| p.time_to_train_days));
    let y_range = padded(plans.iter().map(&y));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .x_desc("time to train (days)")
        .y_desc(y_desc)
        .x_label_formatter(&|x| short_number(*x))
        .y_label_formatter(&|y| short_number(*y))
        .draw()?;
    for id in &ids {
        let c = colour(report, id);
        chart
            .draw_series(
                plans
                    .iter()
                    .filter(|p| &p.layout.accelerator == id)
                    .map(|p| Circle::new((p.time_to_train_days, y(p)), 5, c.filled())),
            )?
            .label(id.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 8, y + 4)], c.filled()));
    }
    if let Some(w) = winner {
        chart.draw_series(std::iter::once(Cross::new(
            (w.time_to_train_days, y(w)),
            9,
            BLACK.stroke_width(2),
        )))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()?;
    Ok(())
}

/// The Pareto set over time to train, cost and energy: days against $ and against MWh.
pub fn pareto_svg(report: &PlanReport, path: &Path) -> Result<(), String> {
    let plans = report.pareto.as_deref().unwrap_or_default();
    let draw = || -> Result<(), Failure> {
        let root = SVGBackend::new(path, (1300, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(650);
        let winner = report.plans.first();
        let title = format!(
            "{}: Pareto set ({} plans); x marks the {} winner",
            report.model,
            plans.len(),
            report.objective
        );
        panel(
            &left,
            report,
            plans,
            winner,
            |p| p.metrics.cost_usd / 1e9,
            "cost ($ billion)",
            &title,
        )?;
        panel(
            &right,
            report,
            plans,
            winner,
            |p| p.metrics.energy_mwh,
            "energy (MWh)",
            "energy against time",
        )?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("{}: {e}", path.display()))
}

/// Goodput below which a cluster fails faster than it restarts and makes no progress to speak
/// of; such sizes are left out of the scaling plot (their time to train is astronomical).
const NO_PROGRESS_GOODPUT: f64 = 0.01;

/// Time to train and MFU against cluster size, one line per accelerator, for the best layout
/// at each size that makes progress.
pub fn scaling_svg(report: &PlanReport, path: &Path) -> Result<(), String> {
    let plans: Vec<Plan> = report
        .scaling
        .iter()
        .filter(|p| p.metrics.goodput >= NO_PROGRESS_GOODPUT)
        .cloned()
        .collect();
    let plans = &plans;
    let draw = || -> Result<(), Failure> {
        let root = SVGBackend::new(path, (1300, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(650);
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
        let series = |id: &str| -> Vec<&Plan> {
            let mut v: Vec<&Plan> = plans.iter().filter(|p| p.layout.accelerator == id).collect();
            v.sort_by_key(|p| p.layout.count);
            v
        };
        let mut days = ChartBuilder::on(&left)
            .caption(
                format!("{}: time to train by cluster size", report.model),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (lo * 0.8..hi * 1.25).log_scale(),
                (days_lo * 0.7..days_hi * 1.5).log_scale(),
            )?;
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
            .build_cartesian_2d((lo * 0.8..hi * 1.25).log_scale(), 0.0..100.0)?;
        mfu.configure_mesh()
            .x_desc("accelerators (best layout at each size)")
            .y_desc("MFU (%)")
            .x_label_formatter(&|x| short_number(*x))
            .draw()?;
        for id in &ids {
            let c = colour(report, id);
            let s = series(id);
            days.draw_series(LineSeries::new(
                s.iter().map(|p| (p.layout.count as f64, p.time_to_train_days)),
                c.stroke_width(2),
            ))?
            .label(id.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 4), (x + 8, y + 4)], c.filled()));
            mfu.draw_series(LineSeries::new(
                s.iter().map(|p| (p.layout.count as f64, 100.0 * p.metrics.mfu)),
                c.stroke_width(2),
            ))?;
        }
        days.configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .draw()?;
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
            .y_label_formatter(&|y| {
                let slot = *y - y.floor();
                let row = n as i64 - 1 - y.floor() as i64;
                if (slot - 0.5).abs() < 1e-6 && row >= 0 && (row as usize) < labels.len() {
                    labels[row as usize].clone()
                } else {
                    String::new()
                }
            })
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
