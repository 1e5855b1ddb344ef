//! Long runs keep their memory flat on the GPU backend: buffers a run allocates per epoch (the
//! evaluation's batches, each epoch's shuffled order) are freed, not kept alive by cached bind groups.
//! Two measures: the count of live GPU tensors and index vectors (`nabla::gpu::live_buffers`), which
//! sees a device-memory leak on a discrete GPU as well as on lavapipe, and the host's resident memory.
//! Its own test binary, so that no other test's buffers or allocations move either.

mod common;

use common::{real_mnist, with_gpu};
use nabla::bench::resident_mib;
use nabla::data::Prep;
use nabla::init::Init;
use nabla::mnist::{CLASSES, PIXELS};
use nabla::model::{Model, ModelSpec};
use nabla::schedule::LrSchedule;
use nabla::train::{DeviceSplit, Event, TrainConfig, train};
use nabla::{Activation, Optimizer};

/// 30 epochs of 1 000 images, evaluated on 1 000 after each. Before bind groups let go of dropped
/// buffers, resident memory grew by 5 MiB an epoch here (100 MiB from epoch 10 to 30); now it stays
/// within a few MiB of allocator noise.
#[test]
fn resident_memory_stays_flat_over_many_epochs_on_the_gpu() {
    let data = real_mnist();
    with_gpu(|b| {
        let b = &*b;
        let input = Prep::mnist(true);
        let train_set =
            DeviceSplit::upload(b, &data.train.clone().truncated(1000), &input).unwrap();
        let test_set = DeviceSplit::upload(b, &data.test.clone().truncated(1000), &input).unwrap();
        let spec = ModelSpec::mlp(PIXELS, &[256, 256], CLASSES, Activation::Relu);
        let config = TrainConfig {
            epochs: 30,
            batch: 100,
            optimizer: Optimizer::adam(1e-3),
            schedule: LrSchedule::constant(),
            seed: 1,
            max_steps: None,
            report_every: 5,
            patience: None,
        };
        let mut model = Model::new(b, spec, Init::He, 1, 2).unwrap();
        let mut resident = Vec::new();
        let mut live = Vec::new();
        train(
            b,
            &mut model,
            &train_set,
            Some(&test_set),
            &config,
            |event, _| {
                if let Event::Epoch(stats) = event {
                    live.push(nabla::gpu::live_buffers());
                    if stats.epoch == 10 || stats.epoch == 30 {
                        resident.push(resident_mib().expect("/proc/self/statm"));
                    }
                }
            },
        )
        .unwrap();
        // After the first epoch every buffer a run keeps exists; each later epoch frees what it
        // allocates, so the count returns to the same number at every epoch's end.
        assert_eq!(live.len(), 30);
        assert!(
            live[1..].iter().all(|&n| n == live[1]),
            "live GPU buffers per epoch: {live:?}"
        );
        let growth = resident[1] - resident[0];
        assert!(
            growth < 16.0,
            "resident memory grew {growth:.1} MiB from epoch 10 to 30"
        );
    });
}
