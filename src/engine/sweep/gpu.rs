//! The GPU engine: WGSL compute shaders through wgpu (Vulkan, Metal, DX12, and GL where it
//! suffices). Twin of [`super::cpu`]; the shaders are `shaders/*.wgsl`.
//!
//! Layouts are not uploaded: the host uploads the model, the accelerator table and the axes, then
//! streams batches of the index space. Each batch runs two kernels: `profile_main` computes one
//! profile per set of per-layer knobs the batch touches, `sweep_main` decodes one layout per
//! invocation from its 64-bit index, prices it, counts its outcome and lets each workgroup report
//! its best `k` below the host's current threshold. The host merges the reports into the global
//! top-k, so readback stays small and host and device memory stay bounded however large the space.
//!
//! Batch sizes follow the adapter's limits (storage binding size, workgroups per dimension). A
//! lost device or a failed batch stops the GPU where it was; the driver finishes on the CPU.

use super::gpu_types::{
    gpu_accelerator, gpu_axes, gpu_model, gpu_stack, gpu_training, GpuAccelerator, GpuBatch, GpuHit,
    GpuMetrics, GpuProfile,
};
use super::{cpu, Partial, Ranked, TopK};
use crate::engine::search::{SearchSpace, PROFILE_AXES};
use bytemuck::Zeroable;
use serde::Serialize;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wgpu::util::DeviceExt;

/// The shaders, concatenated in dependency order (WGSL has no includes).
pub const SHADER_SOURCE: &str = concat!(
    include_str!("../../../shaders/model.wgsl"),
    include_str!("../../../shaders/flops.wgsl"),
    include_str!("../../../shaders/compute.wgsl"),
    include_str!("../../../shaders/comm.wgsl"),
    include_str!("../../../shaders/step.wgsl"),
    include_str!("../../../shaders/memory.wgsl"),
    include_str!("../../../shaders/profile.wgsl"),
    include_str!("../../../shaders/stage.wgsl"),
    include_str!("../../../shaders/run.wgsl"),
    include_str!("../../../shaders/sweep.wgsl"),
);

/// Invocations per workgroup of `sweep_main` and of the small kernels.
const WORKGROUP: u32 = 256;
const SMALL_WORKGROUP: u32 = 64;
/// Hits a batch may report before it is priced again on the CPU.
const HIT_CAPACITY: u64 = 1 << 20;
/// Storage buffers the shaders bind (one more binding is the uniform batch).
const STORAGE_BUFFERS: u32 = 11;

/// What became of a layout, as the shaders count it: `counters[code]` counts the outcome `code`
/// (`OUTCOME_*` in `shaders/sweep.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Valid and fits: ranked.
    Valid = 0,
    Degrees = 1,
    Layout = 2,
    Dtype = 3,
    NoFit = 4,
    Stack = 5,
    /// Skipped unseen: its block's bound could not beat the running threshold.
    Pruned = 6,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Valid,
        Outcome::Degrees,
        Outcome::Layout,
        Outcome::Dtype,
        Outcome::NoFit,
        Outcome::Stack,
        Outcome::Pruned,
    ];
    /// The code the shaders use (and its counter slot).
    pub fn code(self) -> u32 {
        self as u32
    }
    /// The outcome of a code, if it is one.
    pub fn from_code(code: u32) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.code() == code)
    }
}

/// The objective of a layout that is not ranked, standing for infinity in f32 (the shaders'
/// NOT_RANKED): no objective reaches it.
pub const NOT_RANKED: f32 = 3.0e38;

/// Relative margin above the k-th best objective below which a layout is still reported
/// (`THRESHOLD_MARGIN` in the shaders): f32 near-ties reach the host, which ranks them in order.
pub const THRESHOLD_MARGIN: f64 = 1e-5;

/// The counter slot of the hits reported (`HITS_SLOT` in `shaders/sweep.wgsl`).
pub const HITS_SLOT: usize = 7;
/// The counter slot of the running threshold (`THRESHOLD_SLOT` in `shaders/sweep.wgsl`).
pub const THRESHOLD_SLOT: usize = 8;
/// Counter slots: one per outcome, the hits, the threshold (`COUNTER_SLOTS` in the shaders).
pub const COUNTER_SLOTS: usize = 9;

