//! The WGSL kernels: where each comes from, what it binds, and a cache that compiles each
//! (kernel, override constants) pair once.
//!
//! Every kernel binds a uniform block of parameters at binding 0 (with a dynamic offset into the
//! per-submission parameter arena) and then storage buffers at consecutive bindings from `first_binding`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

macro_rules! shader {
    ($($file:literal),+) => {
        concat!($(include_str!(concat!("../../shaders/", $file)), "\n"),+)
    };
}

const ACTIVATION: &str = shader!("activation.wgsl", "activation_fns.wgsl", "elementwise.wgsl");
const MATMUL_TILED: &str = shader!(
    "matmul_tiled.wgsl",
    "matmul_implicit.wgsl",
    "matmul_epilogue.wgsl",
    "activation_fns.wgsl"
);
const MATMUL_SUBGROUP: &str = shader!(
    "matmul_subgroup.wgsl",
    "matmul_implicit.wgsl",
    "matmul_epilogue.wgsl",
    "activation_fns.wgsl"
);
const SOFTMAX_LOSS: &str = shader!("softmax_loss.wgsl", "activation_fns.wgsl");
const BLAS: &str = shader!("blas.wgsl", "elementwise.wgsl");
const OPTIM: &str = shader!("optim.wgsl", "elementwise.wgsl");
const GATHER: &str = shader!("gather.wgsl", "elementwise.wgsl");
const GATHER_FLOATS_SRC: &str = shader!("gather_floats.wgsl");
const DROPOUT: &str = shader!("dropout.wgsl", "elementwise.wgsl");
const BATCH_NORM: &str = shader!("batch_norm.wgsl");
const RECURRENT: &str = shader!("recurrent.wgsl");
const WINDOW: &str = shader!("window.wgsl", "activation_fns.wgsl", "elementwise.wgsl");

/// How a kernel uses a storage buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}
use Access::{Read, ReadWrite};

/// One entry point of one WGSL module and its binding interface.
#[derive(Debug)]
pub struct KernelSpec {
    /// The WGSL source (with any appended helpers).
    pub source: &'static str,
    /// The entry point.
    pub entry: &'static str,
    /// Binding number of the first storage buffer.
    pub first_binding: u32,
    /// The storage buffers, in binding order.
    pub buffers: &'static [Access],
    /// Names of the `override` constants, in the order their values are passed.
    pub overrides: &'static [&'static str],
    /// Size in bytes of the uniform parameter block.
    pub params_size: u64,
}

macro_rules! kernel {
    ($name:ident, $src:expr, $entry:literal, $first:literal, [$($acc:expr),*], [$($ov:literal),*], $params:literal) => {
        #[doc = concat!("The `", $entry, "` kernel.")]
        pub static $name: KernelSpec = KernelSpec {
            source: $src,
            entry: $entry,
            first_binding: $first,
            buffers: &[$($acc),*],
            overrides: &[$($ov),*],
            params_size: $params,
        };
    };
}

