//! The catalog's uncertain inputs (`[[assumption]]` in `catalog/assumptions.toml`): each names
//! the catalog values it scales, the range of that scale with its source, and how a range turns
//! into draws. `plan --sensitivity` prices the plan at each end of each range, one at a time;
//! `sweep/plan --uncertainty` draws every assumption at once, one draw for every layout (common
//! random numbers).
//!
//! A range is the central 80 % of the assumption's scale (its 10th and 90th percentiles), as a
//! factor on the catalog's value, so that a user catalog that changes a value keeps its range.
//! Draws follow a two-piece log-normal with median 1 through both ends: a factor is
//! `low^(-z / Z80)` for a standard normal `z` below 0 and `high^(z / Z80)` above.

use super::network::NetworkParts;
use super::{Catalog, EfficiencyFamily, Facility};
use serde::{Deserialize, Serialize};

/// The standard normal's 90th percentile: a range's ends are `z = -Z80` and `z = +Z80`.
pub const Z80: f64 = 1.281_551_565_544_600_4;

/// One uncertain input as a catalog file states it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssumptionSpec {
    pub id: String,
    /// What a reader calls it, e.g. "failure rate per accelerator-hour".
    pub name: String,
    /// The catalog values the factor multiplies, as `facility.KEY`, `accelerator.KEY` (every
    /// accelerator's) or `efficiency.KEY` (every family's); see [`SCALABLE`].
    pub scales: Vec<String>,
    /// Factor at the 10th percentile (at most 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// Factor at the 90th percentile (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// The range is not written here but taken from the model's held-out error at the estimate's
    /// regime (`uncertainty::ModelError`): the factor on achieved efficiency is the inverse of
    /// the factor on step time. Such an assumption is also drawn once per efficiency family,
    /// because publications on different silicon missed by different amounts.
    #[serde(default)]
    pub from_model_error: bool,
    pub source: String,
}

/// The catalog values an assumption may scale, and whether each is a fraction (kept at most 1)
/// or a ratio of at least 1 (PUE, oversubscription).
pub const SCALABLE: &[(&str, Bound)] = &[
    ("facility.pue", Bound::AtLeastOne),
    ("facility.electricity_usd_per_mwh", Bound::None),
    ("facility.pod_oversubscription", Bound::AtLeastOne),
    ("facility.cross_pod_latency_us", Bound::None),
    ("facility.site_oversubscription", Bound::AtLeastOne),
    ("facility.inter_site_latency_ms", Bound::None),
    ("facility.checkpoint_gb_per_s", Bound::None),
    ("facility.restart_minutes", Bound::None),
    ("facility.failure_rate_per_hour", Bound::None),
    ("facility.server_cost_factor", Bound::None),
    ("facility.facility_usd_per_mw", Bound::None),
    ("accelerator.failure_rate_per_hour", Bound::None),
    ("accelerator.price_usd", Bound::None),
    ("accelerator.price_per_hour_usd", Bound::None),
    ("accelerator.average_power_fraction", Bound::AtMostOne),
    ("accelerator.power_all_in_w", Bound::None),
    ("accelerator.host_link_gb_per_s", Bound::None),
    ("accelerator.memory_efficiency", Bound::AtMostOne),
    ("accelerator.scale_up_efficiency", Bound::AtMostOne),
    ("accelerator.scale_out_efficiency", Bound::AtMostOne),
    ("accelerator.scale_up_latency_us", Bound::None),
    ("accelerator.scale_out_latency_us", Bound::None),
    ("network.nic_usd_per_400g", Bound::None),
    ("network.switch_port_usd_per_400g", Bound::None),
    ("network.link_usd_per_400g", Bound::None),
    ("network.nic_w_per_400g", Bound::None),
    ("network.switch_port_w_per_400g", Bound::None),
    ("network.link_w_per_400g", Bound::None),
    ("efficiency.gemm", Bound::AtMostOne),
    ("efficiency.low_precision_gemm", Bound::AtMostOne),
    ("efficiency.attention", Bound::AtMostOne),
    ("efficiency.attention_flash2", Bound::AtMostOne),
    ("efficiency.attention_flash1", Bound::AtMostOne),
    ("efficiency.layer_overhead_us", Bound::None),
    ("efficiency.step_overhead_ms", Bound::None),
    ("efficiency.launch_overhead_us", Bound::None),
    ("efficiency.graph_launch_overhead_us", Bound::None),
    ("efficiency.sync_jitter", Bound::None),
];

