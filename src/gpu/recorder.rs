//! Records dispatches and copies, and submits them together.
//!
//! Operations do not run when called: each appends its parameters to a host-side arena and a command to
//! a list. [`Recorder::flush`] writes the arena to its uniform buffer once, encodes every command into a
//! single compute pass (wgpu inserts the barriers between dependent dispatches) and submits once. A
//! training step is therefore one submission, and nothing is read back unless asked for.
//! Bind groups are cached by (kernel, buffers), so a step that reuses its buffers creates none.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use super::kernels::Kernel;
use crate::error::{Error, Result};

/// Uniform blocks reserved per submission; a longer sequence of operations is split into submissions.
const PARAM_SLOTS: usize = 4096;
/// Bind groups kept before the cache is emptied (it fills only when many short-lived buffers come and go).
const BIND_GROUP_CACHE_LIMIT: usize = 8192;
/// Most storage buffers any kernel binds.
pub const MAX_BUFFERS: usize = 7;

/// A storage buffer as an operation binds it: its unique id (for the bind group cache) and the buffer.
#[derive(Clone, Copy)]
pub struct Binding<'a> {
    /// Unique for the lifetime of the process.
    pub id: u64,
    /// The buffer, bound whole.
    pub buffer: &'a wgpu::Buffer,
}

enum Command {
    Dispatch {
        kernel: Rc<Kernel>,
        bind_group: wgpu::BindGroup,
        offset: u32,
        groups: [u32; 3],
    },
    Copy {
        from: wgpu::Buffer,
        to: wgpu::Buffer,
        bytes: u64,
    },
}

/// Ids of tensors dropped since the recorder last looked: their cached bind groups must go, or the cache
/// would keep their buffers alive (a run that allocates per epoch, evaluation say, would grow without
/// bound).
pub type Retired = Arc<Mutex<Vec<u64>>>;

/// Records that the buffer with `id` is gone.
pub fn retire(retired: &Retired, id: u64) {
    if let Ok(mut ids) = retired.lock() {
        ids.push(id);
    }
}

/// The pending work of a GPU backend.
pub struct Recorder {
    retired: Retired,
    params_buffer: wgpu::Buffer,
    params: Vec<u8>,
    slot: usize,
    commands: Vec<Command>,
    bind_groups: HashMap<(u32, [u64; MAX_BUFFERS]), wgpu::BindGroup>,
    staging: Option<wgpu::Buffer>,
    dispatches: u64,
}

impl Recorder {
    /// A recorder whose uniform slots honour the device's offset alignment.
    pub fn new(device: &wgpu::Device, limits: &wgpu::Limits) -> Self {
        let slot = limits.min_uniform_buffer_offset_alignment.max(64) as usize;
        let params_buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("nabla params"),
            size: (slot * PARAM_SLOTS) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Recorder {
            retired: Retired::default(),
            params_buffer,
            params: Vec::with_capacity(slot * PARAM_SLOTS),
            slot,
            commands: Vec::new(),
            bind_groups: HashMap::new(),
            staging: None,
            dispatches: 0,
        }
    }

    /// Where this recorder's tensors report their drop.
    pub fn retired(&self) -> Retired {
        self.retired.clone()
    }

    /// Drops the cached bind groups that bind a retired buffer (pending commands keep their own).
    fn forget_retired(&mut self) {
        let ids = match self.retired.lock() {
            Ok(mut ids) if !ids.is_empty() => std::mem::take(&mut *ids),
            _ => return,
        };
        self.bind_groups
            .retain(|key, _| !key.1.iter().any(|id| ids.contains(id)));
    }