/// An adapter as `clustersweep adapters` reports it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub shader_f64: bool,
    pub subgroups: bool,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_storage_size: u32,
    /// Whether the sweep can run on it.
    pub usable: bool,
}

/// The wgpu instance, with the backends `WGPU_BACKEND` allows.
pub fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

fn usable(a: &wgpu::Adapter) -> bool {
    let l = a.limits();
    l.max_storage_buffers_per_shader_stage >= STORAGE_BUFFERS
        && l.max_compute_invocations_per_workgroup >= WORKGROUP
        && l.max_compute_workgroup_size_x >= WORKGROUP
        && l.max_compute_workgroup_storage_size >= 3 * 4 * WORKGROUP + 64
}

fn report(a: &wgpu::Adapter) -> AdapterReport {
    let info = a.get_info();
    let l = a.limits();
    let f = a.features();
    AdapterReport {
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        shader_f64: f.contains(wgpu::Features::SHADER_F64),
        subgroups: f.contains(wgpu::Features::SUBGROUP),
        max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
        max_buffer_size: l.max_buffer_size,
        max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
        max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
        max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
        max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
        usable: usable(a),
    }
}

/// Every adapter the instance sees, with its limits.
pub fn adapter_reports() -> Vec<AdapterReport> {
    let instance = instance();
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(report)
        .collect()
}

/// The usable adapters, best first: those matching `WGPU_ADAPTER_NAME` (a case-insensitive
/// substring) when it is set; discrete before integrated before virtual before CPU (reversed for
/// integrated and discrete by `WGPU_POWER_PREF=low`); native APIs before GL.
pub fn select_adapters() -> Result<Vec<wgpu::Adapter>, String> {
    // wgpu ignores names it does not know, which left "no usable GPU adapter" unexplained.
    if let Ok(value) = std::env::var("WGPU_BACKEND") {
        if wgpu::Backends::from_comma_list(&value).is_empty() {
            return Err(format!(
                "WGPU_BACKEND={value} names no backend wgpu knows: use vulkan, metal, dx12 or gl (comma-separated), or unset it"
            ));
        }
    }
    let instance = instance();
    let mut adapters: Vec<wgpu::Adapter> =
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
            .into_iter()
            .filter(usable)
            .collect();
    if let Ok(name) = std::env::var("WGPU_ADAPTER_NAME") {
        let wanted = name.to_lowercase();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&wanted));
        if adapters.is_empty() {
            return Err(format!(
                "WGPU_ADAPTER_NAME={name} matches no usable adapter (see `clustersweep adapters`)"
            ));
        }
    }
    let low_power = wgpu::PowerPreference::from_env() == Some(wgpu::PowerPreference::LowPower);
    let rank = |a: &wgpu::Adapter| {
        let info = a.get_info();
        let device = match info.device_type {
            wgpu::DeviceType::DiscreteGpu if low_power => 1,
            wgpu::DeviceType::IntegratedGpu if low_power => 0,
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        };
        let api = if info.backend == wgpu::Backend::Gl { 1 } else { 0 };
        (device, api)
    };
    adapters.sort_by_key(rank);
    if adapters.is_empty() {
        return Err("no usable GPU adapter (see `clustersweep adapters`)".into());
    }
    Ok(adapters)
}

/// Where a GPU sweep's time went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct GpuTimings {
    /// Submitting the kernels and waiting for them (the GPU's work).
    pub gpu_s: f64,
    /// Copying the reported layouts back.
    pub readback_s: f64,
    /// Merging reports into the top-k on the host.
    pub host_s: f64,
}

/// The order-preserving u32 key of an f32 (twin of `float_key` in `shaders/sweep.wgsl`).
pub fn float_key(x: f32) -> u32 {
    let bits = x.to_bits();
    if x >= 0.0 {
        bits | 0x8000_0000
    } else {
        !bits
    }
}