/// What keeps a scaled value meaningful.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    None,
    AtMostOne,
    AtLeastOne,
}

impl Bound {
    fn keep(self, v: f64) -> f64 {
        match self {
            Bound::None => v,
            Bound::AtMostOne => v.min(1.0),
            Bound::AtLeastOne => v.max(1.0),
        }
    }
}

impl AssumptionSpec {
    /// Why this entry cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let id = &self.id;
        if self.scales.is_empty() {
            return Some(format!(
                "assumption `{id}`: scales is empty; name the values it scales, e.g. \"facility.restart_minutes\""
            ));
        }
        for key in &self.scales {
            if !SCALABLE.iter().any(|(k, _)| k == key) {
                let known: Vec<&str> = SCALABLE.iter().map(|(k, _)| *k).collect();
                return Some(format!(
                    "assumption `{id}`: scales `{key}`, which is not a value an assumption may scale; expected some of {}",
                    known.join(", ")
                ));
            }
        }
        match (self.from_model_error, self.low, self.high) {
            (true, None, None) => None,
            (true, _, _) => Some(format!(
                "assumption `{id}`: from_model_error takes its range from the model's error; remove low and high"
            )),
            (false, Some(low), Some(high)) => {
                if !(low.is_finite() && low > 0.0 && low <= 1.0) {
                    Some(format!(
                        "assumption `{id}`: low = {low}, expected a factor above 0 and at most 1"
                    ))
                } else if !(high.is_finite() && high >= 1.0) {
                    Some(format!(
                        "assumption `{id}`: high = {high}, expected a factor of at least 1"
                    ))
                } else {
                    None
                }
            }
            (false, _, _) => Some(format!(
                "assumption `{id}`: give low and high (factors on the catalog's value at the 10th and 90th percentiles), or from_model_error = true"
            )),
        }
    }
}

/// An assumption with its range resolved (a model-error range at a given regime).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Assumption {
    pub id: String,
    pub name: String,
    pub scales: Vec<String>,
    pub low: f64,
    pub high: f64,
    /// The one efficiency family whose values (and accelerators' values) this scales; None for
    /// all of them. A model-error assumption is drawn once per family, as one such entry each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    pub source: String,
}

impl Assumption {
    /// A fixed-range entry as it stands; None for one whose range comes from the model's error.
    pub fn fixed(spec: &AssumptionSpec) -> Option<Assumption> {
        Some(Assumption {
            id: spec.id.clone(),
            name: spec.name.clone(),
            scales: spec.scales.clone(),
            low: spec.low?,
            high: spec.high?,
            family: None,
            source: spec.source.clone(),
        })
    }

    /// A model-error entry given the step-time factors of the model's interval: slower than
    /// estimated (`step_high` > 1) is lower efficiency; `family` limits it to one family.
    pub fn from_step_time_interval(
        spec: &AssumptionSpec,
        step_low: f64,
        step_high: f64,
        family: Option<&str>,
    ) -> Assumption {
        Assumption {
            id: spec.id.clone(),
            name: spec.name.clone(),
            scales: spec.scales.clone(),
            low: (1.0 / step_high).min(1.0),
            high: (1.0 / step_low).max(1.0),
            family: family.map(str::to_string),
            source: spec.source.clone(),
        }
    }

    /// The factor at standard normal deviate `z` (the range's ends at `z = -+Z80`).
    pub fn factor_at(&self, z: f64) -> f64 {
        if z < 0.0 {
            self.low.powf(-z / Z80)
        } else {
            self.high.powf(z / Z80)
        }
    }

    /// The facility key (`restart_minutes`) this scales, when that is all it scales.
    pub fn facility_key(&self) -> Option<&str> {
        match self.scales.as_slice() {
            [only] => only.strip_prefix("facility."),
            _ => None,
        }
    }

    /// The catalog value the factor applies to, when there is a single one (a facility key).
    pub fn central_value(&self, catalog: &Catalog) -> Option<f64> {
        let mut facility = catalog.facility.clone();
        facility_slot(&mut facility, self.facility_key()?).map(|v| *v)
    }
}

