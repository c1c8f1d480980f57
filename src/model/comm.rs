//! Collectives on a tiered network. Twin: `shaders/comm.wgsl`.
//!
//! The tiers, from the fastest: the scale-up domain (NVLink, NVL72, ICI); the scale-out fabric
//! inside a pod (one NIC per accelerator, rail-optimised, full bisection); the fabric above the
//! pods (the same NICs, oversubscribed: Llama 3's 24K-GPU cluster joins pods of 3,072 at 1:7);
//! and the links between sites (campuses), a per-accelerator share of the inter-site capacity.
//!
//! A process group is described by its `size` and its `stride` in the rank order (Megatron-Core
//! orders ranks tp, cp, dp, pp; a cluster on several sites puts dp outermost so that only data
//! parallelism crosses sites). Ranks are packed into domains, pods and sites in order, so a
//! group whose span `size * stride` fits in a tier never leaves it.
//!
//! Times are alpha-beta: `latency * steps + bytes / bandwidth`, with the bus-bandwidth factors of
//! ring algorithms (`2 (n-1)/n` for all-reduce, `(n-1)/n` for all-gather and reduce-scatter;
//! Patarasuk and Yuan 2009; NCCL's nccl-tests PERFORMANCE.md). A collective is priced two ways
//! and the faster is taken, as NCCL's tuner chooses between algorithms:
//! - a flat ring through all ranks: each boundary it crosses is crossed by one channel per
//!   member of the domain, so it runs at the slowest crossed tier times the domain's members
//!   (`min(scale_up, k * NIC)` inside a pod), with that tier's latency per step;
//! - hierarchical: reduce-scatter inside each domain, then inside each pod, then across pods,
//!   then across sites, each on `1/k` of the previous level's data, and back: fewer slow steps
//!   and a little more data on the fast tiers.
//!
//! All-gather and reduce-scatter inside one pod use the flat ring only (NCCL has no
//! hierarchical all-gather across nodes); beyond a pod, frameworks shard hierarchically too.

use super::Hardware;

/// Scale-up bandwidth that collectives reach, bytes/s per accelerator and direction.
pub fn scale_up_bandwidth(hw: &Hardware) -> f64 {
    hw.scale_up_bytes_per_s * hw.efficiency.scale_up
}

/// Torus axes that a group spanning `span` consecutive ranks of the scale-up domain runs on: 1 in
/// a switched domain; on a torus, as many axes of `torus_axis` chips as the span needs, at most
/// the torus's dimensions (ranks fill one axis, then the next, as JAX's mesh builder lays
/// MaxText's mesh axes on ICI).
pub fn torus_axes(hw: &Hardware, span: f64) -> f64 {
    if hw.torus_axis <= 1.0 {
        return 1.0;
    }
    let mut axes = 1.0;
    let mut reach = hw.torus_axis;
    while axes < hw.torus_dims && span > reach {
        axes += 1.0;
        reach *= hw.torus_axis;
    }
    axes
}

/// Bandwidth a collective among `span` consecutive ranks reaches inside the scale-up domain:
/// each rank's link through a switch; on a torus, a bidirectional ring on every axis the group
/// spans at once (Austin et al., "How to Scale Your Model", sharding chapter: an all-gather of
/// `V` bytes takes `V / (W_bidi n_axes)`).
pub fn domain_bandwidth(hw: &Hardware, span: f64) -> f64 {
    scale_up_bandwidth(hw) * torus_axes(hw, span)
}

/// Latency steps of a ring through `n` ranks of the domain: `n - 1` through a switch; on a
/// torus, half of each spanned axis's extent (bidirectional rings, the same book's
/// `T_min sum |X_i| / 2`).
pub fn domain_ring_steps(hw: &Hardware, n: f64) -> f64 {
    if hw.torus_axis <= 1.0 {
        return n - 1.0;
    }
    let mut steps = 0.0;
    let mut left = n;
    let mut axis = 0.0;
    while left > 1.0 && axis < hw.torus_dims {
        let extent = if axis + 1.0 >= hw.torus_dims {
            left
        } else {
            left.min(hw.torus_axis)
        };
        steps += extent / 2.0;
        left /= extent;
        axis += 1.0;
    }
    steps
}

