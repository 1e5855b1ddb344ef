//! The curriculum's worked values, on both backends. For the one-hot target 2:
//! - outputs [0.1, 0.05, 0.6, 0, 0.05, 0.1, 0, 0.1, 0, 0]: ½·SSE = 0.0975, cross-entropy = −ln 0.6 = 0.5108;
//! - the same with 0.6 on class 7 instead: ½·SSE = 0.5975, cross-entropy = −ln 0.1 = 2.3026.
//!
//! Cross-entropy here goes through the fused softmax kernel with logits ln(y + 1e-7): softmax of
//! log-probabilities gives the probabilities back (renormalised by the 1e-7s, which moves the loss by
//! under 1e-5), so the kernel's loss is −ln yₜ. Tolerance 1e-4, the precision the curriculum quotes.

mod common;

use common::{cpu, read, with_gpu};
use nabla::Backend;

const RIGHT: [f32; 10] = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0];
const WRONG: [f32; 10] = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0];

fn losses<B: Backend>(b: &B, y: &[f32]) -> (f32, f32) {
    let mut t = [0.0f32; 10];
    t[2] = 1.0;
    let (mut d, mut sse) = (b.zeros(1, 10).unwrap(), b.zeros(1, 1).unwrap());
    let (ty, tt) = (b.tensor(1, 10, y).unwrap(), b.tensor(1, 10, &t).unwrap());
    b.mean_squared_error(&ty, &tt, &mut d, &mut sse).unwrap();
    let logits: Vec<f32> = y.iter().map(|p| (p + 1e-7).ln()).collect();
    let mut ce = b.zeros(1, 1).unwrap();
    let labels = b.indices(&[2]).unwrap();
    b.softmax_cross_entropy(&b.tensor(1, 10, &logits).unwrap(), &labels, &mut d, &mut ce)
        .unwrap();
    (read(b, &sse)[0], read(b, &ce)[0])
}

fn check<B: Backend>(b: &B) {
    let close = |got: f32, want: f32| assert!((got - want).abs() < 1e-4, "got {got}, want {want}");
    let (sse, ce) = losses(b, &RIGHT);
    close(sse, 0.0975);
    close(ce, 0.5108);
    let (sse, ce) = losses(b, &WRONG);
    close(sse, 0.5975);
    close(ce, std::f32::consts::LN_10); // 2.3026 = −ln 0.1
}

#[test]
fn worked_loss_values_on_cpu() {
    check(&cpu());
}

#[test]
fn worked_loss_values_on_gpu() {
    with_gpu(|gpu| check(&*gpu));
}