/// The facility value `key` names, if it is one an assumption may scale.
fn facility_slot<'a>(f: &'a mut Facility, key: &str) -> Option<&'a mut f64> {
    Some(match key {
        "pue" => &mut f.pue,
        "electricity_usd_per_mwh" => &mut f.electricity_usd_per_mwh,
        "pod_oversubscription" => &mut f.pod_oversubscription,
        "cross_pod_latency_us" => &mut f.cross_pod_latency_us,
        "site_oversubscription" => &mut f.site_oversubscription,
        "inter_site_latency_ms" => &mut f.inter_site_latency_ms,
        "checkpoint_gb_per_s" => &mut f.checkpoint_gb_per_s,
        "restart_minutes" => &mut f.restart_minutes,
        "failure_rate_per_hour" => &mut f.failure_rate_per_hour,
        "server_cost_factor" => &mut f.server_cost_factor,
        "facility_usd_per_mw" => &mut f.facility_usd_per_mw,
        _ => return None,
    })
}

/// The `[network]` value `key` names, if it is one an assumption may scale.
fn network_slot<'a>(n: &'a mut NetworkParts, key: &str) -> Option<&'a mut f64> {
    Some(match key {
        "nic_usd_per_400g" => &mut n.nic_usd_per_400g,
        "switch_port_usd_per_400g" => &mut n.switch_port_usd_per_400g,
        "link_usd_per_400g" => &mut n.link_usd_per_400g,
        "nic_w_per_400g" => &mut n.nic_w_per_400g,
        "switch_port_w_per_400g" => &mut n.switch_port_w_per_400g,
        "link_w_per_400g" => &mut n.link_w_per_400g,
        _ => return None,
    })
}

/// Scale the value at `path` (`facility.KEY` or `network.KEY`) that `slot` holds, if any.
fn scale_slot(slot: Option<&mut f64>, path: &str, factor: f64) {
    if let Some(slot) = slot {
        *slot = bound_of(path).keep(*slot * factor);
    }
}

fn bound_of(path: &str) -> Bound {
    SCALABLE
        .iter()
        .find(|(k, _)| *k == path)
        .map_or(Bound::None, |(_, b)| *b)
}

fn scale_option(slot: &mut Option<f64>, factor: f64, bound: Bound) {
    if let Some(v) = slot {
        *v = bound.keep(*v * factor);
    }
}

fn scale_family(f: &mut EfficiencyFamily, key: &str, factor: f64) {
    let bound = bound_of(&format!("efficiency.{key}"));
    let slot = match key {
        "gemm" => &mut f.gemm,
        "low_precision_gemm" => &mut f.low_precision_gemm,
        "attention" => &mut f.attention,
        "attention_flash2" => &mut f.attention_flash2,
        "attention_flash1" => &mut f.attention_flash1,
        "layer_overhead_us" => &mut f.layer_overhead_us,
        "step_overhead_ms" => &mut f.step_overhead_ms,
        "launch_overhead_us" => &mut f.launch_overhead_us,
        "graph_launch_overhead_us" => &mut f.graph_launch_overhead_us,
        "sync_jitter" => &mut f.sync_jitter,
        _ => return,
    };
    scale_option(slot, factor, bound);
}

/// A catalog whose families state every value themselves, so that scaling a family scales
/// exactly what its accelerators use (no `like` chain passes a factor on twice, or not at all).
pub fn with_resolved_families(catalog: &Catalog) -> Catalog {
    let mut c = catalog.clone();
    for f in c.efficiency.iter_mut() {
        if let Ok(values) = catalog.fitted_efficiency(&f.id) {
            f.set_values(&values);
            f.like = None;
        }
    }
    c
}