/// Why the GPU stopped, and how far it got.
#[derive(Debug)]
pub struct GpuFailure {
    /// Indices `[range.start, completed)` are evaluated and in `partial` (boxed: a failure is
    /// rare, and the result that carries it stays small).
    pub completed: u64,
    pub partial: Box<Partial>,
    pub message: String,
}

/// An open device with the sweep's pipelines.
pub struct GpuEngine {
    pub info: wgpu::AdapterInfo,
    device: wgpu::Device,
    queue: wgpu::Queue,
    layout: wgpu::BindGroupLayout,
    profile_pipeline: wgpu::ComputePipeline,
    sweep_pipeline: wgpu::ComputePipeline,
    evaluate_profile_pipeline: wgpu::ComputePipeline,
    evaluate_pipeline: wgpu::ComputePipeline,
    limits: wgpu::Limits,
    lost: Arc<AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
}

/// The buffers of one space.
struct SpaceBuffers {
    bind_group: wgpu::BindGroup,
    batch: wgpu::Buffer,
    counters: wgpu::Buffer,
    hits: wgpu::Buffer,
    eval_out: wgpu::Buffer,
    profiles_capacity: u64,
    hits_capacity: u64,
}

fn eval_indices_len(buffer: &wgpu::Buffer) -> u64 {
    buffer.size() / 8
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl GpuEngine {
    /// Open `adapter` and build the pipelines.
    pub fn new(adapter: &wgpu::Adapter) -> Result<GpuEngine, String> {
        let info = adapter.get_info();
        // The adapter's own limits: wgpu's defaults cap storage bindings at 128 MiB.
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("clustersweep"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| format!("{}: cannot open the device: {e}", info.name))?;
        let lost = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        {
            let lost = lost.clone();
            let error = error.clone();
            device.set_device_lost_callback(move |reason, message| {
                lost.store(true, Ordering::SeqCst);
                *error.lock().expect("error lock") = Some(format!("device lost ({reason:?}): {message}"));
            });
        }
        {
            // wgpu's default handler panics; record the error and let the sweep fall back.
            let lost = lost.clone();
            let error = error.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                lost.store(true, Ordering::SeqCst);
                *error.lock().expect("error lock") = Some(e.to_string());
            }));
        }
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("clustersweep model"),
            source: wgpu::ShaderSource::Wgsl(SHADER_SOURCE.into()),
        });
        let entries = [
            storage_entry(0, true),
            storage_entry(1, true),
            storage_entry(2, true),
            storage_entry(3, true),
            storage_entry(4, true),
            wgpu::BindGroupLayoutEntry {
                binding: 5,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            storage_entry(6, false),
            storage_entry(7, false),
            storage_entry(8, false),
            storage_entry(9, true),
            storage_entry(10, false),
            storage_entry(11, true),
        ];
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("clustersweep bindings"),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("clustersweep pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = |entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let engine = GpuEngine {
            profile_pipeline: pipeline("profile_main"),
            sweep_pipeline: pipeline("sweep_main"),
            evaluate_profile_pipeline: pipeline("evaluate_profile_main"),
            evaluate_pipeline: pipeline("evaluate_main"),
            info,
            device,
            queue,
            layout,
            limits,
            lost,
            error,
        };
        engine.check("building the pipelines")?;
        Ok(engine)
    }

    /// The adapter in words.
    pub fn name(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    fn check(&self, doing: &str) -> Result<(), String> {
        if self.lost.load(Ordering::SeqCst) {
            let message = self.error.lock().expect("error lock").clone().unwrap_or_default();
            return Err(format!("{} failed while {doing}: {message}", self.info.name));
        }
        Ok(())
    }

    /// Layouts per batch: as many as the workgroup grid and the profile buffer allow, fewer on a
    /// software adapter so that progress and fallback stay fine-grained.
    fn batch_layouts(&self, space: &SearchSpace) -> u64 {
        let grid = self.limits.max_compute_workgroups_per_dimension as u64;
        let by_grid = grid * grid.min(1024) * WORKGROUP as u64;
        let binding = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        let profile_slots = (binding / std::mem::size_of::<GpuProfile>() as u64).min(1 << 22);
        let inner = space.inner_size();
        let by_profiles = profile_slots.saturating_sub(2).max(1) * inner;
        let preferred: u64 = if self.info.device_type == wgpu::DeviceType::Cpu {
            1 << 21
        } else {
            1 << 27
        };
        preferred
            .min(by_grid)
            .min(by_profiles)
            .min(u32::MAX as u64)
            .max(1)
    }

    /// The buffers of a dispatch over `space`, its accelerator table `accelerators` (the space's
    /// own, or several draws' stacked: see `evaluate_draws`).
    fn buffers(
        &self,
        space: &SearchSpace,
        accelerators: &[GpuAccelerator],
        eval_indices: &[[u32; 2]],
        profiles_capacity: u64,
        hits_capacity: u64,
    ) -> SpaceBuffers {
        let d = &self.device;
        let init = |label: &str, contents: &[u8], usage: wgpu::BufferUsages| {
            d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE;
        let (axes, values) = gpu_axes(space);
        let stacks: Vec<_> = space.stacks.iter().map(|st| gpu_stack(&st.training)).collect();
        let model = init("model", bytemuck::bytes_of(&gpu_model(&space.model)), storage);
        let training = init("training", bytemuck::bytes_of(&gpu_training(space)), storage);
        let table = init("accelerators", bytemuck::cast_slice(accelerators), storage);
        let axes = init("axes", bytemuck::bytes_of(&axes), storage);
        let values = init("axis values", bytemuck::cast_slice(&values), storage);
        let stack_table = init("stacks", bytemuck::cast_slice(&stacks), storage);
        let batch = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("batch"),
            size: std::mem::size_of::<GpuBatch>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let sized = |label: &str, size: u64, usage: wgpu::BufferUsages| {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(16),
                usage,
                mapped_at_creation: false,
            })
        };
        let profiles = sized(
            "profiles",
            profiles_capacity * std::mem::size_of::<GpuProfile>() as u64,
            storage,
        );
        let counters = sized(
            "counters",
            (COUNTER_SLOTS * 4) as u64,
            storage | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        );
        let hits = sized(
            "hits",
            hits_capacity * std::mem::size_of::<GpuHit>() as u64,
            storage | wgpu::BufferUsages::COPY_SRC,
        );
        let eval_indices = if eval_indices.is_empty() {
            sized("eval indices", 16, storage)
        } else {
            init("eval indices", bytemuck::cast_slice(eval_indices), storage)
        };
        let eval_out = sized(
            "eval out",
            eval_indices_len(&eval_indices) * std::mem::size_of::<GpuMetrics>() as u64,
            storage | wgpu::BufferUsages::COPY_SRC,
        );
        let bind_group = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("clustersweep"),
            layout: &self.layout,
            entries: &[
                (0, &model),
                (1, &training),
                (2, &table),
                (3, &axes),
                (4, &values),
                (5, &batch),
                (6, &profiles),
                (7, &counters),
                (8, &hits),
                (9, &eval_indices),
                (10, &eval_out),
                (11, &stack_table),
            ]
            .map(|(binding, buffer)| wgpu::BindGroupEntry {
                binding,
                resource: buffer.as_entire_binding(),
            }),
        });
        SpaceBuffers {
            bind_group,
            batch,
            counters,
            hits,
            eval_out,
            profiles_capacity,
            hits_capacity,
        }
    }

    /// Copy `size` bytes from `source` at `offset` back to the host.
    fn read_back(
        &self,
        encoder: wgpu::CommandEncoder,
        source: &wgpu::Buffer,
        offset: u64,
        size: u64,
    ) -> Result<Vec<u8>, String> {
        let mut encoder = encoder;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: size.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(source, offset, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(..size);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| format!("{}: {e}", self.info.name))?;
        rx.recv()
            .map_err(|e| format!("{}: readback never completed: {e}", self.info.name))?
            .map_err(|e| format!("{}: readback failed: {e}", self.info.name))?;
        let bytes = slice
            .get_mapped_range()
            .map_err(|e| format!("{}: {e}", self.info.name))?
            .to_vec();
        staging.unmap();
        self.check("reading back")?;
        Ok(bytes)
    }

    /// Sweep `range` of the space: counts and the top `k`. On failure, what was done so far.
    /// With `prune`, a layout whose block's bound cannot beat the running threshold is skipped
    /// and counted as pruned (the same top k: the threshold is what a layout must beat to be
    /// reported at all).
    pub fn sweep(
        &self,
        space: &SearchSpace,
        range: Range<u64>,
        k: usize,
        prune: bool,
        progress: &(dyn Fn(u64, f64) + Sync),
    ) -> Result<(Partial, GpuTimings), GpuFailure> {
        let mut timings = GpuTimings::default();
        let inner = space.inner_size();
        let outer_total: u64 = space.radices()[..PROFILE_AXES].iter().product();
        let mut partial = Partial::new(k);
        let fail = |completed: u64, partial: Partial, message: String| GpuFailure {
            completed,
            partial: Box::new(partial),
            message,
        };
        if outer_total > u32::MAX as u64 {
            return Err(fail(
                range.start,
                partial,
                "more than 2^32 sets of per-layer knobs".into(),
            ));
        }
        let batch_layouts = self.batch_layouts(space);
        let k_wg = (k as u32).clamp(1, 64);
        let max_groups = batch_layouts.div_ceil(WORKGROUP as u64);
        let hits_capacity = (max_groups * k_wg as u64).min(HIT_CAPACITY);
        let profiles_capacity = batch_layouts / inner + 2;
        let b = self.buffers(
            space,
            &accelerator_table(space),
            &[],
            profiles_capacity,
            hits_capacity,
        );
        let mut start = range.start;
        // A first small batch sets a threshold before the large ones.
        let mut size = batch_layouts.min(1 << 16);
        // Fault injection for the fallback tests: fail after this many batches.
        let fault_after: Option<usize> = std::env::var("CLUSTERSWEEP_GPU_FAULT_AFTER")
            .ok()
            .and_then(|v| v.parse().ok());
        let mut batches = 0;
        while start < range.end {
            if let Err(message) = self.check("sweeping") {
                return Err(fail(start, partial, message));
            }
            if fault_after == Some(batches) {
                return Err(fail(
                    start,
                    partial,
                    "fault injected by CLUSTERSWEEP_GPU_FAULT_AFTER".into(),
                ));
            }
            batches += 1;
            let end = (start + size).min(range.end);
            let count = end - start;
            let outer_start = start / inner;
            let outer_count = (end - 1) / inner - outer_start + 1;
            debug_assert!(outer_count <= b.profiles_capacity);
            let groups = count.div_ceil(WORKGROUP as u64) as u32;
            let grid = self.limits.max_compute_workgroups_per_dimension;
            let (gx, gy) = if groups <= grid {
                (groups, 1)
            } else {
                (grid, groups.div_ceil(grid))
            };
            let threshold = partial.top.threshold();
            let threshold = if threshold.is_finite() {
                (threshold + threshold.abs() * THRESHOLD_MARGIN) as f32
            } else {
                NOT_RANKED
            };
            let params = GpuBatch {
                base_lo: start as u32,
                base_hi: (start >> 32) as u32,
                count: count as u32,
                k: k_wg,
                threshold,
                outer_start: outer_start as u32,
                outer_count: outer_count as u32,
                workgroups_x: gx,
                prune: u32::from(prune),
                eval_per_draw: 0,
                accelerators_per_draw: 0,
            };
            let clock = std::time::Instant::now();
            self.queue.write_buffer(&b.batch, 0, bytemuck::bytes_of(&params));
            // Counters start at zero; the running threshold at the host's.
            let mut initial = [0u32; COUNTER_SLOTS];
            initial[THRESHOLD_SLOT] = float_key(threshold);
            self.queue
                .write_buffer(&b.counters, 0, bytemuck::cast_slice(&initial));
            let mut encoder = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_bind_group(0, &b.bind_group, &[]);
                pass.set_pipeline(&self.profile_pipeline);
                pass.dispatch_workgroups((outer_count as u32).div_ceil(SMALL_WORKGROUP), 1, 1);
                pass.set_pipeline(&self.sweep_pipeline);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            let counter_bytes = match self.read_back(encoder, &b.counters, 0, (COUNTER_SLOTS * 4) as u64) {
                Ok(c) => c,
                Err(message) => return Err(fail(start, partial, message)),
            };
            let counters: &[u32] = bytemuck::cast_slice(&counter_bytes);
            let reported = counters[HITS_SLOT] as u64;
            timings.gpu_s += clock.elapsed().as_secs_f64();
            let mut batch = Partial::new(k);
            if reported > b.hits_capacity {
                // Too many for the buffer: price this batch on the CPU instead.
                batch = cpu::evaluate_range(space, start..end, k, prune);
            } else {
                let layouts = count;
                let count = |o: Outcome| counters[o.code() as usize] as u64;
                batch.counts.pruned = count(Outcome::Pruned);
                batch.counts.evaluated = layouts - batch.counts.pruned;
                batch.counts.valid = count(Outcome::Valid);
                batch.counts.invalid_degrees = count(Outcome::Degrees);
                batch.counts.invalid_layout = count(Outcome::Layout);
                batch.counts.invalid_dtype = count(Outcome::Dtype);
                batch.counts.did_not_fit = count(Outcome::NoFit);
                batch.counts.invalid_stack = count(Outcome::Stack);
                if reported > 0 {
                    let clock = std::time::Instant::now();
                    let bytes = reported * std::mem::size_of::<GpuHit>() as u64;
                    let encoder = self.device.create_command_encoder(&Default::default());
                    let data = match self.read_back(encoder, &b.hits, 0, bytes) {
                        Ok(d) => d,
                        Err(message) => return Err(fail(start, partial, message)),
                    };
                    timings.readback_s += clock.elapsed().as_secs_f64();
                    let clock = std::time::Instant::now();
                    let hits: &[GpuHit] = bytemuck::cast_slice(&data[..bytes as usize]);
                    let mut top = TopK::new(k);
                    for h in hits {
                        top.push(Ranked {
                            index: h.index_lo as u64 | (h.index_hi as u64) << 32,
                            objective: h.objective as f64,
                        });
                    }
                    batch.top = top;
                    timings.host_s += clock.elapsed().as_secs_f64();
                }
            }
            partial = partial.merge(batch);
            progress(count, partial.top.best().unwrap_or(f64::INFINITY));
            start = end;
            size = batch_layouts;
        }
        Ok((partial, timings))
    }

    /// Every metric of the layouts at `indices`, computed by the shaders (for the parity tests).
    pub fn evaluate(&self, space: &SearchSpace, indices: &[u64]) -> Result<Vec<GpuMetrics>, String> {
        Ok(self.evaluate_draws(&[space], indices)?.pop().unwrap_or_default())
    }

    /// Every metric of the layouts at `indices` in each of `spaces` (the same scenario resolved
    /// from several drawn catalogs), as one dispatch for as many draws as the device's limits
    /// allow: the draws' accelerator tables stacked, every other table the first's (a draw
    /// changes only what the accelerator table holds; spaces that differ elsewhere are refused).
    pub fn evaluate_draws(
        &self,
        spaces: &[&SearchSpace],
        indices: &[u64],
    ) -> Result<Vec<Vec<GpuMetrics>>, String> {
        let Some(first) = spaces.first() else {
            return Ok(vec![]);
        };
        if indices.is_empty() {
            return Ok(vec![vec![]; spaces.len()]);
        }
        let shared = shared_tables(first);
        if let Some(i) = spaces.iter().position(|s| shared_tables(s) != shared) {
            return Err(format!(
                "draw {i}'s space differs from the first beyond its accelerator table; price the draws one by one"
            ));
        }
        let per_draw = indices.len() as u64;
        let accelerators = first.accelerators.len() as u64;
        let binding = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        let entry_bytes = std::mem::size_of::<GpuMetrics>().max(std::mem::size_of::<GpuProfile>()) as u64;
        let by_buffers = (binding / (per_draw * entry_bytes))
            .min(binding / (accelerators * std::mem::size_of::<GpuAccelerator>() as u64).max(1));
        let by_grid =
            self.limits.max_compute_workgroups_per_dimension as u64 * SMALL_WORKGROUP as u64 / per_draw;
        if by_buffers.min(by_grid) == 0 {
            return Err(format!(
                "{per_draw} layouts per draw pass the adapter's limits for one dispatch; price fewer at a time"
            ));
        }
        let draws_per_dispatch = by_buffers.min(by_grid) as usize;
        let packed: Vec<[u32; 2]> = indices.iter().map(|i| [(i >> 32) as u32, *i as u32]).collect();
        let mut out = Vec::with_capacity(spaces.len());
        for chunk in spaces.chunks(draws_per_dispatch) {
            let table: Vec<GpuAccelerator> = chunk.iter().flat_map(|s| accelerator_table(s)).collect();
            let entries: Vec<[u32; 2]> = chunk.iter().flat_map(|_| packed.iter().copied()).collect();
            // One profile slot per entry (evaluate_profile_main fills them).
            let b = self.buffers(first, &table, &entries, entries.len() as u64, 1);
            let params = GpuBatch {
                eval_per_draw: per_draw as u32,
                accelerators_per_draw: accelerators as u32,
                ..GpuBatch::zeroed()
            };
            self.queue.write_buffer(&b.batch, 0, bytemuck::bytes_of(&params));
            let groups = (entries.len() as u32).div_ceil(SMALL_WORKGROUP);
            let mut encoder = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_bind_group(0, &b.bind_group, &[]);
                pass.set_pipeline(&self.evaluate_profile_pipeline);
                pass.dispatch_workgroups(groups, 1, 1);
                pass.set_pipeline(&self.evaluate_pipeline);
                pass.dispatch_workgroups(groups, 1, 1);
            }
            let size = entries.len() as u64 * std::mem::size_of::<GpuMetrics>() as u64;
            let data = self.read_back(encoder, &b.eval_out, 0, size)?;
            let metrics: &[GpuMetrics] = bytemuck::cast_slice(&data);
            out.extend(metrics.chunks(indices.len()).map(<[GpuMetrics]>::to_vec));
        }
        Ok(out)
    }
}

