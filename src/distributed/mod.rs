//! Data-parallel training: one replica of the model per process, each taking its own share of every
//! batch, with the gradients averaged across replicas before each update (PyTorch's
//! DistributedDataParallel, over MPI rather than a protocol of our own).
//!
//! [`Collective`] is the seam: the few operations replicas need (rank, size, sum-all-reduce, broadcast,
//! barrier), implemented by [`Solo`] for one process and, with the `mpi` feature, by
//! [`mpi::MpiCollective`]. [`Replicas`] builds the model-level steps on it: start every replica from
//! rank 0's parameters, average the gradients, average batch norm's running statistics, and check
//! that every rank was given the same options. Buffers travel through the host, so every backend (a
//! wgpu device or the CPU) takes part the same way.

#[cfg(feature = "mpi")]
pub mod mpi;

use std::cell::{Cell, RefCell};
use std::hash::{DefaultHasher, Hasher};

use web_time::Instant;

use crate::backend::{Backend, Shaped};
use crate::error::{Error, Result};
use crate::model::Model;

/// The collective operations of a group of processes that train one model together.
pub trait Collective {
    /// This process's index in the group, from 0.
    fn rank(&self) -> usize;
    /// Processes in the group.
    fn size(&self) -> usize;
    /// This process's index among the group's processes on the same machine (which GPU it takes).
    fn local_rank(&self) -> usize;
    /// Replaces `values` on every rank with their element-wise sum over the ranks. Every rank receives
    /// the same bits.
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()>;
    /// Replaces `values` on every rank with rank 0's (the same length on every rank).
    fn broadcast(&self, values: &mut [f32]) -> Result<()>;
    /// Replaces `bytes` on every rank with rank 0's, whatever its length.
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) -> Result<()>;
    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;
    /// Ends this process, and every other rank of the group with it, with exit status `code`: what a
    /// rank does after an error, so that no other rank waits for it.
    fn abort(&self, code: i32) -> !;
}

