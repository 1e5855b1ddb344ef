//! Restricted Boltzmann machines: the sampler on both backends, CD-1's estimate against the
//! expectation it defines, PCD against the exact log-likelihood gradient (central differences of the
//! enumerated likelihood), the free energy against its definition, files and the DBN's hand-over to an
//! MLP.

mod common;

use common::{assert_close, cpu, read, rng, uniform, with_gpu};
use nabla::dropout;
use nabla::init::Init;
use nabla::model::{Model, ModelSpec};
use nabla::rbm::stack::initialise;
use nabla::rbm::train::{Cd, RbmConfig, train_rbm};
use nabla::rbm::{Rbm, RbmValues, file};
use nabla::train::DeviceSplit;
use nabla::{Activation, Backend};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A tiny RBM with weights large enough that its hidden units matter.
fn tiny(visible: usize, hidden: usize, seed: u64) -> RbmValues {
    let mut r = rng(seed);
    RbmValues {
        visible,
        hidden,
        weight: uniform(&mut r, visible * hidden, 1.5),
        visible_bias: uniform(&mut r, visible, 0.5),
        hidden_bias: uniform(&mut r, hidden, 0.5),
    }
}

/// The bits of `x` (`n` of them) as 0/1 values.
fn bits(x: usize, n: usize) -> Vec<f64> {
    (0..n).map(|i| ((x >> i) & 1) as f64).collect()
}

/// `h·W·v + bᵀv + cᵀh`, minus the energy.
fn neg_energy(r: &RbmValues, v: &[f64], h: &[f64]) -> f64 {
    let dot = |a: &[f32], x: &[f64]| {
        a.iter()
            .zip(x)
            .map(|(&a, &x)| f64::from(a) * x)
            .sum::<f64>()
    };
    let coupling: f64 = r
        .weight
        .chunks(r.visible)
        .zip(h)
        .map(|(row, &h)| h * dot(row, v))
        .sum();
    coupling + dot(&r.hidden_bias, h) + dot(&r.visible_bias, v)
}

/// `p(h_j = 1 | v)` and `p(v_i = 1 | h)` in f64.
fn hidden_given(r: &RbmValues, v: &[f64]) -> Vec<f64> {
    (0..r.hidden)
        .map(|j| {
            sigmoid(
                f64::from(r.hidden_bias[j])
                    + (0..r.visible)
                        .map(|i| f64::from(r.weight[j * r.visible + i]) * v[i])
                        .sum::<f64>(),
            )
        })
        .collect()
}

fn visible_given(r: &RbmValues, h: &[f64]) -> Vec<f64> {
    (0..r.visible)
        .map(|i| {
            sigmoid(
                f64::from(r.visible_bias[i])
                    + (0..r.hidden)
                        .map(|j| f64::from(r.weight[j * r.visible + i]) * h[j])
                        .sum::<f64>(),
            )
        })
        .collect()
}

/// The mean of `−log p(v)` over `data`, by enumerating every state: `log Z − log Σ_h e^{−E(v, h)}`.
fn neg_log_likelihood(r: &RbmValues, data: &[Vec<f64>]) -> f64 {
    let unnormalised = |v: &[f64]| -> f64 {
        (0..1usize << r.hidden)
            .map(|h| neg_energy(r, v, &bits(h, r.hidden)).exp())
            .sum()
    };
    let z: f64 = (0..1usize << r.visible)
        .map(|v| unnormalised(&bits(v, r.visible)))
        .sum();
    data.iter()
        .map(|v| z.ln() - unnormalised(v).ln())
        .sum::<f64>()
        / data.len() as f64
}

/// A batch holding each vector of `data` `copies` times.
fn replicate(data: &[Vec<f64>], copies: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for v in data {
        for _ in 0..copies {
            out.extend(v.iter().map(|&x| x as f32));
        }
    }
    out
}

