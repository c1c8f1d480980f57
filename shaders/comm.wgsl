// Twin: src/model/comm.rs. Collectives on the tiered network: scale-up domain, pod, the
// oversubscribed fabric above pods, and the links between sites.

fn scale_up_bandwidth(hw: GpuAccelerator) -> f32 {
    return hw.scale_up_bytes_per_s * hw.scale_up;
}

fn torus_axes(hw: GpuAccelerator, span: f32) -> f32 {
    if hw.torus_axis <= 1.0 {
        return 1.0;
    }
    var axes = 1.0;
    var reach = hw.torus_axis;
    while axes < hw.torus_dims && span > reach {
        axes += 1.0;
        reach *= hw.torus_axis;
    }
    return axes;
}

fn domain_bandwidth(hw: GpuAccelerator, span: f32) -> f32 {
    return scale_up_bandwidth(hw) * torus_axes(hw, span);
}

fn domain_ring_steps(hw: GpuAccelerator, n: f32) -> f32 {
    if hw.torus_axis <= 1.0 {
        return n - 1.0;
    }
    var steps = 0.0;
    var left = n;
    var axis = 0.0;
    while left > 1.0 && axis < hw.torus_dims {
        var extent = min(left, hw.torus_axis);
        if axis + 1.0 >= hw.torus_dims {
            extent = left;
        }
        steps += extent / 2.0;
        left /= extent;
        axis += 1.0;
    }
    return steps;
}

fn domain_ring_s(hw: GpuAccelerator, bytes: f32, n: f32, passes: f32, span: f32) -> f32 {
    if n <= 1.0 {
        return 0.0;
    }
    return passes * ((n - 1.0) / n * bytes / domain_bandwidth(hw, span) + domain_ring_steps(hw, n) * hw.scale_up_latency_s);
}

fn scale_out_bandwidth(hw: GpuAccelerator) -> f32 {
    return hw.scale_out_bytes_per_s * hw.scale_out;
}

fn cross_pod_bandwidth(hw: GpuAccelerator) -> f32 {
    return scale_out_bandwidth(hw) / hw.pod_oversubscription;
}

fn inter_site_bandwidth(hw: GpuAccelerator) -> f32 {
    return hw.inter_site_bytes_per_s * hw.scale_out;
}

fn members_per_domain(size: f32, stride: f32, block: f32) -> f32 {
    if size * stride <= block {
        return size;
    }
    return clamp(floor(block / stride), 1.0, size);
}

fn crosses_domain(size: f32, stride: f32, hw: GpuAccelerator) -> bool {
    return size * stride > hw.scale_up_domain;
}

fn boundaries_crossing(size: f32, stride: f32, block: f32) -> f32 {
    if size <= 1.0 {
        return 0.0;
    }
    return min(floor((size - 1.0) * stride / block), size - 1.0);
}

// (slowest, mean) seconds of one send across each boundary of a pipeline, each on its tier.
fn pipeline_sends_s(hw: GpuAccelerator, bytes: f32, pp: f32, stride: f32, wraps: bool) -> vec2<f32> {
    if pp <= 1.0 {
        return vec2<f32>(0.0, 0.0);
    }
    let out_of_domain = boundaries_crossing(pp, stride, hw.scale_up_domain);
    let out_of_pod = min(boundaries_crossing(pp, stride, hw.pod_size), out_of_domain);
    let out_of_site = min(boundaries_crossing(pp, stride, hw.site_size), out_of_pod);
    let counts = vec4<f32>(pp - 1.0 - out_of_domain, out_of_domain - out_of_pod, out_of_pod - out_of_site, out_of_site);
    let seconds = vec4<f32>(
        bytes / scale_up_bandwidth(hw) + hw.scale_up_latency_s,
        bytes / scale_out_bandwidth(hw) + hw.scale_out_latency_s,
        bytes / cross_pod_bandwidth(hw) + hw.cross_pod_latency_s,
        bytes / inter_site_bandwidth(hw) + hw.inter_site_latency_s,
    );
    var slowest = 0.0;
    var total = 0.0;
    var boundaries = 0.0;
    for (var i = 0u; i < 4u; i++) {
        if counts[i] > 0.0 {
            slowest = max(slowest, seconds[i]);
            total += counts[i] * seconds[i];
            boundaries += counts[i];
        }
    }
    if wraps {
        let wrap = point_to_point_s(hw, bytes, pp * stride);
        slowest = max(slowest, wrap);
        total += wrap;
        boundaries += 1.0;
    }
    return vec2<f32>(slowest, total / boundaries);
}