/// A ring collective of `passes` sweeps over `n` ranks of one scale-up domain spanning `span`
/// consecutive ranks, where `bytes` is the full buffer on each rank.
pub fn domain_ring_s(hw: &Hardware, bytes: f64, n: f64, passes: f64, span: f64) -> f64 {
    if n <= 1.0 {
        return 0.0;
    }
    passes
        * ((n - 1.0) / n * bytes / domain_bandwidth(hw, span)
            + domain_ring_steps(hw, n) * hw.scale_up_latency_s)
}

/// Scale-out bandwidth that collectives reach inside a pod, bytes/s per accelerator.
pub fn scale_out_bandwidth(hw: &Hardware) -> f64 {
    hw.scale_out_bytes_per_s * hw.efficiency.scale_out
}

/// Scale-out bandwidth per accelerator across pods (the oversubscribed tier).
pub fn cross_pod_bandwidth(hw: &Hardware) -> f64 {
    scale_out_bandwidth(hw) / hw.pod_oversubscription
}

/// Inter-site bandwidth per accelerator.
pub fn inter_site_bandwidth(hw: &Hardware) -> f64 {
    hw.inter_site_bytes_per_s * hw.efficiency.scale_out
}

/// Members of a group of `size` ranks spaced `stride` apart that share one block of `block`
/// consecutive ranks (a domain, a pod, a site).
pub fn members_per_domain(size: f64, stride: f64, block: f64) -> f64 {
    if size * stride <= block {
        size
    } else {
        (block / stride).floor().clamp(1.0, size)
    }
}

/// True when a group of `size` ranks spaced `stride` apart spans more than one scale-up domain.
pub fn crosses_domain(size: f64, stride: f64, hw: &Hardware) -> bool {
    size * stride > hw.scale_up_domain as f64
}

/// Bandwidth and latency of the slowest link inside a span of `span` consecutive ranks.
pub fn slowest_link(hw: &Hardware, span: f64) -> (f64, f64) {
    if span > hw.site_size {
        (inter_site_bandwidth(hw), hw.inter_site_latency_s)
    } else if span > hw.pod_size {
        (cross_pod_bandwidth(hw), hw.cross_pod_latency_s)
    } else if span > hw.scale_up_domain as f64 {
        (scale_out_bandwidth(hw), hw.scale_out_latency_s)
    } else {
        (scale_up_bandwidth(hw), hw.scale_up_latency_s)
    }
}

/// A ring collective of `passes` sweeps (2 for all-reduce, 1 for all-gather or reduce-scatter)
/// over `n` ranks of one tier, where `bytes` is the full buffer on each rank.
pub fn ring_s(bytes: f64, n: f64, passes: f64, bandwidth: f64, latency_s: f64) -> f64 {
    if n <= 1.0 {
        return 0.0;
    }
    passes * ((n - 1.0) / n * bytes / bandwidth + (n - 1.0) * latency_s)
}

/// A flat ring of `passes` sweeps through every rank of a group.
pub fn flat_ring_s(hw: &Hardware, bytes: f64, size: f64, stride: f64, passes: f64) -> f64 {
    if !crosses_domain(size, stride, hw) {
        return domain_ring_s(hw, bytes, size, passes, size * stride);
    }
    let k = members_per_domain(size, stride, hw.scale_up_domain as f64);
    let up = domain_bandwidth(hw, k * stride);
    let (link, latency) = slowest_link(hw, size * stride);
    ring_s(bytes, size, passes, up.min(k * link), latency)
}

