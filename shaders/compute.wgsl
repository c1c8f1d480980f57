// Twin: src/model/compute.rs. The roofline: seconds of one op on one accelerator.

const ATTENTION_HEAD_DIM_HALF: f32 = 25.0;

fn saturation(x: f32, half: f32) -> f32 {
    return x / (x + half);
}

fn gemm_efficiency(m: f32, n: f32, k: f32, hw: GpuAccelerator, dtype: u32) -> f32 {
    let half = hw.gemm_half_dim;
    let shape = saturation(m, half) * saturation(n, half) * saturation(k, half);
    let format = select(1.0, hw.low_precision_gemm, is_low_precision(dtype));
    return hw.gemm * format * shape;
}

fn memory_time_s(bytes: f32, hw: GpuAccelerator) -> f32 {
    return bytes / (hw.hbm_bytes_per_s * hw.memory);
}

fn gemm_time_s(m: f32, n: f32, k: f32, hw: GpuAccelerator, dtype: u32) -> f32 {
    let flops = 2.0 * m * n * k;
    let compute_s = flops / (peak(hw, dtype) * gemm_efficiency(m, n, k, hw, dtype));
    let bytes = (m * k + k * n) * gemm_input_bytes(dtype) + m * n * 2.0;
    return max(compute_s, memory_time_s(bytes, hw));
}

fn attention_time_s(flops: f32, hd: f32, q_tokens: f32, hw: GpuAccelerator, dtype: u32, kernel: u32) -> f32 {
    let shape = saturation(hd, ATTENTION_HEAD_DIM_HALF) * saturation(q_tokens, hw.gemm_half_dim);
    return flops / (peak(hw, activation_dtype(dtype)) * fused_attention(hw, kernel) * shape);
}