/// The sampler draws `d + 1 ≤ p·2²⁴` exactly as `dropout::bernoulli` defines it, on every backend and at
/// every length (vec4 tails, more than one workgroup), edge probabilities and NaN included; and its
/// frequency is `p`'s.
#[test]
fn bernoulli_samples_are_the_same_on_both_backends() {
    let check = |b: &dyn Fn(u64, &[f32]) -> Vec<f32>| {
        for (s, n) in [1usize, 3, 5, 63, 65, 1001, 70_001].into_iter().enumerate() {
            let mut r = rng(s as u64);
            let mut p: Vec<f32> = uniform(&mut r, n, 0.5).iter().map(|x| x + 0.5).collect();
            let edges = [
                0.0,
                1.0,
                f32::NAN,
                1.0 / 16_777_216.0,
                0.5 / 16_777_216.0,
                1e-40,
                1.0 - f32::EPSILON / 2.0,
                -1.0,
                2.0,
            ];
            for (slot, e) in p.iter_mut().zip(edges) {
                *slot = e;
            }
            let key = 0x0bad_cafe_1234_5678 ^ s as u64;
            let got = b(key, &p);
            for (i, (&g, &q)) in got.iter().zip(&p).enumerate() {
                let want = dropout::bernoulli(dropout::draw(key, i as u32), q);
                assert_eq!(g, want, "n {n} [{i}] p {q}");
            }
            // p = 0, NaN, under 2⁻²⁴ (subnormal too) and negative never switch a unit on; p ≥ 1 always.
            for (i, want) in [
                (0, 0.0),
                (1, 1.0),
                (2, 0.0),
                (4, 0.0),
                (5, 0.0),
                (7, 0.0),
                (8, 1.0),
            ] {
                if i < n {
                    assert_eq!(got[i], want, "n {n}, edge p {}", p[i]);
                }
            }
            if n == 70_001 {
                let expected: f64 = p[edges.len()..].iter().map(|&q| f64::from(q)).sum();
                let on: f64 = got[edges.len()..].iter().map(|&v| f64::from(v)).sum();
                let sd = (n as f64 * 0.25).sqrt();
                assert!(
                    (on - expected).abs() < 5.0 * sd,
                    "{on} on, {expected} expected"
                );
            }
        }
    };
    let c = cpu();
    check(&|key, p| {
        let mut s = c.zeros(1, p.len()).unwrap();
        c.sample_bernoulli(key, &c.tensor(1, p.len(), p).unwrap(), &mut s)
            .unwrap();
        s.data().to_vec()
    });
    with_gpu(|gpu| {
        check(&|key, p| {
            let mut s = gpu.zeros(1, p.len()).unwrap();
            gpu.sample_bernoulli(key, &gpu.tensor(1, p.len(), p).unwrap(), &mut s)
                .unwrap();
            read(gpu, &s)
        })
    });
}

/// The conditional probabilities against the f64 formulas, at sizes off every tile.
fn conditionals_match<B: Backend>(b: &B) {
    let r = tiny(37, 19, 5);
    let rbm = Rbm::from_values(b, &r).unwrap();
    let n = 13;
    let v = uniform(&mut rng(6), n * 37, 1.0);
    let h = uniform(&mut rng(7), n * 19, 1.0);
    let (mut ph, mut pv) = (b.zeros(n, 19).unwrap(), b.zeros(n, 37).unwrap());
    rbm.hidden_probs(b, &b.tensor(n, 37, &v).unwrap(), &mut ph)
        .unwrap();
    rbm.visible_probs(b, &b.tensor(n, 19, &h).unwrap(), &mut pv)
        .unwrap();
    let f64s = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
    let want_h: Vec<f32> = v
        .chunks(37)
        .flat_map(|row| hidden_given(&r, &f64s(row)))
        .map(|x| x as f32)
        .collect();
    let want_v: Vec<f32> = h
        .chunks(19)
        .flat_map(|row| visible_given(&r, &f64s(row)))
        .map(|x| x as f32)
        .collect();
    // Products of ≤ 37 terms of size ≤ 1.5 in f32, then a sigmoid (slope ≤ ¼): well under 1e-5.
    assert_close("p(h | v)", &read(b, &ph), &want_h, 1e-5, 0.0);
    assert_close("p(v | h)", &read(b, &pv), &want_v, 1e-5, 0.0);
}