    /// Appends a dispatch of `kernel` over `groups` workgroups with uniform `params` and `buffers`.
    pub fn dispatch(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        kernel: Rc<Kernel>,
        params: &[u32],
        buffers: &[Binding<'_>],
        groups: [u32; 3],
    ) {
        debug_assert_eq!(buffers.len(), kernel.spec.buffers.len());
        if self.params.len() + self.slot > self.params_buffer.size() as usize {
            self.flush(device, queue);
        }
        let offset = self.params.len() as u32;
        let words: &[u8] = bytemuck::cast_slice(params);
        self.params.extend_from_slice(words);
        self.params.resize(offset as usize + self.slot, 0);

        let mut key = (kernel.id, [0u64; MAX_BUFFERS]);
        for (k, b) in key.1.iter_mut().zip(buffers) {
            *k = b.id;
        }
        if self.bind_groups.len() >= BIND_GROUP_CACHE_LIMIT {
            self.bind_groups.clear();
        }
        let bind_group = self
            .bind_groups
            .entry(key)
            .or_insert_with(|| {
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &self.params_buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(kernel.spec.params_size),
                    }),
                }];
                for (i, b) in buffers.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry {
                        binding: kernel.spec.first_binding + i as u32,
                        resource: b.buffer.as_entire_binding(),
                    });
                }
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(kernel.spec.entry),
                    layout: &kernel.layout,
                    entries: &entries,
                })
            })
            .clone();
        self.commands.push(Command::Dispatch {
            kernel,
            bind_group,
            offset,
            groups,
        });
        self.dispatches += 1;
    }

    /// Dispatches recorded since the recorder was made.
    pub fn dispatches(&self) -> u64 {
        self.dispatches
    }

    /// Submits everything recorded so far.
    pub fn flush(&mut self, device: &wgpu::Device, queue: &wgpu::Queue) {
        self.forget_retired();
        if self.commands.is_empty() {
            return;
        }
        queue.write_buffer(&self.params_buffer, 0, &self.params);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("nabla step"),
        });
        let mut commands = self.commands.drain(..).peekable();
        while commands.peek().is_some() {
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                while let Some(Command::Dispatch { .. }) = commands.peek() {
                    let Some(Command::Dispatch {
                        kernel,
                        bind_group,
                        offset,
                        groups,
                    }) = commands.next()
                    else {
                        unreachable!("peeked a dispatch")
                    };
                    pass.set_pipeline(&kernel.pipeline);
                    pass.set_bind_group(0, &bind_group, &[offset]);
                    pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                }
            }
            while let Some(Command::Copy { .. }) = commands.peek() {
                let Some(Command::Copy { from, to, bytes }) = commands.next() else {
                    unreachable!("peeked a copy")
                };
                encoder.copy_buffer_to_buffer(&from, 0, &to, 0, bytes);
            }
        }
        queue.submit([encoder.finish()]);
        self.params.clear();
    }

    /// Runs all pending work and starts copying the first `bytes` of `buffer` back to the host; await
    /// [`Readback::finish`] for the bytes. Nothing here waits for the GPU.
    pub fn start_read(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        buffer: &wgpu::Buffer,
        bytes: u64,
    ) -> Readback {
        // A staging buffer serves one readback at a time: one still in flight keeps it, and the next
        // readback makes its own.
        let staging = match self.staging.take() {
            Some(s) if s.size() >= bytes => s,
            _ => device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("nabla readback"),
                size: bytes.next_power_of_two().max(256),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        if bytes > 0 {
            self.commands.push(Command::Copy {
                from: buffer.clone(),
                to: staging.clone(),
                bytes,
            });
            self.flush(device, queue);
            staging
                .slice(..bytes)
                .map_async(wgpu::MapMode::Read, move |r| {
                    let _ = sender.send(r);
                });
        } else {
            let _ = sender.send(Ok(()));
        }
        Readback {
            device: device.clone(),
            staging,
            bytes,
            receiver,
        }
    }

    /// Keeps `staging` for the next readback (the larger of it and the one kept).
    pub fn recycle(&mut self, staging: wgpu::Buffer) {
        if self
            .staging
            .as_ref()
            .is_none_or(|s| s.size() < staging.size())
        {
            self.staging = Some(staging);
        }
    }
}

/// A copy from the device to the host, under way.
pub struct Readback {
    device: wgpu::Device,
    staging: wgpu::Buffer,
    bytes: u64,
    receiver: futures_intrusive::channel::shared::OneshotReceiver<
        std::result::Result<(), wgpu::BufferAsyncError>,
    >,
}

impl Readback {
    /// Waits for the copy and returns its bytes with the staging buffer, unmapped for reuse.
    ///
    /// Natively the device is polled until the work is done (under `pollster` that blocks, as a
    /// command-line tool may); in a browser polling does nothing and the await yields to the event
    /// loop until the browser has mapped the buffer.
    pub async fn finish(self) -> Result<(Vec<u8>, wgpu::Buffer)> {
        if self.bytes == 0 {
            return Ok((Vec::new(), self.staging));
        }
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("waiting for the GPU failed: {e}")))?;
        match self.receiver.receive().await {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                return Err(Error::Device(format!("reading back a buffer failed: {e}")));
            }
            None => return Err(Error::Device("the GPU dropped a readback".into())),
        }
        let data = self
            .staging
            .slice(..self.bytes)
            .get_mapped_range()
            .map_err(|e| Error::Device(format!("mapping a readback buffer failed: {e}")))?
            .to_vec();
        self.staging.unmap();
        Ok((data, self.staging))
    }
}