kernel!(
    ACT_FORWARD,
    ACTIVATION,
    "forward",
    1,
    [Read, ReadWrite],
    ["ACT"],
    8
);
kernel!(
    ACT_BACKWARD,
    ACTIVATION,
    "backward",
    3,
    [Read, Read, ReadWrite],
    ["ACT"],
    8
);
kernel!(
    MATMUL_TILED_MAIN,
    MATMUL_TILED,
    "main",
    1,
    [Read, Read, Read, Read, Read, ReadWrite, Read],
    [
        "TRANS_A", "TRANS_B", "HAS_BIAS", "ACT", "GRAD", "SPLIT", "IMPLICIT"
    ],
    64
);
kernel!(
    MATMUL_REDUCE_SPLITS,
    MATMUL_TILED,
    "reduce_splits",
    5,
    [Read, ReadWrite, Read, Read],
    ["HAS_BIAS", "ACT", "GRAD"],
    64
);
kernel!(
    MATMUL_SUBGROUP_MAIN,
    MATMUL_SUBGROUP,
    "main",
    1,
    [Read, Read, Read, ReadWrite, Read, Read, Read],
    [
        "TRANS_A", "TRANS_B", "HAS_BIAS", "ACT", "GRAD", "IMPLICIT", "GROUPS"
    ],
    56
);
kernel!(
    SOFTMAX,
    SOFTMAX_LOSS,
    "softmax",
    1,
    [Read, ReadWrite],
    [],
    16
);
kernel!(
    SOFTMAX_XENT,
    SOFTMAX_LOSS,
    "softmax_cross_entropy",
    3,
    [Read, Read, ReadWrite, ReadWrite],
    [],
    16
);
kernel!(
    SIGMOID_BCE,
    SOFTMAX_LOSS,
    "sigmoid_binary_cross_entropy",
    7,
    [Read, Read, ReadWrite, ReadWrite],
    [],
    16
);
kernel!(
    MSE,
    SOFTMAX_LOSS,
    "mean_squared_error",
    7,
    [Read, Read, ReadWrite, ReadWrite],
    [],
    16
);
kernel!(
    TALLY,
    SOFTMAX_LOSS,
    "tally",
    11,
    [Read, Read, ReadWrite, Read],
    [],
    16
);
kernel!(AXPY, BLAS, "axpy", 1, [Read, ReadWrite], [], 16);
kernel!(SCALE, BLAS, "scale", 3, [ReadWrite], [], 16);
kernel!(
    SUM_SQUARES,
    BLAS,
    "sum_squares",
    6,
    [Read, ReadWrite],
    [],
    16
);
kernel!(CLIP, BLAS, "clip", 8, [Read, ReadWrite], [], 16);
kernel!(
    RECURRENT_FORWARD,
    RECURRENT,
    "forward",
    1,
    [
        Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite, ReadWrite
    ],
    ["CELL"],
    32
);
kernel!(
    RNN_BACKWARD,
    RECURRENT,
    "rnn_backward",
    1,
    [Read, Read, Read, ReadWrite, ReadWrite],
    [],
    32
);
kernel!(
    LSTM_BACKWARD,
    RECURRENT,
    "lstm_backward",
    1,
    [Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite],
    [],
    32
);
kernel!(
    GRU_BACKWARD,
    RECURRENT,
    "gru_backward",
    1,
    [
        Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite
    ],
    [],
    32
);
kernel!(
    COLUMN_SUMS,
    BLAS,
    "column_sums",
    4,
    [Read, ReadWrite],
    ["COLS", "PHASES"],
    16
);
kernel!(
    OPTIM_STEP,
    OPTIM,
    "step",
    1,
    [ReadWrite, Read, ReadWrite, ReadWrite],
    ["RULE", "NESTEROV"],
    32
);
kernel!(
    DROPOUT_MASK,
    DROPOUT,
    "dropout",
    1,
    [Read, ReadWrite],
    [],
    32
);
kernel!(
    BERNOULLI,
    DROPOUT,
    "bernoulli",
    1,
    [Read, ReadWrite],
    [],
    32
);
kernel!(
    BATCH_NORM_TRAIN,
    BATCH_NORM,
    "train",
    1,
    [Read, Read, ReadWrite, ReadWrite, ReadWrite],
    [],
    32
);
kernel!(
    BATCH_NORM_EVAL,
    BATCH_NORM,
    "eval",
    6,
    [Read, Read, Read, ReadWrite],
    [],
    32
);
kernel!(
    BATCH_NORM_BACKWARD,
    BATCH_NORM,
    "backward",
    10,
    [Read, Read, Read, Read, ReadWrite, ReadWrite],
    [],
    32
);
kernel!(
    GATHER_BATCH,
    GATHER,
    "gather",
    1,
    [Read, Read, Read, ReadWrite, ReadWrite],
    [],
    24
);
kernel!(
    GATHER_ROWS,
    GATHER,
    "gather_rows",
    1,
    [Read, Read, Read, ReadWrite, ReadWrite],
    [],
    24
);

kernel!(
    GATHER_FLOATS,
    GATHER_FLOATS_SRC,
    "gather_floats",
    1,
    [Read, Read, Read, ReadWrite, ReadWrite],
    [],
    20
);