/// A space's accelerator table as the shaders read it.
fn accelerator_table(space: &SearchSpace) -> Vec<GpuAccelerator> {
    space.accelerators.iter().map(gpu_accelerator).collect()
}

/// Every table the shaders read of `space` but its accelerators' (and their count), as bytes:
/// the model, the training, the axes and their values, the stacks. Draws whose spaces give the
/// same can share one dispatch.
fn shared_tables(space: &SearchSpace) -> (usize, usize, Vec<u8>) {
    let (axes, values) = gpu_axes(space);
    let mut bytes = bytemuck::bytes_of(&gpu_model(&space.model)).to_vec();
    bytes.extend_from_slice(bytemuck::bytes_of(&gpu_training(space)));
    bytes.extend_from_slice(bytemuck::bytes_of(&axes));
    bytes.extend_from_slice(bytemuck::cast_slice(&values));
    for st in &space.stacks {
        bytes.extend_from_slice(bytemuck::bytes_of(&gpu_stack(&st.training)));
    }
    (space.accelerators.len(), values.len(), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_keys_order_like_the_floats() {
        let values = [-3.0e38f32, -2.5, -1e-9, -0.0, 0.0, 1e-9, 1.0, 2.5e5, 3.0e38];
        for w in values.windows(2) {
            assert!(float_key(w[0]) <= float_key(w[1]), "{} {}", w[0], w[1]);
        }
        assert!(float_key(1.0) < float_key(1.0000001));
    }
}