#[test]
fn cpu_conditionals_match_the_f64_formulas() {
    conditionals_match(&cpu());
}

#[test]
fn gpu_conditionals_match_the_f64_formulas() {
    with_gpu(|gpu| conditionals_match(gpu));
}

/// CD-1's estimate, averaged over many draws of `h₀`, against the expectation its definition gives,
/// enumerated over every `h₀`: `E[∂W] = E_{h₀}[ph⁻ᵀpv⁻] − ph₀ᵀv₀` with `pv⁻ = σ(h₀W + b)` and
/// `ph⁻ = σ(pv⁻Wᵀ + c)`, per data vector. The tolerance is 6 standard deviations of the batch mean,
/// from the enumerated variance of one row's term.
fn cd1_matches_its_expectation<B: Backend>(b: &B) {
    let r = tiny(4, 3, 11);
    let data = vec![vec![1.0, 0.0, 1.0, 1.0], vec![0.0, 1.0, 0.0, 1.0]];
    let copies = 20_000;
    let n = copies * data.len();
    let rbm = Rbm::from_values(b, &r).unwrap();
    let mut cd = Cd::new(b, &rbm, n, 1, false).unwrap();
    let v0 = b.tensor(n, 4, &replicate(&data, copies)).unwrap();
    cd.gradient(b, &rbm, &v0, 77).unwrap();
    let got = [
        read(b, &cd.grads.weight),
        read(b, &cd.grads.visible_bias),
        read(b, &cd.grads.hidden_bias),
    ];
    // Per data vector, the enumerated mean and second moment of each gradient entry's row term.
    let entries = 12 + 4 + 3;
    let (mut mean, mut var) = (vec![0.0; entries], vec![0.0; entries]);
    for v in &data {
        let ph0 = hidden_given(&r, v);
        let (mut m1, mut m2) = (vec![0.0; entries], vec![0.0; entries]);
        for h in 0..1usize << 3 {
            let h0 = bits(h, 3);
            let p: f64 = (0..3)
                .map(|j| if h0[j] == 1.0 { ph0[j] } else { 1.0 - ph0[j] })
                .product();
            let pv = visible_given(&r, &h0);
            let ph = hidden_given(&r, &pv);
            let mut term = Vec::with_capacity(entries);
            for j in 0..3 {
                for i in 0..4 {
                    term.push(ph[j] * pv[i] - ph0[j] * v[i]);
                }
            }
            term.extend((0..4).map(|i| pv[i] - v[i]));
            term.extend((0..3).map(|j| ph[j] - ph0[j]));
            for e in 0..entries {
                m1[e] += p * term[e];
                m2[e] += p * term[e] * term[e];
            }
        }
        for e in 0..entries {
            mean[e] += m1[e] / data.len() as f64;
            var[e] += (m2[e] - m1[e] * m1[e]) * copies as f64 / (n as f64 * n as f64);
        }
    }
    let got: Vec<f32> = got.concat();
    for e in 0..entries {
        let bound = 6.0 * var[e].sqrt() + 1e-5;
        let diff = (f64::from(got[e]) - mean[e]).abs();
        assert!(
            diff <= bound,
            "entry {e}: got {}, expected {} ± {bound}",
            got[e],
            mean[e]
        );
    }
}

#[test]
fn cpu_cd1_estimate_matches_its_enumerated_expectation() {
    cd1_matches_its_expectation(&cpu());
}

#[test]
fn gpu_cd1_estimate_matches_its_enumerated_expectation() {
    with_gpu(|gpu| cd1_matches_its_expectation(gpu));
}

