//! The network as part of the question: `[search]` network axes, `[cluster] topology`, and what
//! a network's parts add to the price and the power.

use crate::{clustersweep, stderr, stdout, temp_file};
use clustersweep::engine::search::{Objective, SearchSpace};
use clustersweep::input::catalog::{Catalog, Topology};
use clustersweep::input::scenario::ScenarioFile;
use serde_json::Value;

const BASE: &str = "[model]\npreset = \"llama3-70b\"\nseq_len = 4096\n[training]\nglobal_batch = 1024\n";

fn space(cluster: &str, search: &str) -> SearchSpace {
    let text = format!("{BASE}[cluster]\n{cluster}\n[search]\n{search}\n");
    let file = ScenarioFile::parse(&text, "network").unwrap();
    SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "network").unwrap()
}

fn resolve_error(search: &str) -> String {
    let text = format!("{BASE}[search]\n{search}\n");
    let file = ScenarioFile::parse(&text, "network").unwrap();
    SearchSpace::resolve(&file, &Catalog::builtin(), Objective::Time, "network")
        .expect_err("the space is refused")
        .to_string()
}

#[test]
fn the_catalogs_own_network_listed_as_an_axis_prices_as_leaving_it_out() {
    // h100-sxm's catalog network: 400G NICs, two-tier pods of 3,072 at 1:7.
    let plain = space("", "accelerators = [\"h100-sxm\"]");
    let listed = space(
        "",
        "accelerators = [\"h100-sxm\"]\nscale_out_gbps = [400]\ntopology = [\"two-tier\"]\npod_size = [3072]\npod_oversubscription = [7]",
    );
    assert_eq!(plain.accelerators.len(), 1);
    assert_eq!(listed.accelerators.len(), 1);
    assert_eq!(plain.accelerators[0].hardware, listed.accelerators[0].hardware);
    assert_eq!(plain.accelerators[0].economics, listed.accelerators[0].economics);
    assert_eq!(plain.accelerators[0].network, listed.accelerators[0].network);
}

#[test]
fn faster_nics_more_tiers_and_less_oversubscription_cost_and_draw_more() {
    let s = space(
        "pricing = \"capex\"",
        "accelerators = [\"gb200\"]\nscale_out_gbps = [200, 400]\npod_oversubscription = [1, 7]",
    );
    assert_eq!(s.accelerators.len(), 4);
    let find = |gbps: f64, topology: Topology, o: f64| {
        s.accelerators
            .iter()
            .find(|a| {
                a.network.scale_out_gbps == gbps
                    && a.network.topology == topology
                    && a.network.pod_oversubscription == o
            })
            .unwrap()
    };
    // A third tier as the user's what-if ([cluster] topology).
    let three_tier = space(
        "pricing = \"capex\"\ntopology = \"three-tier\"",
        "accelerators = [\"gb200\"]\nscale_out_gbps = [200]",
    );
    let reference = find(200.0, Topology::TwoTier, 7.0);
    for other in [
        find(400.0, Topology::TwoTier, 7.0),
        &three_tier.accelerators[0],
        find(200.0, Topology::TwoTier, 1.0),
    ] {
        let (r, o) = (&reference.economics, &other.economics);
        assert!(
            o.capex_per_accelerator_usd > r.capex_per_accelerator_usd,
            "{:?}",
            other.network
        );
        assert!(o.power_all_in_w > r.power_all_in_w, "{:?}", other.network);
        // A rental price follows the capital cost in proportion.
        let capex_ratio = o.capex_per_accelerator_usd / r.capex_per_accelerator_usd;
        assert!((o.price_per_hour_usd / r.price_per_hour_usd - capex_ratio).abs() < 1e-12);
    }
    // Twice the NIC rate doubles each accelerator's share of the fabric: about 50 W and
    // $3,300 more from a 200G two-tier network at 1:7 (catalog [network]: ~100 W at 400G).
    let fast = find(400.0, Topology::TwoTier, 7.0);
    let extra_w = fast.economics.power_all_in_w - reference.economics.power_all_in_w;
    assert!((45.0..55.0).contains(&extra_w), "{extra_w} W");
    assert_eq!(
        fast.hardware.scale_out_bytes_per_s,
        2.0 * reference.hardware.scale_out_bytes_per_s
    );
    // Traffic across three-tier pods climbs two more tiers (the joining tier's latency again);
    // a ring's neighbour hops inside a pod stay in their leaf-spine block.
    let three = &three_tier.accelerators[0];
    assert_eq!(three.network.topology, Topology::ThreeTier);
    assert!(three.hardware.cross_pod_latency_s > reference.hardware.cross_pod_latency_s);
    assert_eq!(
        three.hardware.scale_out_latency_s,
        reference.hardware.scale_out_latency_s
    );
    assert_eq!(three.hardware.pod_oversubscription, 7.0);
    assert_eq!(
        find(400.0, Topology::TwoTier, 1.0).hardware.pod_oversubscription,
        1.0
    );
}