kernel!(IM2COL, WINDOW, "im2col", 1, [Read, ReadWrite], [], 48);
kernel!(
    COL2IM,
    WINDOW,
    "col2im",
    3,
    [Read, Read, ReadWrite],
    ["ACT", "GRAD"],
    48
);
kernel!(
    FLIP_FILTERS,
    WINDOW,
    "flip_filters",
    6,
    [Read, ReadWrite],
    [],
    48
);
kernel!(
    PLANES_TO_ROWS,
    WINDOW,
    "planes_to_rows",
    9,
    [Read, ReadWrite],
    [],
    48
);
kernel!(
    MAX_POOL,
    WINDOW,
    "max_pool",
    11,
    [Read, ReadWrite, ReadWrite],
    ["ACT"],
    48
);
kernel!(
    MAX_POOL_BACKWARD,
    WINDOW,
    "max_pool_backward",
    14,
    [Read, Read, Read, ReadWrite],
    ["ACT", "GRAD"],
    48
);
kernel!(
    MAX_POOL_BACKWARD_TILES,
    WINDOW,
    "max_pool_backward_tiles",
    14,
    [Read, Read, Read, ReadWrite],
    ["ACT", "GRAD"],
    48
);
kernel!(
    AVG_POOL,
    WINDOW,
    "avg_pool",
    18,
    [Read, ReadWrite],
    ["ACT"],
    48
);
kernel!(
    AVG_POOL_BACKWARD,
    WINDOW,
    "avg_pool_backward",
    20,
    [Read, Read, ReadWrite],
    ["ACT", "GRAD"],
    48
);

/// Values of a kernel's override constants, in the order of [`KernelSpec::overrides`], zero past those
/// given.
pub type Overrides = [u32; 8];

/// A compiled kernel.
pub struct Kernel {
    /// The specification it was compiled from.
    pub spec: &'static KernelSpec,
    /// The compute pipeline.
    pub pipeline: wgpu::ComputePipeline,
    /// Its bind group layout.
    pub layout: wgpu::BindGroupLayout,
    /// A number unique among this cache's kernels (part of the bind group cache key).
    pub id: u32,
}

/// Compiles kernels on first use and keeps them.
#[derive(Default)]
pub struct KernelCache {
    modules: RefCell<HashMap<usize, wgpu::ShaderModule>>,
    kernels: RefCell<HashMap<(usize, Overrides), Rc<Kernel>>>,
}

impl KernelCache {
    /// The kernel `spec` with these override values, compiled on first request.
    pub fn get(
        &self,
        device: &wgpu::Device,
        spec: &'static KernelSpec,
        overrides: Overrides,
    ) -> Rc<Kernel> {
        let key = (spec as *const KernelSpec as usize, overrides);
        if let Some(k) = self.kernels.borrow().get(&key) {
            return k.clone();
        }
        let kernel = Rc::new(self.compile(device, spec, overrides));
        self.kernels.borrow_mut().insert(key, kernel.clone());
        kernel
    }

    fn compile(
        &self,
        device: &wgpu::Device,
        spec: &'static KernelSpec,
        overrides: Overrides,
    ) -> Kernel {
        let mut modules = self.modules.borrow_mut();
        let module = modules
            .entry(spec.source.as_ptr() as usize)
            .or_insert_with(|| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(spec.entry),
                    source: wgpu::ShaderSource::Wgsl(spec.source.into()),
                })
            });
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: wgpu::BufferSize::new(spec.params_size),
            },
            count: None,
        }];
        for (i, access) in spec.buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: spec.first_binding + i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: *access == Access::Read,
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(spec.entry),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(spec.entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let constants: Vec<(&str, f64)> = spec
            .overrides
            .iter()
            .zip(overrides)
            .map(|(name, v)| (*name, f64::from(v)))
            .collect();
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(spec.entry),
            layout: Some(&pipeline_layout),
            module,
            entry_point: Some(spec.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        Kernel {
            spec,
            pipeline,
            layout,
            id: self.kernels.borrow().len() as u32,
        }
    }
}