/// With no updates, PCD's chains sample the model, so its estimate averaged over many steps is the
/// true gradient of the mean `−log p(v)`: checked against central differences of the likelihood
/// enumerated over all 2⁷ states (f64, step 1e-4). 4000 chains × 60 steps after 20 of burn-in; the
/// tolerance 0.02 is about 8 standard deviations of that average for a chain this small.
#[test]
fn pcd_estimate_is_the_central_difference_gradient_of_the_likelihood() {
    let b = cpu();
    let r = tiny(4, 3, 21);
    let data = vec![vec![1.0, 1.0, 0.0, 0.0], vec![0.0, 1.0, 1.0, 1.0]];
    let copies = 2000;
    let n = copies * data.len();
    let rbm = Rbm::from_values(&b, &r).unwrap();
    let mut cd = Cd::new(&b, &rbm, n, 1, true).unwrap();
    let v0 = b.tensor(n, 4, &replicate(&data, copies)).unwrap();
    let mut sum = [0.0f64; 19];
    let (burn_in, steps) = (20, 60);
    for step in 0..burn_in + steps {
        cd.gradient(&b, &rbm, &v0, step as u64).unwrap();
        if step >= burn_in {
            let g = [
                read(&b, &cd.grads.weight),
                read(&b, &cd.grads.visible_bias),
                read(&b, &cd.grads.hidden_bias),
            ]
            .concat();
            for (s, g) in sum.iter_mut().zip(g) {
                *s += f64::from(g) / steps as f64;
            }
        }
    }
    let h = 1e-4f32;
    let mut numeric = Vec::new();
    for which in 0..3 {
        let len = [12, 4, 3][which];
        for e in 0..len {
            let at = |delta: f32| {
                let mut p = r.clone();
                let slot = match which {
                    0 => &mut p.weight[e],
                    1 => &mut p.visible_bias[e],
                    _ => &mut p.hidden_bias[e],
                };
                *slot += delta;
                neg_log_likelihood(&p, &data)
            };
            numeric.push((at(h) - at(-h)) / (2.0 * f64::from(h)));
        }
    }
    for (e, (&got, &want)) in sum.iter().zip(&numeric).enumerate() {
        assert!(
            (got - want).abs() < 0.02,
            "entry {e}: PCD {got:.4}, central differences {want:.4}"
        );
    }
}

/// `F(v) = −log Σ_h e^{−E(v, h)}`, enumerated, and the training monitor's mean free energy and
/// reconstruction error against the host formulas.
#[test]
fn free_energy_and_monitor_match_their_definitions() {
    let r = tiny(5, 4, 31);
    for v in 0..1usize << 5 {
        let v = bits(v, 5);
        let enumerated = -(0..1usize << 4)
            .map(|h| neg_energy(&r, &v, &bits(h, 4)).exp())
            .sum::<f64>()
            .ln();
        let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        assert!((r.free_energy(&v32) - enumerated).abs() < 1e-6);
    }
    let b = cpu();
    let (split, images) = digits(&b, 30, 3);
    let r = tiny(64, 6, 32);
    let rbm = Rbm::from_values(&b, &r).unwrap();
    let m = nabla::rbm::train::monitor(&b, &rbm, &[], &split, 25).unwrap();
    let (mut energy, mut error) = (0.0, 0.0);
    for v in images.chunks(64).take(25) {
        energy += r.free_energy(v) / 25.0;
        let v64: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
        let recon = visible_given(&r, &hidden_given(&r, &v64));
        error += v64
            .iter()
            .zip(&recon)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / 25.0;
    }
    assert!((m.free_energy - energy).abs() < 1e-4 * energy.abs().max(1.0));
    assert!((m.reconstruction_error - error).abs() < 1e-4 * error.max(1.0));
}