/// The hierarchical collective: a ring per tier, each on what the tier below left per rank.
pub fn hierarchical_s(hw: &Hardware, bytes: f64, size: f64, stride: f64, passes: f64) -> f64 {
    let in_domain = members_per_domain(size, stride, hw.scale_up_domain as f64);
    let in_pod = members_per_domain(size, stride, hw.pod_size).max(in_domain);
    let in_site = members_per_domain(size, stride, hw.site_size).max(in_pod);
    let domain_s = domain_ring_s(hw, bytes, in_domain, passes, in_domain * stride);
    let bytes = bytes / in_domain;
    let pod_s = ring_s(
        bytes,
        in_pod / in_domain,
        passes,
        scale_out_bandwidth(hw),
        hw.scale_out_latency_s,
    );
    let bytes = bytes / (in_pod / in_domain);
    let cross_pod_s = ring_s(
        bytes,
        in_site / in_pod,
        passes,
        cross_pod_bandwidth(hw),
        hw.cross_pod_latency_s,
    );
    let bytes = bytes / (in_site / in_pod);
    let sites_s = ring_s(
        bytes,
        size / in_site,
        passes,
        inter_site_bandwidth(hw),
        hw.inter_site_latency_s,
    );
    domain_s + pod_s + cross_pod_s + sites_s
}

/// All-reduce of `bytes` on every rank of the group: the faster of the flat ring and the
/// hierarchical algorithm.
pub fn all_reduce_s(hw: &Hardware, bytes: f64, size: f64, stride: f64) -> f64 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    let flat = flat_ring_s(hw, bytes, size, stride, 2.0);
    if !crosses_domain(size, stride, hw) {
        return flat;
    }
    flat.min(hierarchical_s(hw, bytes, size, stride, 2.0))
}

/// All-gather (or reduce-scatter) whose full, unsharded buffer is `bytes` on each rank: the flat
/// ring inside a pod, the faster of it and the hierarchical algorithm beyond.
pub fn all_gather_s(hw: &Hardware, bytes: f64, size: f64, stride: f64) -> f64 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    let flat = flat_ring_s(hw, bytes, size, stride, 1.0);
    if size * stride <= hw.pod_size {
        return flat;
    }
    flat.min(hierarchical_s(hw, bytes, size, stride, 1.0))
}

/// All-to-all in which each rank sends `bytes` in total, spread evenly over the group (its own
/// share stays local). Traffic to peers in the domain, in the pod, in other pods and on other
/// sites flows at once; the slowest share sets the time.
pub fn all_to_all_s(hw: &Hardware, bytes: f64, size: f64, stride: f64) -> f64 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    let in_domain = members_per_domain(size, stride, hw.scale_up_domain as f64);
    let in_pod = members_per_domain(size, stride, hw.pod_size).max(in_domain);
    let in_site = members_per_domain(size, stride, hw.site_size).max(in_pod);
    let share = |peers: f64, bandwidth: f64| bytes * peers / size / bandwidth;
    let inside = share(in_domain - 1.0, domain_bandwidth(hw, in_domain * stride));
    let pod = share(in_pod - in_domain, scale_out_bandwidth(hw));
    let cross_pod = share(in_site - in_pod, cross_pod_bandwidth(hw));
    let sites = share(size - in_site, inter_site_bandwidth(hw));
    let (_, latency) = slowest_link(hw, size * stride);
    inside.max(pod).max(cross_pod).max(sites) + (size - 1.0) * latency
}

/// Boundaries between consecutive members of a group of `size` ranks spaced `stride` apart that
/// leave a block of `block` consecutive ranks (a scale-up domain, a pod, a site), for a group that
/// starts at a block's first rank: `floor((size - 1) stride / block)`, at most `size - 1`.
pub fn boundaries_crossing(size: f64, stride: f64, block: f64) -> f64 {
    if size <= 1.0 {
        return 0.0;
    }
    ((size - 1.0) * stride / block).floor().min(size - 1.0)
}