#[test]
fn cluster_topology_prices_one_network_for_estimate_and_sweep() {
    let two = space("pricing = \"capex\"", "accelerators = [\"gb200\"]");
    let three = space(
        "pricing = \"capex\"\ntopology = \"three-tier\"",
        "accelerators = [\"gb200\"]",
    );
    assert_eq!(three.accelerators[0].network.topology, Topology::ThreeTier);
    assert!(
        three.accelerators[0].economics.capex_per_accelerator_usd
            > two.accelerators[0].economics.capex_per_accelerator_usd
    );
    let cost_usd = |name: &str, topology: &str| -> (f64, String) {
        let path = temp_file(
            "cluster_topology",
            name,
            &format!(
                "{BASE}[cluster]\naccelerator = \"gb200\"\ncount = 512\npricing = \"capex\"\n{topology}\n[layout]\ntp = 8\n"
            ),
        );
        let out = clustersweep(&["estimate", path.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
        (
            report["cost_usd"].as_f64().unwrap(),
            report["network"]["topology"].as_str().unwrap().to_string(),
        )
    };
    // The estimate names the network it priced.
    let (three_cost, three) = cost_usd("three.toml", "topology = \"three-tier\"");
    let (two_cost, two) = cost_usd("two.toml", "");
    assert_eq!((three.as_str(), two.as_str()), ("three-tier", "two-tier"));
    assert!(
        three_cost > two_cost,
        "three-tier ${three_cost}, two-tier ${two_cost}"
    );
}

#[test]
fn each_accelerator_takes_the_scale_up_domains_it_ships_in() {
    // TPU v6e ships in square slices of 16, 64 and 256 chips (the torus axis follows); the
    // GPUs in none of these sizes but their own.
    let s = space(
        "",
        "accelerators = [\"tpu-v6e\", \"gb200\"]\nscale_up_domain = [16, 64, 72, 256]",
    );
    let networks: Vec<(String, u32, f64)> = s
        .accelerators
        .iter()
        .map(|a| {
            (
                a.spec.id.clone(),
                a.network.scale_up_domain,
                a.hardware.torus_axis,
            )
        })
        .collect();
    assert_eq!(
        networks,
        vec![
            ("tpu-v6e".to_string(), 16, 4.0),
            ("tpu-v6e".to_string(), 64, 8.0),
            ("tpu-v6e".to_string(), 256, 16.0),
            ("gb200".to_string(), 72, 0.0),
        ]
    );
    // NIC rates likewise: an H100's PCIe Gen5 link feeds a 400G NIC, not an 800G one.
    let s = space(
        "",
        "accelerators = [\"h100-sxm\", \"gb300\"]\nscale_out_gbps = [400, 800]",
    );
    let rates: Vec<(String, f64)> = s
        .accelerators
        .iter()
        .map(|a| (a.spec.id.clone(), a.network.scale_out_gbps))
        .collect();
    assert_eq!(
        rates,
        vec![
            ("h100-sxm".to_string(), 400.0),
            ("gb300".to_string(), 400.0),
            ("gb300".to_string(), 800.0)
        ]
    );
    // A named accelerator that ships in none of the listed sizes is an error naming the key.
    let message = resolve_error("accelerators = [\"h100-sxm\"]\nscale_up_domain = [72]");
    assert!(
        message.contains("h100-sxm") && message.contains("scale_up_domain"),
        "{message}"
    );
}

#[test]
fn pods_larger_than_a_topology_builds_and_needless_third_tiers_are_left_out() {
    // 51.2 Tb/s switches at 800G have radix 64: two tiers hold 2,048 NICs a rail (16,384 on
    // 8 rails), three tiers 65,536 a rail.
    let s = space("", "accelerators = [\"gb300\"]\nscale_out_gbps = [800]\npod_size = [16384, 100000]\ntopology = [\"two-tier\", \"three-tier\"]");
    let pods: Vec<(Topology, f64)> = s
        .accelerators
        .iter()
        .map(|a| (a.network.topology, a.network.pod_size))
        .collect();
    assert_eq!(
        pods,
        // (three tiers for a pod two tiers build would only add parts and latency)
        vec![(Topology::TwoTier, 16384.0), (Topology::ThreeTier, 100000.0)]
    );
}

#[test]
fn bad_network_axes_exit_2_naming_the_key() {
    for (search, key) in [
        ("pod_oversubscription = [0.5]", "pod_oversubscription"),
        ("scale_out_gbps = [400, 400]", "scale_out_gbps"),
        ("scale_out_gbps = [0]", "scale_out_gbps"),
        ("scale_up_domain = [0]", "scale_up_domain"),
        ("topology = [\"ring\"]", "ring"),
    ] {
        let path = temp_file(
            "bad_network_axes",
            "s.toml",
            &format!("{BASE}[search]\naccelerators = [\"h100-sxm\"]\ncounts = [64]\n{search}\n"),
        );
        let out = clustersweep(&["sweep", path.to_str().unwrap(), "--backend", "cpu"]);
        assert_eq!(out.status.code(), Some(2), "{search}: {}", stderr(&out));
        assert!(stderr(&out).contains(key), "{search}: {}", stderr(&out));
    }
}

#[test]
fn sweep_and_plan_entries_name_their_network() {
    let path = temp_file(
        "entries_name_network",
        "s.toml",
        &format!(
            "{BASE}[cluster]\npricing = \"capex\"\n[search]\naccelerators = [\"gb300\"]\ncounts = [1024]\ntp = [8]\n\
             scale_out_gbps = [400, 800]\npod_oversubscription = [1, 7]\n"
        ),
    );
    let out = clustersweep(&[
        "sweep",
        path.to_str().unwrap(),
        "--backend",
        "cpu",
        "--json",
        "--top",
        "40",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut rates = std::collections::BTreeSet::new();
    for entry in report["top"].as_array().unwrap() {
        let network = &entry["layout"]["network"];
        for key in [
            "scale_up_domain",
            "scale_out_gbps",
            "pod_size",
            "pod_oversubscription",
            "topology",
        ] {
            assert!(!network[key].is_null(), "{key} missing from {network}");
        }
        rates.insert(network["scale_out_gbps"].as_f64().unwrap() as u64);
    }
    // The time objective prefers the faster NIC, but the forty best span both.
    assert!(rates.contains(&800), "{rates:?}");
    let out = clustersweep(&[
        "sweep",
        path.to_str().unwrap(),
        "--backend",
        "cpu",
        "--csv",
        "--top",
        "3",
    ]);
    let csv = stdout(&out);
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .contains("scale_out_gbps,pod_size,pod_oversubscription,topology"),
        "{csv}"
    );
    let out = clustersweep(&["plan", path.to_str().unwrap(), "--backend", "cpu", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let first = &plan["plans"][0]["layout"]["network"];
    assert!(first["scale_out_gbps"].as_f64().is_some(), "{plan}");
}

#[test]
fn the_catalog_table_lists_the_networks_each_part_ships_with() {
    let out = clustersweep(&["catalog", "--wide"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let row = |id: &str| {
        text.lines()
            .find(|l| l.contains(&format!(" {id} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("tpu-v6e").contains("16/64/256"), "{}", row("tpu-v6e"));
    assert!(row("gb300").contains("400/800"), "{}", row("gb300"));
    assert!(row("h100-sxm").contains("200/400"), "{}", row("h100-sxm"));
}