/// `count` 8×8 binary pictures of bars (a random row or column lit), stored as a byte data set, and
/// their values in [0, 1].
fn digits<B: Backend>(b: &B, count: usize, seed: u64) -> (DeviceSplit<B>, Vec<f32>) {
    use rand::Rng;
    let mut r = rng(seed);
    let mut bytes = Vec::with_capacity(count * 64);
    for _ in 0..count {
        let (line, across) = (r.random_range(0..8), r.random_bool(0.5));
        for y in 0..8 {
            for x in 0..8 {
                let on = if across { y == line } else { x == line };
                bytes.push(if on { 255u8 } else { 0 });
            }
        }
    }
    let labels = vec![0u32; count];
    let samples = nabla::backend::Samples::bytes(&bytes, 64, &labels, 1.0 / 255.0, 0.0);
    let split = DeviceSplit {
        set: b.dataset(&samples).unwrap(),
        len: count,
        width: 64,
        target_width: 0,
    };
    let values = bytes
        .iter()
        .map(|&x| f32::from(x) * (1.0 / 255.0))
        .collect();
    (split, values)
}

/// An RBM learns bars: its reconstruction error falls well below the start's, on both backends, and
/// the two backends' figures agree (their samples differ only where a product's last bit moves a
/// probability across a draw, so the runs are statistically, not bitwise, the same).
#[test]
fn an_rbm_learns_bars_on_both_backends() {
    let config = RbmConfig {
        epochs: 12,
        batch: 20,
        monitor: 400,
        ..RbmConfig::default()
    };
    let learn = |b: &dyn BackendRun| b.run(&config);
    let on_cpu = learn(&cpu());
    let first = on_cpu[0];
    let last = *on_cpu.last().unwrap();
    assert!(last < 0.5 * first, "reconstruction error {first} → {last}");
    if let Some(on_gpu) = with_gpu(|gpu| learn(gpu)) {
        let g = *on_gpu.last().unwrap();
        assert!((g - last).abs() < 0.1 * last + 0.05, "CPU {last}, GPU {g}");
    }
}

/// Trains the bars RBM and returns each epoch's training reconstruction error.
trait BackendRun {
    fn run(&self, config: &RbmConfig) -> Vec<f64>;
}

impl<B: Backend> BackendRun for B {
    fn run(&self, config: &RbmConfig) -> Vec<f64> {
        let (split, _) = digits(self, 400, 9);
        let mut rbm = Rbm::new(self, 64, 16, 4).unwrap();
        train_rbm(self, &mut rbm, &[], &split, None, config, |_, _| {})
            .unwrap()
            .iter()
            .map(|e| e.train.reconstruction_error)
            .collect()
    }
}

