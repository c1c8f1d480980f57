//! Collectives on a two-tier network: a scale-up domain (NVLink, Infinity Fabric, ICI) and a
//! scale-out fabric (one NIC per accelerator, rail-optimised). Twin: `shaders/comm.wgsl`.
//!
//! A process group is described by its `size` and its `stride` in the rank order (Megatron-Core
//! orders ranks tp, cp, ep/dp, pp: a tensor-parallel group has stride 1, a data-parallel group
//! stride `tp * cp`). Ranks are packed into scale-up domains in order, so a group with
//! `size * stride <= domain` never leaves its domain.
//!
//! Times are alpha-beta: `latency * steps + bytes / bandwidth`, with the bus-bandwidth factors of
//! ring algorithms (`2 (n-1)/n` for all-reduce, `(n-1)/n` for all-gather and reduce-scatter;
//! Patarasuk and Yuan 2009; NCCL's nccl-tests PERFORMANCE.md).
//!
//! Across domains an all-reduce is priced two ways and the faster is taken, as NCCL's tuner
//! chooses between ring and tree:
//! - a flat ring through all ranks: every domain boundary is crossed by one channel per NIC, so
//!   the ring runs at `min(scale_up, members_per_domain * scale_out)` bus bandwidth, with one
//!   latency per step;
//! - hierarchical: reduce-scatter inside each domain, all-reduce across domains on `1/k` of the
//!   data per rank, all-gather inside the domain; fewer slow steps, one more fast phase.
//!
//! All-gather and reduce-scatter use the flat ring only.

use super::Hardware;

/// Scale-up bandwidth that collectives reach, bytes/s per accelerator and direction.
pub fn scale_up_bandwidth(hw: &Hardware) -> f64 {
    hw.scale_up_bytes_per_s * hw.efficiency.scale_up
}

/// Scale-out bandwidth that collectives reach, bytes/s per accelerator and direction.
pub fn scale_out_bandwidth(hw: &Hardware) -> f64 {
    hw.scale_out_bytes_per_s * hw.efficiency.scale_out
}

/// Members of a group of `size` ranks spaced `stride` apart that share one scale-up domain.
pub fn members_per_domain(size: f64, stride: f64, domain: f64) -> f64 {
    if size * stride <= domain {
        size
    } else {
        (domain / stride).floor().clamp(1.0, size)
    }
}

/// True when a group of `size` ranks spaced `stride` apart spans more than one scale-up domain.
pub fn crosses_domain(size: f64, stride: f64, hw: &Hardware) -> bool {
    size * stride > hw.scale_up_domain as f64
}

/// A ring collective of `passes` sweeps (2 for all-reduce, 1 for all-gather or reduce-scatter)
/// over `n` ranks of one tier, where `bytes` is the full buffer on each rank.
pub fn ring_s(bytes: f64, n: f64, passes: f64, bandwidth: f64, latency_s: f64) -> f64 {
    if n <= 1.0 {
        return 0.0;
    }
    passes * ((n - 1.0) / n * bytes / bandwidth + (n - 1.0) * latency_s)
}

/// A flat ring of `passes` sweeps through every rank of a group: inside one domain it runs on
/// the scale-up links; across domains each boundary is crossed by one channel per NIC, so it
/// runs at `min(scale_up, members_per_domain * scale_out)`, paying one network latency per step.
pub fn flat_ring_s(hw: &Hardware, bytes: f64, size: f64, stride: f64, passes: f64) -> f64 {
    let up = scale_up_bandwidth(hw);
    if !crosses_domain(size, stride, hw) {
        return ring_s(bytes, size, passes, up, hw.scale_up_latency_s);
    }
    let k = members_per_domain(size, stride, hw.scale_up_domain as f64);
    ring_s(
        bytes,
        size,
        passes,
        up.min(k * scale_out_bandwidth(hw)),
        hw.scale_out_latency_s,
    )
}

/// All-reduce of `bytes` on every rank of the group: the faster of the flat ring and the
/// hierarchical algorithm (reduce-scatter in each domain, all-reduce of `1/k` of the data across
/// domains, all-gather in each domain), whose latency grows with domains, not ranks.
pub fn all_reduce_s(hw: &Hardware, bytes: f64, size: f64, stride: f64) -> f64 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    let flat = flat_ring_s(hw, bytes, size, stride, 2.0);
    if !crosses_domain(size, stride, hw) {
        return flat;
    }
    let k = members_per_domain(size, stride, hw.scale_up_domain as f64);
    let hierarchical = ring_s(bytes, k, 2.0, scale_up_bandwidth(hw), hw.scale_up_latency_s)
        + ring_s(
            bytes / k,
            size / k,
            2.0,
            scale_out_bandwidth(hw),
            hw.scale_out_latency_s,
        );
    flat.min(hierarchical)
}

/// All-gather (or reduce-scatter) whose full, unsharded buffer is `bytes` on each rank: a flat
/// ring, the only algorithm NCCL offers for these across nodes with several GPUs per node.
pub fn all_gather_s(hw: &Hardware, bytes: f64, size: f64, stride: f64) -> f64 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    flat_ring_s(hw, bytes, size, stride, 1.0)
}

/// All-to-all in which each rank sends `bytes` in total, spread evenly over the group (its own
/// share stays local). Traffic to peers inside the domain and across it flows at once; the
/// slower tier sets the time.
pub fn all_to_all_s(hw: &Hardware, bytes: f64, size: f64, stride: f64) -> f64 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    let k = members_per_domain(size, stride, hw.scale_up_domain as f64);
    let inside = bytes * (k - 1.0) / size / scale_up_bandwidth(hw);
    let outside = bytes * (size - k) / size / scale_out_bandwidth(hw);
    let latency = if k < size {
        hw.scale_out_latency_s
    } else {
        hw.scale_up_latency_s
    };
    inside.max(outside) + (size - 1.0) * latency
}

/// One point-to-point transfer of `bytes`, inside the domain or across it.
pub fn point_to_point_s(hw: &Hardware, bytes: f64, across_domains: bool) -> f64 {
    if across_domains {
        bytes / scale_out_bandwidth(hw) + hw.scale_out_latency_s
    } else {
        bytes / scale_up_bandwidth(hw) + hw.scale_up_latency_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn single_rank_groups_cost_nothing() {
        let hw = h100();
        assert_eq!(all_reduce_s(&hw, 1e9, 1.0, 1.0), 0.0);
        assert_eq!(all_to_all_s(&hw, 1e9, 1.0, 1.0), 0.0);
    }
}