// (bandwidth, latency) of the slowest link inside a span of ranks.
fn slowest_link(hw: GpuAccelerator, span: f32) -> vec2<f32> {
    if span > hw.site_size {
        return vec2<f32>(inter_site_bandwidth(hw), hw.inter_site_latency_s);
    }
    if span > hw.pod_size {
        return vec2<f32>(cross_pod_bandwidth(hw), hw.cross_pod_latency_s);
    }
    if span > hw.scale_up_domain {
        return vec2<f32>(scale_out_bandwidth(hw), hw.scale_out_latency_s);
    }
    return vec2<f32>(scale_up_bandwidth(hw), hw.scale_up_latency_s);
}

fn ring_s(bytes: f32, n: f32, passes: f32, bandwidth: f32, latency_s: f32) -> f32 {
    if n <= 1.0 {
        return 0.0;
    }
    return passes * ((n - 1.0) / n * bytes / bandwidth + (n - 1.0) * latency_s);
}

fn flat_ring_s(hw: GpuAccelerator, bytes: f32, size: f32, stride: f32, passes: f32) -> f32 {
    if !crosses_domain(size, stride, hw) {
        return domain_ring_s(hw, bytes, size, passes, size * stride);
    }
    let k = members_per_domain(size, stride, hw.scale_up_domain);
    let up = domain_bandwidth(hw, k * stride);
    let link = slowest_link(hw, size * stride);
    return ring_s(bytes, size, passes, min(up, k * link.x), link.y);
}

fn hierarchical_s(hw: GpuAccelerator, bytes: f32, size: f32, stride: f32, passes: f32) -> f32 {
    let in_domain = members_per_domain(size, stride, hw.scale_up_domain);
    let in_pod = max(members_per_domain(size, stride, hw.pod_size), in_domain);
    let in_site = max(members_per_domain(size, stride, hw.site_size), in_pod);
    let domain_s = domain_ring_s(hw, bytes, in_domain, passes, in_domain * stride);
    var b = bytes / in_domain;
    let pod_s = ring_s(b, in_pod / in_domain, passes, scale_out_bandwidth(hw), hw.scale_out_latency_s);
    b = b / (in_pod / in_domain);
    let cross_pod_s = ring_s(b, in_site / in_pod, passes, cross_pod_bandwidth(hw), hw.cross_pod_latency_s);
    b = b / (in_site / in_pod);
    let sites_s = ring_s(b, size / in_site, passes, inter_site_bandwidth(hw), hw.inter_site_latency_s);
    return domain_s + pod_s + cross_pod_s + sites_s;
}

fn all_reduce_s(hw: GpuAccelerator, bytes: f32, size: f32, stride: f32) -> f32 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    let flat = flat_ring_s(hw, bytes, size, stride, 2.0);
    if !crosses_domain(size, stride, hw) {
        return flat;
    }
    return min(flat, hierarchical_s(hw, bytes, size, stride, 2.0));
}

fn all_gather_s(hw: GpuAccelerator, bytes: f32, size: f32, stride: f32) -> f32 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    let flat = flat_ring_s(hw, bytes, size, stride, 1.0);
    if size * stride <= hw.pod_size {
        return flat;
    }
    return min(flat, hierarchical_s(hw, bytes, size, stride, 1.0));
}

// One peer class's share of an all-to-all: `peers` of `size` at `bandwidth`.
fn all_to_all_share(bytes: f32, peers: f32, size: f32, bandwidth: f32) -> f32 {
    return bytes * peers / size / bandwidth;
}

fn all_to_all_s(hw: GpuAccelerator, bytes: f32, size: f32, stride: f32) -> f32 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    let in_domain = members_per_domain(size, stride, hw.scale_up_domain);
    let in_pod = max(members_per_domain(size, stride, hw.pod_size), in_domain);
    let in_site = max(members_per_domain(size, stride, hw.site_size), in_pod);
    let inside = all_to_all_share(bytes, in_domain - 1.0, size, domain_bandwidth(hw, in_domain * stride));
    let pod = all_to_all_share(bytes, in_pod - in_domain, size, scale_out_bandwidth(hw));
    let cross_pod = all_to_all_share(bytes, in_site - in_pod, size, cross_pod_bandwidth(hw));
    let sites = all_to_all_share(bytes, size - in_site, size, inter_site_bandwidth(hw));
    let latency = slowest_link(hw, size * stride).y;
    return max(max(inside, pod), max(cross_pod, sites)) + (size - 1.0) * latency;
}

fn point_to_point_s(hw: GpuAccelerator, bytes: f32, span: f32) -> f32 {
    let link = slowest_link(hw, span);
    return bytes / link.x + link.y;
}