/// Scale, in `catalog` (whose families are resolved: [`with_resolved_families`]), every value
/// `assumption` names by `factor` (only its family's, when it has one).
pub fn apply(catalog: &mut Catalog, assumption: &Assumption, factor: f64) {
    let family = assumption.family.as_deref();
    for path in &assumption.scales {
        let Some((table, key)) = path.split_once('.') else {
            continue;
        };
        match table {
            "facility" => scale_slot(facility_slot(&mut catalog.facility, key), path, factor),
            "efficiency" => {
                for f in catalog.efficiency.iter_mut() {
                    if family.is_none_or(|id| id == f.id) {
                        scale_family(f, key, factor);
                    }
                }
            }
            "accelerator" => {
                let bound = bound_of(path);
                for a in catalog.accelerators.iter_mut() {
                    if family.is_some_and(|id| id != a.efficiency) {
                        continue;
                    }
                    match key {
                        "failure_rate_per_hour" => scale_option(&mut a.failure_rate_per_hour, factor, bound),
                        "price_usd" => scale_option(&mut a.price_usd, factor, bound),
                        "price_per_hour_usd" => scale_option(&mut a.price_per_hour_usd, factor, bound),
                        "average_power_fraction" => {
                            a.average_power_fraction = bound.keep(a.average_power_fraction * factor)
                        }
                        "power_all_in_w" => a.power_all_in_w = bound.keep(a.power_all_in_w * factor),
                        "host_link_gb_per_s" => scale_option(&mut a.host_link_gb_per_s, factor, bound),
                        "memory_efficiency" => a.memory_efficiency = bound.keep(a.memory_efficiency * factor),
                        "scale_up_efficiency" => {
                            a.scale_up_efficiency = bound.keep(a.scale_up_efficiency * factor)
                        }
                        "scale_out_efficiency" => {
                            a.scale_out_efficiency = bound.keep(a.scale_out_efficiency * factor)
                        }
                        "scale_up_latency_us" => {
                            a.scale_up_latency_us = bound.keep(a.scale_up_latency_us * factor)
                        }
                        "scale_out_latency_us" => {
                            a.scale_out_latency_us = bound.keep(a.scale_out_latency_us * factor)
                        }
                        _ => {}
                    }
                }
            }
            "network" => scale_slot(network_slot(&mut catalog.network, key), path, factor),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scalable_value_is_one_apply_moves() {
        let base = with_resolved_families(&Catalog::builtin());
        for (path, _) in SCALABLE {
            let a = Assumption {
                id: "t".into(),
                name: "t".into(),
                scales: vec![path.to_string()],
                low: 0.5,
                high: 2.0,
                family: None,
                source: String::new(),
            };
            let mut c = base.clone();
            apply(&mut c, &a, 0.5);
            let before = serde_json::to_string(&base).unwrap();
            let after = serde_json::to_string(&c).unwrap();
            assert_ne!(before, after, "{path}: halving it changed nothing");
        }
    }

    #[test]
    fn a_bad_assumption_entry_names_its_key_and_the_fix() {
        let entry = |body: &str| {
            let mut c = Catalog::builtin();
            let text = format!("[[assumption]]\nid = \"x\"\nname = \"x\"\nsource = \"t\"\n{body}\n");
            c.merge_text(&text, "user.toml").unwrap_err().to_string()
        };
        let e = entry("scales = [\"facility.nope\"]\nlow = 0.5\nhigh = 2.0");
        assert!(
            e.contains("facility.nope") && e.contains("facility.restart_minutes"),
            "{e}"
        );
        let e = entry("scales = [\"facility.pue\"]\nlow = 1.5\nhigh = 2.0");
        assert!(e.contains("low = 1.5"), "{e}");
        let e = entry("scales = [\"facility.pue\"]\nlow = 0.5");
        assert!(e.contains("give low and high"), "{e}");
        let e = entry("scales = [\"efficiency.gemm\"]\nfrom_model_error = true\nlow = 0.5\nhigh = 2.0");
        assert!(e.contains("remove low and high"), "{e}");
    }

    #[test]
    fn factors_reach_the_range_ends_at_z80_and_are_one_at_the_median() {
        let a = Assumption {
            id: "t".into(),
            name: "t".into(),
            scales: vec!["facility.restart_minutes".into()],
            low: 0.5,
            high: 3.0,
            family: None,
            source: String::new(),
        };
        assert!((a.factor_at(-Z80) - 0.5).abs() < 1e-12);
        assert!((a.factor_at(Z80) - 3.0).abs() < 1e-12);
        assert_eq!(a.factor_at(0.0), 1.0);
        assert_eq!(a.central_value(&Catalog::builtin()), Some(10.0));
    }

    #[test]
    fn a_family_draw_moves_only_that_familys_accelerators() {
        let base = with_resolved_families(&Catalog::builtin());
        let a = Assumption {
            id: "t".into(),
            name: "t".into(),
            scales: vec!["efficiency.gemm".into(), "accelerator.memory_efficiency".into()],
            low: 0.5,
            high: 2.0,
            family: Some("nvidia-hopper".into()),
            source: String::new(),
        };
        let mut c = base.clone();
        apply(&mut c, &a, 0.5);
        let h100 = |c: &Catalog| c.hardware(c.accelerator("h100-sxm").unwrap()).efficiency;
        let mi300 = |c: &Catalog| c.hardware(c.accelerator("mi300x").unwrap()).efficiency;
        assert!((h100(&c).gemm - h100(&base).gemm * 0.5).abs() < 1e-12);
        assert!((h100(&c).memory - h100(&base).memory * 0.5).abs() < 1e-12);
        assert_eq!(mi300(&c), mi300(&base));
    }
}