/// A group of one: training as a single process, where every collective is the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn local_rank(&self) -> usize {
        0
    }
    fn all_reduce_sum(&self, _values: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn broadcast(&self, _values: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn broadcast_bytes(&self, _bytes: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// This process's place among the model's replicas, with the model-level steps that keep them in
/// step, and the time spent averaging gradients.
pub struct Replicas {
    comm: Box<dyn Collective>,
    // Every gradient, end to end: kept from step to step, so that no step allocates it again.
    flat: RefCell<Vec<f32>>,
    sync_seconds: Cell<f64>,
    sync_bytes: Cell<u64>,
    syncs: Cell<u64>,
}

impl Replicas {
    /// One process training alone.
    pub fn solo() -> Self {
        Self::new(Box::new(Solo))
    }

    /// Replicas that communicate through `comm`.
    pub fn new(comm: Box<dyn Collective>) -> Self {
        Replicas {
            comm,
            flat: RefCell::new(Vec::new()),
            sync_seconds: Cell::new(0.0),
            sync_bytes: Cell::new(0),
            syncs: Cell::new(0),
        }
    }

    /// The collective underneath.
    pub fn comm(&self) -> &dyn Collective {
        &*self.comm
    }

    /// This replica's rank.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// Replicas in all.
    pub fn size(&self) -> usize {
        self.comm.size()
    }

    /// True for the replica that writes checkpoints, metrics and progress (rank 0).
    pub fn leads(&self) -> bool {
        self.rank() == 0
    }

    /// Refuses to go on unless every rank holds the same `value` (their command lines, say), so that
    /// every rank stops with the same error rather than waiting on the others.
    pub fn agree(&self, what: &str, value: &[u8]) -> Result<()> {
        match self.ranks_differing(value)? {
            0 => Ok(()),
            n => Err(Error::Invalid(format!(
                "{n} of the {} ranks were given {what} different from rank 0's; every rank must be \
                 started with the same ones",
                self.size()
            ))),
        }
    }

    /// How many ranks hold a `value` other than rank 0's: each compares rank 0's with its own, and all
    /// learn the count.
    fn ranks_differing(&self, value: &[u8]) -> Result<usize> {
        if self.size() == 1 {
            return Ok(0);
        }
        let mut leader = value.to_vec();
        self.comm.broadcast_bytes(&mut leader)?;
        let mut differs = [if leader == value { 0.0 } else { 1.0 }];
        self.comm.all_reduce_sum(&mut differs)?;
        Ok(differs[0] as usize)
    }

    /// Fails unless every replica's parameters hold the same bits as rank 0's: averaged gradients keep
    /// them so, unless something (an all-reduce that hands ranks different roundings, a replica that
    /// skipped the averaging) broke the lockstep.
    pub async fn check_in_step<B: Backend>(&self, b: &B, model: &Model<B>) -> Result<()> {
        if self.size() == 1 {
            return Ok(());
        }
        // A digest of the parameters' bits: equal models give equal digests, and any drift shows.
        let mut digest = DefaultHasher::new();
        for p in model.params() {
            digest.write(bytemuck::cast_slice(&b.read_async(&p.value).await?));
        }
        match self.ranks_differing(&digest.finish().to_le_bytes())? {
            0 => Ok(()),
            n => Err(Error::Invalid(format!(
                "the parameters of {n} of the {} replicas drifted from rank 0's: the replicas no \
                 longer applied the same updates (did the MPI library's all-reduce give ranks \
                 different sums?)",
                self.size()
            ))),
        }
    }

    /// Overwrites every replica's parameters, optimizer state and running statistics with rank 0's, so
    /// that all start from the same model.
    pub async fn broadcast_model<B: Backend>(&self, b: &B, model: &mut Model<B>) -> Result<()> {
        if self.size() == 1 {
            return Ok(());
        }
        for p in model.params_mut() {
            broadcast_tensor(b, self.comm(), &mut p.value).await?;
            for s in p.state_mut() {
                broadcast_tensor(b, self.comm(), s).await?;
            }
        }
        for t in model.running_statistics_mut() {
            broadcast_tensor(b, self.comm(), t).await?;
        }
        Ok(())
    }

    /// Replaces every replica's gradients with their mean over the replicas: one flat buffer of all the
    /// model's gradients, summed by one all-reduce and divided by the number of replicas.
    pub async fn average_gradients<B: Backend>(&self, b: &B, model: &mut Model<B>) -> Result<()> {
        if self.size() == 1 {
            return Ok(());
        }
        let started = Instant::now();
        // Taken out for the step (no borrow is held across the reads' awaits) and put back after.
        let mut flat = std::mem::take(&mut *self.flat.borrow_mut());
        let len = model.params().map(|p| p.grad.rows() * p.grad.cols()).sum();
        flat.resize(len, 0.0);
        let mut rest = &mut flat[..];
        for p in model.params() {
            let (mine, after) = rest.split_at_mut(p.grad.rows() * p.grad.cols());
            b.read_into_async(&p.grad, mine).await?;
            rest = after;
        }
        self.comm.all_reduce_sum(&mut flat)?;
        let n = self.size() as f32;
        flat.iter_mut().for_each(|g| *g /= n);
        let mut rest = &flat[..];
        for p in model.params_mut() {
            let (mine, after) = rest.split_at(p.grad.rows() * p.grad.cols());
            b.write(&mut p.grad, mine)?;
            rest = after;
        }
        self.sync_seconds
            .set(self.sync_seconds.get() + started.elapsed().as_secs_f64());
        self.sync_bytes
            .set(self.sync_bytes.get() + (flat.len() * 4) as u64);
        self.syncs.set(self.syncs.get() + 1);
        *self.flat.borrow_mut() = flat;
        Ok(())
    }

    /// Replaces every replica's batch norm running statistics (each gathered from its own share of the
    /// batches) with their mean over the replicas.
    pub async fn average_running_statistics<B: Backend>(
        &self,
        b: &B,
        model: &mut Model<B>,
    ) -> Result<()> {
        if self.size() == 1 {
            return Ok(());
        }
        let n = self.size() as f32;
        for t in model.running_statistics_mut() {
            let mut values = b.read_async(t).await?;
            self.comm.all_reduce_sum(&mut values)?;
            values.iter_mut().for_each(|v| *v /= n);
            b.write(t, &values)?;
        }
        Ok(())
    }

    /// Seconds spent averaging gradients so far (device readback, all-reduce and write-back), the bytes
    /// all-reduced, and the number of averagings (steps).
    pub fn gradient_traffic(&self) -> (f64, u64, u64) {
        (
            self.sync_seconds.get(),
            self.sync_bytes.get(),
            self.syncs.get(),
        )
    }
}

async fn broadcast_tensor<B: Backend>(
    b: &B,
    comm: &dyn Collective,
    t: &mut B::Tensor,
) -> Result<()> {
    let mut values = b.read_async(t).await?;
    comm.broadcast(&mut values)?;
    b.write(t, &values)
}

/// Variables that launchers set in every process they start, holding the number of processes: Open
/// MPI's `mpirun`, PMI (MPICH's Hydra, Slurm's `srun --mpi=pmi2`) and a Slurm job step (`srun`; not
/// `SLURM_NTASKS`, which a whole batch script sees).
const LAUNCHER_SIZE_VARIABLES: [&str; 3] =
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"];

/// The number of processes an MPI launcher started alongside this one (`None` when none did, or it
/// started just this one).
pub fn launched_processes() -> Option<usize> {
    LAUNCHER_SIZE_VARIABLES
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
        .filter(|&n| n > 1)
}

/// The seed that rank `rank` keys its dropout masks by, from the run's `seed`: rank 0 keeps the seed (a
/// single process draws what it always drew), the others mix their rank in, so that no two replicas
/// drop the same units of their different samples.
pub fn replica_seed(seed: u64, rank: usize) -> u64 {
    if rank == 0 {
        seed
    } else {
        // An odd constant (2⁶⁴/φ) spreads ranks over the seed space.
        seed ^ (rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}