/// Seconds of one send of `bytes` across each boundary of a pipeline of `pp` stages spaced
/// `stride` ranks apart, each on the tier it crosses (inside the scale-up domain, across NICs in
/// a pod, across pods, across sites): the slowest boundary's, and the mean over the boundaries.
/// With `wraps` (interleaved 1F1B) the last stage also sends to the first, across the whole
/// group's span.
pub fn pipeline_sends_s(hw: &Hardware, bytes: f64, pp: f64, stride: f64, wraps: bool) -> (f64, f64) {
    if pp <= 1.0 {
        return (0.0, 0.0);
    }
    let send = |bandwidth: f64, latency: f64| bytes / bandwidth + latency;
    let domain = hw.scale_up_domain as f64;
    let out_of_domain = boundaries_crossing(pp, stride, domain);
    let out_of_pod = boundaries_crossing(pp, stride, hw.pod_size).min(out_of_domain);
    let out_of_site = boundaries_crossing(pp, stride, hw.site_size).min(out_of_pod);
    let tiers = [
        (
            pp - 1.0 - out_of_domain,
            send(scale_up_bandwidth(hw), hw.scale_up_latency_s),
        ),
        (
            out_of_domain - out_of_pod,
            send(scale_out_bandwidth(hw), hw.scale_out_latency_s),
        ),
        (
            out_of_pod - out_of_site,
            send(cross_pod_bandwidth(hw), hw.cross_pod_latency_s),
        ),
        (
            out_of_site,
            send(inter_site_bandwidth(hw), hw.inter_site_latency_s),
        ),
    ];
    let mut slowest: f64 = 0.0;
    let mut total = 0.0;
    let mut boundaries = 0.0;
    for (count, seconds) in tiers {
        if count > 0.0 {
            slowest = slowest.max(seconds);
            total += count * seconds;
            boundaries += count;
        }
    }
    if wraps {
        let wrap = point_to_point_s(hw, bytes, pp * stride);
        slowest = slowest.max(wrap);
        total += wrap;
        boundaries += 1.0;
    }
    (slowest, total / boundaries)
}

