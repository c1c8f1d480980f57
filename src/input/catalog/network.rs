//! The scale-out network as a choice: its topology, what its parts cost and draw per
//! accelerator, and how large a full-bisection pod each topology can build.
//!
//! The catalog's capital cost per accelerator already holds a network (`network_cost_share` of
//! the cluster's cost, [EPOCH-COST]): the one its accelerator entry and `[facility]` describe
//! (the entry's NIC rate, `[facility] topology` and `pod_oversubscription`). Another network adds
//! or saves the difference of the two networks' parts, counted here, so that a scenario that
//! leaves the network alone prices exactly as before.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How the scale-out fabric is built. Each is a folded Clos (fat tree) of switches of one radix,
/// rail-optimised (accelerator `i` of every server on rail `i`), full bisection inside a pod and
/// oversubscribed by `pod_oversubscription` in the tier that joins pods.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// Leaf and spine inside a pod (the NVIDIA DGX SuperPOD and Llama 3 designs), an
    /// aggregation tier above.
    #[default]
    TwoTier,
    /// Leaf, spine and core inside a pod: pods a radix larger, two more switch hops on the way
    /// up, and more switches and optics per accelerator.
    ThreeTier,
}

impl Topology {
    pub const ALL: [Topology; 2] = [Topology::TwoTier, Topology::ThreeTier];

    pub fn name(self) -> &'static str {
        match self {
            Topology::TwoTier => "two-tier",
            Topology::ThreeTier => "three-tier",
        }
    }

    /// Switch tiers inside a pod.
    pub fn tiers(self) -> u32 {
        match self {
            Topology::TwoTier => 2,
            Topology::ThreeTier => 3,
        }
    }

    /// Switch ports and links per accelerator, in NIC-rate units: a full-bisection fat tree of
    /// `t` tiers uses `2t - 1` switch ports and `t` links per endpoint; the tier that joins pods
    /// adds two ports and a link per `pod_oversubscription` endpoints.
    pub fn ports_and_links(self, pod_oversubscription: f64) -> (f64, f64) {
        let t = self.tiers() as f64;
        let above = 1.0 / pod_oversubscription;
        (2.0 * t - 1.0 + 2.0 * above, t + above)
    }
}

/// One network, resolved: what a plan or sweep entry names.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Network {
    /// Accelerators in one scale-up domain (NVLink domain, TPU slice).
    pub scale_up_domain: u32,
    /// NIC rate per accelerator, one direction, Gb/s.
    pub scale_out_gbps: f64,
    /// Accelerators under one full-bisection pod.
    pub pod_size: f64,
    /// Oversubscription of the tier that joins pods (1 = full bisection everywhere).
    pub pod_oversubscription: f64,
    pub topology: Topology,
}

impl Network {
    /// `x72 800G, 3-tier 32,768, 1:7`: the table cell (scale-up domain, NIC rate, pod topology
    /// and size, oversubscription above pods).
    pub fn label(&self) -> String {
        format!(
            "x{} {}G, {}-tier {}, 1:{}",
            self.scale_up_domain,
            self.scale_out_gbps,
            self.topology.tiers(),
            crate::units::human_count(self.pod_size as u64),
            self.pod_oversubscription
        )
    }
}

/// `[network]` of the catalog: the parts of a scale-out fabric, per 400 Gb/s of port (a part of
/// another rate costs and draws in proportion), and the switch that bounds a pod.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkParts {
    /// Switching capacity of one switch ASIC, Tb/s: its radix is this over the NIC rate.
    pub switch_tbps: f64,
    /// Rails of a rail-optimised fabric: one plane per accelerator of a server.
    pub rails: f64,
    pub nic_usd_per_400g: f64,
    pub switch_port_usd_per_400g: f64,
    /// A link: two transceivers and the fibre between them.
    pub link_usd_per_400g: f64,
    pub nic_w_per_400g: f64,
    pub switch_port_w_per_400g: f64,
    pub link_w_per_400g: f64,
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

/// `[network]` in a user's catalog file: any field replaces the built-in one.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkPartsFile {
    switch_tbps: Option<f64>,
    rails: Option<f64>,
    nic_usd_per_400g: Option<f64>,
    switch_port_usd_per_400g: Option<f64>,
    link_usd_per_400g: Option<f64>,
    nic_w_per_400g: Option<f64>,
    switch_port_w_per_400g: Option<f64>,
    link_w_per_400g: Option<f64>,
    #[serde(default)]
    sources: BTreeMap<String, String>,
}

impl NetworkParts {
    /// Parts that cost and draw nothing (the base a catalog file's `[network]` fills).
    pub fn none() -> NetworkParts {
        NetworkParts {
            switch_tbps: 1e30,
            rails: 1.0,
            nic_usd_per_400g: 0.0,
            switch_port_usd_per_400g: 0.0,
            link_usd_per_400g: 0.0,
            nic_w_per_400g: 0.0,
            switch_port_w_per_400g: 0.0,
            link_w_per_400g: 0.0,
            sources: BTreeMap::new(),
        }
    }