/// A saved stack reads back exactly; damaged files and non-finite values are refused with the file named.
#[test]
fn stacks_save_and_load_and_bad_files_are_refused() {
    let dir = std::env::temp_dir().join(format!("nabla-rbm-{}", std::process::id()));
    let path = dir.join("stack.safetensors");
    let stack = vec![tiny(6, 4, 1), tiny(4, 3, 2)];
    file::save(&stack, &path).unwrap();
    assert_eq!(file::load(&path).unwrap(), stack);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 7]).unwrap();
    let message = file::load(&path).unwrap_err().to_string();
    assert!(message.contains("stack.safetensors"), "{message}");
    let mismatched = vec![tiny(6, 4, 1), tiny(5, 3, 2)];
    assert!(file::save(&mismatched, &path).is_err());
    let mut diverged = stack.clone();
    diverged[1].hidden_bias[2] = f32::NAN;
    file::save(&diverged, &path).unwrap();
    let message = file::load(&path).unwrap_err().to_string();
    assert!(
        message.contains("stack.safetensors")
            && message.contains("rbm.1.hidden_bias holds NaN at index 2"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A pre-trained stack starts an MLP whose sigmoid hidden layers then compute each RBM's hidden
/// probabilities; a model of other sizes is refused.
#[test]
fn a_stack_initialises_an_mlp_that_computes_its_hidden_probabilities() {
    let b = cpu();
    let stack = vec![tiny(6, 4, 1), tiny(4, 3, 2)];
    let spec = ModelSpec::parse("input 6, dense 4, sigmoid, dense 3, sigmoid, dense 2").unwrap();
    let mut model = Model::new(&b, spec, Init::He, 1, 0).unwrap();
    initialise(&b, &stack, &mut model).unwrap();
    let x = uniform(&mut rng(3), 5 * 6, 1.0);
    let xt = b.tensor(5, 6, &x).unwrap();
    let (mut h1, mut h2) = (b.zeros(5, 4).unwrap(), b.zeros(5, 3).unwrap());
    let rbms: Vec<Rbm<_>> = stack
        .iter()
        .map(|r| Rbm::from_values(&b, r).unwrap())
        .collect();
    rbms[0].hidden_probs(&b, &xt, &mut h1).unwrap();
    rbms[1].hidden_probs(&b, &h1, &mut h2).unwrap();
    let mut out = b.zeros(5, 3).unwrap();
    let mut y1 = b.zeros(5, 4).unwrap();
    model.layers[0]
        .forward(&b, &xt, &mut y1, Activation::Sigmoid)
        .unwrap();
    model.layers[2]
        .forward(&b, &y1, &mut out, Activation::Sigmoid)
        .unwrap();
    assert_close("layer 2", &read(&b, &out), &read(&b, &h2), 1e-6, 0.0);
    let wrong = ModelSpec::parse("input 6, dense 5, sigmoid, dense 2").unwrap();
    let mut wrong = Model::new(&b, wrong, Init::He, 1, 0).unwrap();
    let message = initialise(&b, &stack, &mut wrong).unwrap_err().to_string();
    assert!(message.contains("6→5"), "{message}");
}

/// Settings that cannot train are refused with a message.
#[test]
fn bad_rbm_settings_are_refused() {
    for (config, part) in [
        (
            RbmConfig {
                k: 0,
                ..RbmConfig::default()
            },
            "Gibbs step",
        ),
        (
            RbmConfig {
                lr: 0.0,
                ..RbmConfig::default()
            },
            "learning rate",
        ),
        (
            RbmConfig {
                final_momentum: 1.0,
                ..RbmConfig::default()
            },
            "final momentum",
        ),
        (
            RbmConfig {
                weight_cost: -1.0,
                ..RbmConfig::default()
            },
            "weight cost",
        ),
    ] {
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains(part), "{message}");
    }
    let b = cpu();
    let (split, _) = digits(&b, 10, 1);
    let mut rbm = Rbm::new(&b, 63, 4, 1).unwrap();
    let message = train_rbm(
        &b,
        &mut rbm,
        &[],
        &split,
        None,
        &RbmConfig {
            batch: 10,
            ..RbmConfig::default()
        },
        |_, _| {},
    )
    .expect_err("63 visible units cannot read 64 pixels")
    .to_string();
    assert!(message.contains("63 visible units"), "{message}");
    for (config, part) in [
        (RbmConfig::default(), "batch size"),
        (
            RbmConfig {
                batch: 10,
                monitor: 0,
                ..RbmConfig::default()
            },
            "at least 1 sample",
        ),
    ] {
        let mut rbm = Rbm::new(&b, 64, 4, 1).unwrap();
        let message = train_rbm(&b, &mut rbm, &[], &split, None, &config, |_, _| {})
            .expect_err("refused")
            .to_string();
        assert!(message.contains(part), "{message}");
    }
    let rbm = Rbm::new(&b, 64, 4, 1).unwrap();
    assert!(Cd::new(&b, &rbm, 10, 0, false).is_err());
    assert!(Rbm::new(&b, 0, 4, 1).is_err());
    assert!(RbmValues::initial(usize::MAX, 2, 1).is_err());
}

/// Sets whose length is not a multiple of the 1000-row chunks (1500 samples: 1000, then 500) are
/// measured and averaged whole: the pixel means against the host's, and the monitor's figures against
/// the same RBM measured on the first 1000 and the last 500 apart.
#[test]
fn chunked_passes_cover_sets_of_any_length() {
    let b = cpu();
    let (split, pixels) = digits(&b, 1500, 8);
    let means = nabla::rbm::stack::means(&b, &[], &split).unwrap();
    let want: Vec<f32> = (0..64)
        .map(|i| {
            (pixels
                .iter()
                .skip(i)
                .step_by(64)
                .map(|&p| f64::from(p))
                .sum::<f64>()
                / 1500.0) as f32
        })
        .collect();
    assert_close("pixel means", &means, &want, 1e-6, 0.0);
    let r = tiny(64, 6, 2);
    let rbm = Rbm::from_values(&b, &r).unwrap();
    let whole = nabla::rbm::train::monitor(&b, &rbm, &[], &split, 5000).unwrap();
    let energy: f64 = pixels.chunks(64).map(|v| r.free_energy(v)).sum::<f64>() / 1500.0;
    assert!(
        (whole.free_energy - energy).abs() < 1e-4 * energy.abs(),
        "{} against {energy}",
        whole.free_energy
    );
    let features = nabla::curriculum::rbm::features(&b, &[rbm], &split).unwrap();
    assert_eq!(features.len(), 1500 * 6);
}

/// A NaN in the weights stops training after the epoch, with the trainer's divergence error.
#[test]
fn nan_in_an_rbm_stops_training() {
    let b = cpu();
    let (split, _) = digits(&b, 40, 2);
    let mut values = tiny(64, 8, 3);
    values.weight[5] = f32::NAN;
    let mut rbm = Rbm::from_values(&b, &values).unwrap();
    let config = RbmConfig {
        epochs: 3,
        batch: 20,
        ..RbmConfig::default()
    };
    let mut epochs = 0;
    let error = train_rbm(&b, &mut rbm, &[], &split, None, &config, |_, _| epochs += 1)
        .expect_err("a NaN weight must stop training");
    assert!(
        matches!(error, nabla::Error::Diverged { epoch: 1, .. }),
        "{error}"
    );
    assert_eq!(epochs, 0);
}

/// A two-RBM stack pre-trains greedily on both backends: the upper RBM reads the lower one's hidden
/// probabilities (its visible biases start at their log-odds) and learns them, to the same figures
/// on the CPU and the GPU within the spread that differently rounded products allow.
#[test]
fn stacks_pretrain_on_both_backends() {
    fn run<B: Backend>(b: &B) -> (Vec<f64>, Vec<f32>) {
        let (split, _) = digits(b, 400, 12);
        let config = RbmConfig {
            epochs: 8,
            batch: 20,
            monitor: 400,
            ..RbmConfig::default()
        };
        let mut upper = Vec::new();
        let stack = nabla::rbm::stack::pretrain(
            b,
            &[64, 16, 8],
            &split,
            Some(&split),
            &config,
            |layer, e| {
                if layer == 1 {
                    upper.push(e.train.reconstruction_error);
                }
            },
        )
        .unwrap();
        let means = nabla::rbm::stack::means(b, &stack[..1], &split).unwrap();
        (upper, means)
    }
    let (cpu_errors, cpu_means) = run(&cpu());
    assert_eq!(cpu_errors.len(), 8);
    assert!(
        cpu_errors[7] < 0.7 * cpu_errors[0],
        "upper RBM: {cpu_errors:?}"
    );
    assert_eq!(cpu_means.len(), 16);
    assert!(cpu_means.iter().all(|m| (0.0..=1.0).contains(m)));
    if let Some((gpu_errors, gpu_means)) = with_gpu(|gpu| run(gpu)) {
        let (c, g) = (cpu_errors[7], gpu_errors[7]);
        assert!((c - g).abs() < 0.15 * c + 0.05, "CPU {c}, GPU {g}");
        assert_close("hidden means", &gpu_means, &cpu_means, 0.05, 0.0);
    }
}
