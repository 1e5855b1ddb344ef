//! [`Collective`] over MPI (the `mpi` feature): the same code path from two processes under `mpirun`
//! on one machine to `srun` across a cluster. Only the main thread calls MPI (the CPU backend's worker
//! threads never do), so MPI is initialised at the "funneled" threading level.
//!
//! MPI's default error handler aborts the whole job on a communication error, and a rank that exits
//! without finalising (an error, a signal) makes the launcher end every other rank: no rank waits for
//! ever on one that has gone.

use std::cell::RefCell;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

use super::Collective;
use crate::error::{Error, Result};

/// The processes of `MPI_COMM_WORLD`. MPI is finalised when this is dropped.
pub struct MpiCollective {
    world: SimpleCommunicator,
    local_rank: usize,
    // The all-reduce's send buffer, kept between calls (MPI reads it while writing the result).
    send: RefCell<Vec<f32>>,
    // Declared last: dropped (MPI_Finalize) after the communicators.
    _universe: Universe,
}

impl MpiCollective {
    /// Initialises MPI. It can be done once per process; a second call is refused.
    ///
    /// From then on a panic ends the process at once, after its message: unwinding would finalise MPI
    /// on the way out, which waits for ranks that are themselves waiting for this one. A rank that
    /// exits without finalising makes the launcher end the others.
    pub fn init() -> Result<Self> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| Error::Device("MPI was already initialised in this process".into()))?;
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            std::process::exit(101);
        }));
        let world = universe.world();
        let local_rank = world.split_shared(world.rank()).rank() as usize;
        Ok(MpiCollective {
            world,
            local_rank,
            send: RefCell::new(Vec::new()),
            _universe: universe,
        })
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn local_rank(&self) -> usize {
        self.local_rank
    }

    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<()> {
        let mut send = self.send.borrow_mut();
        send.clear();
        send.extend_from_slice(values);
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }

    fn broadcast(&self, values: &mut [f32]) -> Result<()> {
        self.world.process_at_rank(0).broadcast_into(values);
        Ok(())
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) -> Result<()> {
        let root = self.world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        self.world.barrier();
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