    pub fn merge(&mut self, f: NetworkPartsFile) {
        for (into, from) in [
            (&mut self.switch_tbps, f.switch_tbps),
            (&mut self.rails, f.rails),
            (&mut self.nic_usd_per_400g, f.nic_usd_per_400g),
            (&mut self.switch_port_usd_per_400g, f.switch_port_usd_per_400g),
            (&mut self.link_usd_per_400g, f.link_usd_per_400g),
            (&mut self.nic_w_per_400g, f.nic_w_per_400g),
            (&mut self.switch_port_w_per_400g, f.switch_port_w_per_400g),
            (&mut self.link_w_per_400g, f.link_w_per_400g),
        ] {
            if let Some(v) = from {
                *into = v;
            }
        }
        self.sources.extend(f.sources);
    }

    /// Why these parts cannot describe a network, if they cannot.
    pub fn problem(&self) -> Option<String> {
        for (key, v, least) in [
            ("switch_tbps", self.switch_tbps, f64::MIN_POSITIVE),
            ("rails", self.rails, 1.0),
            ("nic_usd_per_400g", self.nic_usd_per_400g, 0.0),
            ("switch_port_usd_per_400g", self.switch_port_usd_per_400g, 0.0),
            ("link_usd_per_400g", self.link_usd_per_400g, 0.0),
            ("nic_w_per_400g", self.nic_w_per_400g, 0.0),
            ("switch_port_w_per_400g", self.switch_port_w_per_400g, 0.0),
            ("link_w_per_400g", self.link_w_per_400g, 0.0),
        ] {
            if !(v.is_finite() && v >= least) {
                return Some(format!(
                    "[network] {key} = {v}, expected a number of at least {least}"
                ));
            }
        }
        None
    }

    /// One accelerator's share of the fabric at `scale_out_gbps` (its NIC, its switch ports and
    /// its links): capital cost in USD and power at nameplate in W.
    pub fn share_per_accelerator(
        &self,
        scale_out_gbps: f64,
        topology: Topology,
        pod_oversubscription: f64,
    ) -> (f64, f64) {
        let (ports, links) = topology.ports_and_links(pod_oversubscription);
        let per_400g = scale_out_gbps / 400.0;
        let usd =
            self.nic_usd_per_400g + ports * self.switch_port_usd_per_400g + links * self.link_usd_per_400g;
        let w = self.nic_w_per_400g + ports * self.switch_port_w_per_400g + links * self.link_w_per_400g;
        (per_400g * usd, per_400g * w)
    }

    /// Accelerators the largest full-bisection pod of `topology` holds at `scale_out_gbps`: a
    /// fat tree of radix-`r` switches reaches `r^2 / 2` endpoints in two tiers and `r^3 / 4` in
    /// three, on each rail.
    pub fn max_pod_size(&self, scale_out_gbps: f64, topology: Topology) -> f64 {
        let radix = (self.switch_tbps * 1000.0 / scale_out_gbps).floor().max(2.0);
        let per_rail = match topology {
            Topology::TwoTier => radix * radix / 2.0,
            Topology::ThreeTier => radix * radix * radix / 4.0,
        };
        per_rail * self.rails
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fat_tree_counts_its_ports_and_links() {
        // Two tiers at full bisection everywhere: leaf down, leaf up, spine down, plus the
        // joining tier's up and down ports; links NIC-leaf, leaf-spine, spine-aggregation.
        assert_eq!(Topology::TwoTier.ports_and_links(1.0), (5.0, 3.0));
        assert_eq!(Topology::ThreeTier.ports_and_links(1.0), (7.0, 4.0));
        let (ports, links) = Topology::TwoTier.ports_and_links(7.0);
        assert!((ports - (3.0 + 2.0 / 7.0)).abs() < 1e-12 && (links - (2.0 + 1.0 / 7.0)).abs() < 1e-12);
    }

    #[test]
    fn pods_grow_a_radix_per_tier_and_shrink_with_faster_nics() {
        let parts = NetworkParts {
            switch_tbps: 51.2,
            rails: 8.0,
            ..NetworkParts::none()
        };
        // 51.2 Tb/s as 128 x 400G: 8,192 NICs per rail in two tiers, 524,288 in three.
        assert_eq!(parts.max_pod_size(400.0, Topology::TwoTier), 8.0 * 8192.0);
        assert_eq!(parts.max_pod_size(400.0, Topology::ThreeTier), 8.0 * 524_288.0);
        assert_eq!(parts.max_pod_size(800.0, Topology::TwoTier), 8.0 * 2048.0);
    }
}
