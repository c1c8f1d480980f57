// Twin: src/model/comm.rs. Collectives on the scale-up domain and the scale-out NICs.

fn scale_up_bandwidth(hw: GpuAccelerator) -> f32 {
    return hw.scale_up_bytes_per_s * hw.scale_up;
}

fn scale_out_bandwidth(hw: GpuAccelerator) -> f32 {
    return hw.scale_out_bytes_per_s * hw.scale_out;
}

fn members_per_domain(size: f32, stride: f32, domain: f32) -> f32 {
    if size * stride <= domain {
        return size;
    }
    return clamp(floor(domain / stride), 1.0, size);
}

fn crosses_domain(size: f32, stride: f32, hw: GpuAccelerator) -> bool {
    return size * stride > hw.scale_up_domain;
}

fn ring_s(bytes: f32, n: f32, passes: f32, bandwidth: f32, latency_s: f32) -> f32 {
    if n <= 1.0 {
        return 0.0;
    }
    return passes * ((n - 1.0) / n * bytes / bandwidth + (n - 1.0) * latency_s);
}

fn flat_ring_s(hw: GpuAccelerator, bytes: f32, size: f32, stride: f32, passes: f32) -> f32 {
    let up = scale_up_bandwidth(hw);
    if !crosses_domain(size, stride, hw) {
        return ring_s(bytes, size, passes, up, hw.scale_up_latency_s);
    }
    let k = members_per_domain(size, stride, hw.scale_up_domain);
    return ring_s(bytes, size, passes, min(up, k * scale_out_bandwidth(hw)), hw.scale_out_latency_s);
}

fn all_reduce_s(hw: GpuAccelerator, bytes: f32, size: f32, stride: f32) -> f32 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    let flat = flat_ring_s(hw, bytes, size, stride, 2.0);
    if !crosses_domain(size, stride, hw) {
        return flat;
    }
    let k = members_per_domain(size, stride, hw.scale_up_domain);
    let hierarchical = ring_s(bytes, k, 2.0, scale_up_bandwidth(hw), hw.scale_up_latency_s)
        + ring_s(bytes / k, size / k, 2.0, scale_out_bandwidth(hw), hw.scale_out_latency_s);
    return min(flat, hierarchical);
}

fn all_gather_s(hw: GpuAccelerator, bytes: f32, size: f32, stride: f32) -> f32 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    return flat_ring_s(hw, bytes, size, stride, 1.0);
}

fn all_to_all_s(hw: GpuAccelerator, bytes: f32, size: f32, stride: f32) -> f32 {
    if size <= 1.0 || bytes <= 0.0 {
        return 0.0;
    }
    let k = members_per_domain(size, stride, hw.scale_up_domain);
    let inside = bytes * (k - 1.0) / size / scale_up_bandwidth(hw);
    let outside = bytes * (size - k) / size / scale_out_bandwidth(hw);
    let latency = select(hw.scale_up_latency_s, hw.scale_out_latency_s, k < size);
    return max(inside, outside) + (size - 1.0) * latency;
}

fn point_to_point_s(hw: GpuAccelerator, bytes: f32, across_domains: bool) -> f32 {
    if across_domains {
        return bytes / scale_out_bandwidth(hw) + hw.scale_out_latency_s;
    }
    return bytes / scale_up_bandwidth(hw) + hw.scale_up_latency_s;
}
