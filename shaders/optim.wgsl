// Optimizer updates (g: gradient, p: parameter, wd: weight decay); each invocation takes a strided
// run of parameters (elementwise.wgsl).
// RULE is an override constant, so each rule compiles to its own straight-line kernel:
//
//   every rule but AdamW first takes g ← g + wd·p (L2 decay)
//   0 SGD       p ← p - lr·g
//   1 momentum  s1 ← μ·s1 + g;  p ← p - lr·s1   (Nesterov: p ← p - lr·(g + μ·s1))
//   2 AdaGrad   s1 ← s1 + g²;   p ← p - lr·g / (√s1 + ε)
//   3 RMSprop   s1 ← ρ·s1 + (1-ρ)·g²;  p ← p - lr·g / (√s1 + ε)
//   4 Adam      s1 ← β₁s1 + (1-β₁)g;  s2 ← β₂s2 + (1-β₂)g²;  p ← p - lr·(c₁s1) / (√(c₂s2) + ε)
//   5 AdamW     p ← p - lr·wd·p, then Adam on the raw gradient
//
// with c₁ = 1/(1-β₁ᵗ), c₂ = 1/(1-β₂ᵗ) computed on the host for step t. (μ, ρ, β₁) arrive as h1, β₂ as h2.

override RULE: u32 = 0u;
override NESTEROV: bool = false;

struct Params {
    n: u32,
    lr: f32,
    h1: f32,
    h2: f32,
    eps: f32,
    weight_decay: f32,
    c1: f32,
    c2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> s1: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> s2: array<vec4<f32>>;

@compute @workgroup_size(LANES)
fn step(at: Invocation) {
    for (var k = 0u; k < PER_LANE; k++) {
        let i = element(at, k);
        if (i >= vec4_count(p.n)) {
            return;
        }
        var w = param[i];
        var g = grad[i];
        if (RULE != 5u) {
            g += p.weight_decay * w;
        }
        switch RULE {
            case 0u: {
                w -= p.lr * g;
            }
            case 1u: {
                let b = p.h1 * s1[i] + g;
                s1[i] = b;
                if (NESTEROV) {
                    w -= p.lr * (g + p.h1 * b);
                } else {
                    w -= p.lr * b;
                }
            }
            case 2u: {
                let h = s1[i] + g * g;
                s1[i] = h;
                w -= p.lr * g / (sqrt(h) + p.eps);
            }
            case 3u: {
                let h = p.h1 * s1[i] + (1.0 - p.h1) * g * g;
                s1[i] = h;
                w -= p.lr * g / (sqrt(h) + p.eps);
            }
            default: {
                if (RULE == 5u) {
                    w -= p.lr * p.weight_decay * w;
                }
                let m = p.h1 * s1[i] + (1.0 - p.h1) * g;
                let v = p.h2 * s2[i] + (1.0 - p.h2) * g * g;
                s1[i] = m;
                s2[i] = v;
                w -= p.lr * (m * p.c1) / (sqrt(v * p.c2) + p.eps);
            }
        }
        param[i] = w;
    }
}
