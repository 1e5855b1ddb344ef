//! Adapter selection and device creation.
//!
//! A hardware GPU is preferred (discrete, then integrated, then virtual), then anything else, with Mesa's
//! lavapipe (a CPU adapter) last. `NABLA_ADAPTER` overrides the choice: an index into the list that
//! [`list_adapters`] prints, or a case-insensitive part of an adapter's name (e.g. `llvmpipe`).
//! `WGPU_BACKEND` (wgpu's own variable) restricts the backends searched.

use crate::error::{Error, Result};

/// The environment variable that picks an adapter by index or by part of its name.
pub const ADAPTER_ENV: &str = "NABLA_ADAPTER";

/// An open device: what the GPU backend runs on.
pub struct GpuContext {
    /// The logical device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Name, backend, device type, driver and subgroup sizes of the adapter.
    pub info: wgpu::AdapterInfo,
    /// The limits granted: the adapter's own, not wgpu's conservative defaults.
    pub limits: wgpu::Limits,
    /// The optional features enabled (subgroups where offered).
    pub features: wgpu::Features,
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::PRIMARY;
    wgpu::Instance::new(desc.with_env())
}

/// Preference order of device types: lower is better.
fn rank(info: &wgpu::AdapterInfo) -> u8 {
    match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Every adapter wgpu finds, best first.
pub async fn adapters() -> Vec<wgpu::Adapter> {
    let mut adapters = instance().enumerate_adapters(wgpu::Backends::PRIMARY).await;
    adapters.sort_by_key(|a| rank(&a.get_info()));
    adapters
}

/// [`adapters`], waited for.
pub fn list_adapters() -> Vec<wgpu::Adapter> {
    pollster::block_on(adapters())
}

/// A one-line description of an adapter.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    let driver = if info.driver.is_empty() {
        String::new()
    } else {
        format!(", driver {} {}", info.driver, info.driver_info)
    };
    // Browsers may keep the name to themselves.
    let name = if info.name.is_empty() {
        "unnamed adapter"
    } else {
        &info.name
    };
    format!(
        "{name} ({:?}, {:?}{driver})",
        info.backend, info.device_type
    )
}

#[cfg(not(target_arch = "wasm32"))]
fn choose(adapters: Vec<wgpu::Adapter>, wanted: Option<&str>) -> Result<wgpu::Adapter> {
    let names: Vec<String> = adapters
        .iter()
        .enumerate()
        .map(|(i, a)| format!("  {i}: {}", describe(&a.get_info())))
        .collect();
    if adapters.is_empty() {
        return Err(Error::Device(
            "no GPU adapter found. Install a Vulkan driver (on Debian/Ubuntu, `apt-get install \
             mesa-vulkan-drivers libvulkan1` gives the software one, lavapipe), or use the CPU backend \
             (`--device cpu`)"
                .into(),
        ));
    }
    let Some(wanted) = wanted else {
        return Ok(adapters.into_iter().next().expect("checked non-empty"));
    };
    let pick = match wanted.parse::<usize>() {
        Ok(i) => adapters.into_iter().nth(i),
        Err(_) => {
            let w = wanted.to_lowercase();
            adapters
                .into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&w))
        }
    };
    pick.ok_or_else(|| {
        Error::Device(format!(
            "{ADAPTER_ENV}={wanted} matches no adapter; the adapters are:\n{}",
            names.join("\n")
        ))
    })
}

impl GpuContext {
    /// [`GpuContext::open`], waited for (not in a browser, which cannot block).
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::open())
    }

    /// Opens the preferred adapter (or the one `NABLA_ADAPTER` names) with its full limits.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn open() -> Result<Self> {
        let wanted = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
        Self::with_adapter(choose(adapters().await, wanted.as_deref())?).await
    }

    /// [`GpuContext::open`] for the replica with local rank `local_rank` of a data-parallel run: on a
    /// machine with several hardware GPUs, replica `r` takes GPU `r mod count`, counting those of the
    /// best GPU's kind and graphics API (so that one GPU seen through two APIs counts once).
    /// `NABLA_ADAPTER`, where set, overrides the choice as usual.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn open_for_replica(local_rank: usize) -> Result<Self> {
        if std::env::var(ADAPTER_ENV).is_ok_and(|s| !s.is_empty()) {
            return Self::open().await;
        }
        let all = adapters().await;
        let best = all.first().map(|a| a.get_info());
        // GPUs like the best one: the same API and kind (replicas on a discrete and an integrated GPU
        // would round differently, and wait for the slower).
        let mut hardware: Vec<wgpu::Adapter> = all
            .iter()
            .filter(|a| {
                let info = a.get_info();
                best.as_ref().is_some_and(|best| {
                    info.device_type != wgpu::DeviceType::Cpu
                        && info.backend == best.backend
                        && info.device_type == best.device_type
                })
            })
            .cloned()
            .collect();
        if hardware.len() <= 1 {
            return Self::with_adapter(choose(all, None)?).await;
        }
        let pick = local_rank % hardware.len();
        Self::with_adapter(hardware.swap_remove(pick)).await
    }

    /// Opens the browser's high-performance WebGPU adapter with its full limits.
    #[cfg(target_arch = "wasm32")]
    pub async fn open() -> Result<Self> {
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        let adapter = instance().request_adapter(&options).await.map_err(|e| {
            Error::Device(format!(
                "this browser offers no WebGPU adapter ({e}). WebGPU is on by default in Chrome and \
                 Edge 113+ and Safari 26+; Firefox enables it with dom.webgpu.enabled, Chromium on \
                 Linux with --enable-unsafe-webgpu"
            ))
        })?;
        Self::with_adapter(adapter).await
    }

    /// Opens a device on `adapter`, asking for everything it offers that nabla can use.
    pub async fn with_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        let info = adapter.get_info();
        let limits = adapter.limits();
        let features = adapter.features() & wgpu::Features::SUBGROUP;
        let desc = wgpu::DeviceDescriptor {
            label: Some("nabla"),
            required_features: features,
            required_limits: limits.clone(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        };
        let (device, queue) = adapter
            .request_device(&desc)
            .await
            .map_err(|e| Error::Device(format!("could not open {}: {e}", describe(&info))))?;
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            features,
        })
    }

    /// True when the adapter is a CPU emulating a GPU (lavapipe, WARP, SwiftShader).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// True when subgroup operations are enabled and every subgroup has exactly `size` lanes.
    pub fn subgroups_of(&self, size: u32) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
            && self.info.subgroup_min_size == size
            && self.info.subgroup_max_size == size
    }
}