/// One point-to-point transfer of `bytes` between neighbours of a group spanning `span` ranks,
/// on its slowest link.
pub fn point_to_point_s(hw: &Hardware, bytes: f64, span: f64) -> f64 {
    let (bandwidth, latency) = slowest_link(hw, span);
    bytes / bandwidth + latency
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v5e-like slice: a 16 x 16 torus of ICI rings.
    fn torus() -> Hardware {
        let mut hw = crate::model::test_support::h100();
        hw.scale_up_domain = 256;
        hw.torus_axis = 16.0;
        hw.torus_dims = 2.0;
        hw
    }

    #[test]
    fn a_torus_group_runs_on_the_axes_it_spans() {
        let hw = torus();
        assert_eq!(torus_axes(&hw, 16.0), 1.0);
        assert_eq!(torus_axes(&hw, 17.0), 2.0);
        assert_eq!(torus_axes(&hw, 256.0), 2.0);
        assert_eq!(domain_bandwidth(&hw, 256.0), 2.0 * scale_up_bandwidth(&hw));
        // Bidirectional rings: half of each axis's extent in steps.
        assert_eq!(domain_ring_steps(&hw, 16.0), 8.0);
        assert_eq!(domain_ring_steps(&hw, 256.0), 16.0);
        assert_eq!(domain_ring_steps(&hw, 64.0), 8.0 + 2.0);
        // A switch: every rank's own link, n - 1 steps.
        let switch = crate::model::test_support::h100();
        assert_eq!(torus_axes(&switch, 8.0), 1.0);
        assert_eq!(domain_ring_steps(&switch, 8.0), 7.0);
        let bw = scale_up_bandwidth(&switch);
        assert_eq!(
            domain_ring_s(&switch, 1e9, 8.0, 2.0, 8.0),
            ring_s(1e9, 8.0, 2.0, bw, switch.scale_up_latency_s)
        );
    }

    #[test]
    fn a_slice_wide_all_gather_is_twice_as_fast_as_one_axis_allows() {
        let hw = torus();
        let one_axis = all_gather_s(&hw, 1e9, 16.0, 1.0);
        let slice = all_gather_s(&hw, 1e9, 256.0, 1.0);
        // Both move almost all of the buffer; the slice-wide one has two axes' links.
        assert!(
            slice < 0.6 * one_axis * (255.0 / 256.0) / (15.0 / 16.0),
            "{slice} vs {one_axis}"
        );
    }
    use crate::model::test_support::h100;

    #[test]
    fn ring_all_reduce_by_hand() {
        // 8 ranks, 1 GB, 100 GB/s, 1 us: 2 * 7/8 * 1e9/1e11 + 2 * 7 * 1e-6.
        let t = ring_s(1e9, 8.0, 2.0, 1e11, 1e-6);
        assert!((t - (0.0175 + 14e-6)).abs() < 1e-12);
        assert_eq!(ring_s(1e9, 1.0, 2.0, 1e11, 1e-6), 0.0);
    }

    #[test]
    fn members_per_domain_follow_the_stride() {
        assert_eq!(members_per_domain(8.0, 1.0, 8.0), 8.0);
        assert_eq!(members_per_domain(64.0, 2.0, 8.0), 4.0);
        assert_eq!(members_per_domain(64.0, 8.0, 8.0), 1.0);
        assert_eq!(members_per_domain(64.0, 16.0, 8.0), 1.0);
        assert_eq!(members_per_domain(2.0, 2.0, 8.0), 2.0);
    }

    #[test]
    fn inside_a_domain_all_reduce_is_a_scale_up_ring() {
        let hw = h100();
        let t = all_reduce_s(&hw, 1e9, 8.0, 1.0);
        let expected = ring_s(1e9, 8.0, 2.0, scale_up_bandwidth(&hw), hw.scale_up_latency_s);
        assert_eq!(t, expected);
    }

    #[test]
    fn across_domains_one_member_per_domain_runs_at_nic_speed() {
        let hw = h100();
        let n = 16.0;
        let t = all_reduce_s(&hw, 1e9, n, 8.0);
        let expected = ring_s(1e9, n, 2.0, scale_out_bandwidth(&hw), hw.scale_out_latency_s);
        assert!((t / expected - 1.0).abs() < 1e-12);
    }

    #[test]
    fn across_domains_eight_members_share_eight_nics() {
        // 64 ranks in 8 domains of 8: the flat ring runs at min(NVLink, 8 NICs); hierarchical
        // moves 1/8 of the bytes across. Either beats one NIC by far.
        let hw = h100();
        let t = all_reduce_s(&hw, 1e9, 64.0, 1.0);
        let one_nic = ring_s(1e9, 64.0, 2.0, scale_out_bandwidth(&hw), hw.scale_out_latency_s);
        assert!(t < one_nic / 4.0, "{t} vs {one_nic}");
    }

    #[test]
    fn all_gather_is_half_an_all_reduce_in_bandwidth() {
        let hw = h100();
        let ar = all_reduce_s(&hw, 1e9, 8.0, 1.0);
        let ag = all_gather_s(&hw, 1e9, 8.0, 1.0);
        assert!((ar / ag - 2.0).abs() < 1e-12);
    }

    #[test]
    fn all_to_all_inside_and_across_domains() {
        let hw = h100();
        let inside = all_to_all_s(&hw, 8e8, 8.0, 1.0);
        let expected = 8e8 * 7.0 / 8.0 / scale_up_bandwidth(&hw) + 7.0 * hw.scale_up_latency_s;
        assert!((inside - expected).abs() < 1e-12);
        let across = all_to_all_s(&hw, 8e8, 16.0, 1.0);
        let out = 8e8 * 8.0 / 16.0 / scale_out_bandwidth(&hw) + 15.0 * hw.scale_out_latency_s;
        assert!((across - out).abs() < 1e-12);
    }

    #[test]
    fn crossing_oversubscribed_pods_costs_more_than_one_pod() {
        let mut hw = h100();
        hw.pod_size = 64.0;
        hw.pod_oversubscription = 7.0;
        let one_pod = all_reduce_s(&hw, 1e9, 64.0, 1.0);
        let two_pods = all_reduce_s(&hw, 1e9, 128.0, 1.0);
        assert!(two_pods > one_pod);
        // The hierarchical algorithm moves 1/64 of the data across pods: by hand.
        let expected = ring_s(1e9, 8.0, 2.0, scale_up_bandwidth(&hw), hw.scale_up_latency_s)
            + ring_s(
                1e9 / 8.0,
                8.0,
                2.0,
                scale_out_bandwidth(&hw),
                hw.scale_out_latency_s,
            )
            + ring_s(
                1e9 / 64.0,
                2.0,
                2.0,
                scale_out_bandwidth(&hw) / 7.0,
                hw.cross_pod_latency_s,
            );
        assert!((hierarchical_s(&hw, 1e9, 128.0, 1.0, 2.0) - expected).abs() < 1e-12);
        assert!(two_pods <= expected);
    }

    #[test]
    fn a_step_across_pods_pays_the_longer_path() {
        let mut hw = h100();
        hw.pod_size = 64.0;
        // The fixture's 13 us: 10 us of scale-out latency and 3 us for the aggregation layer.
        assert_eq!(slowest_link(&hw, 128.0), (scale_out_bandwidth(&hw), 13e-6));
        // Small messages are latency-bound: a ring of 1,024 ranks across 16 pods pays the
        // extra 3 us in each of its 2 x 1,023 steps.
        let (crossing, one_pod) = (flat_ring_s(&hw, 8.0, 1024.0, 1.0, 2.0), {
            let mut unbounded = hw;
            unbounded.pod_size = 1e30;
            flat_ring_s(&unbounded, 8.0, 1024.0, 1.0, 2.0)
        });
        assert!(
            (crossing - one_pod - 2.0 * 1023.0 * 3e-6).abs() < 1e-9,
            "{crossing} {one_pod}"
        );
    }

    #[test]
    fn sites_are_the_slowest_tier() {
        let mut hw = h100();
        hw.site_size = 64.0;
        assert_eq!(
            slowest_link(&hw, 128.0),
            (inter_site_bandwidth(&hw), hw.inter_site_latency_s)
        );
        assert_eq!(
            slowest_link(&hw, 64.0),
            (scale_out_bandwidth(&hw), hw.scale_out_latency_s)
        );
        assert_eq!(
            slowest_link(&hw, 8.0),
            (scale_up_bandwidth(&hw), hw.scale_up_latency_s)
        );
        let p2p = point_to_point_s(&hw, 1e9, 128.0);
        assert!((p2p - (1e9 / inter_site_bandwidth(&hw) + 1e-3)).abs() < 1e-12);
    }

    #[test]
    fn pipeline_boundaries_are_priced_on_the_tier_they_cross() {
        // 16 stages spaced 8 apart on NVL8 domains and pods of 64: every boundary crosses a
        // domain; one in eight (at ranks 64, 128, ...) crosses a pod: floor(15 * 8 / 64) = 1.
        let mut hw = h100();
        hw.pod_size = 64.0;
        hw.pod_oversubscription = 7.0;
        assert_eq!(boundaries_crossing(16.0, 8.0, 8.0), 15.0);
        assert_eq!(boundaries_crossing(16.0, 8.0, 64.0), 1.0);
        assert_eq!(boundaries_crossing(4.0, 1.0, 8.0), 0.0);
        let bytes = 1e8;
        let nic = bytes / scale_out_bandwidth(&hw) + hw.scale_out_latency_s;
        let pod = bytes / cross_pod_bandwidth(&hw) + hw.cross_pod_latency_s;
        let (slowest, mean) = pipeline_sends_s(&hw, bytes, 16.0, 8.0, false);
        assert!((slowest - pod).abs() < 1e-15);
        assert!((mean - (14.0 * nic + pod) / 15.0).abs() < 1e-12, "{mean}");
        // Stages inside one domain stay on NVLink; the interleaved wrap pays the whole span.
        let up = bytes / scale_up_bandwidth(&hw) + hw.scale_up_latency_s;
        assert_eq!(pipeline_sends_s(&hw, bytes, 4.0, 2.0, false), (up, up));
        let (slowest, mean) = pipeline_sends_s(&hw, bytes, 4.0, 4.0, true);
        assert!((slowest - nic).abs() < 1e-15);
        // Boundaries 0-1 in the domain, 1-2 across (ranks 4, 8), 2-3 in; the wrap 3-0 across.
        assert!((mean - (2.0 * up + nic + nic) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn single_rank_groups_cost_nothing() {
        let hw = h100();
        assert_eq!(all_reduce_s(&hw, 1e9, 1.0, 1.0), 0.0);
        assert_eq!(all_to_all_s(&hw, 1e9, 1.0, 1.0), 0.0);
    }
}
