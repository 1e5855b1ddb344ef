// Element-wise activation, forward y = f(x) and backward dx = dy ⊙ f'(x).
// The functions themselves are in activation_fns.wgsl (appended by the host).
// Invocations take strided runs of elements (elementwise.wgsl); the grid is 2-D past 65535 workgroups.

override ACT: u32 = 0u;

struct Params {
    n: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;

fn forward4(v: vec4<f32>) -> vec4<f32> {
    let a = p.alpha;
    return vec4(
        act_forward(ACT, a, v.x),
        act_forward(ACT, a, v.y),
        act_forward(ACT, a, v.z),
        act_forward(ACT, a, v.w),
    );
}

fn derivative4(v: vec4<f32>) -> vec4<f32> {
    let a = p.alpha;
    return vec4(
        act_derivative(ACT, a, v.x),
        act_derivative(ACT, a, v.y),
        act_derivative(ACT, a, v.z),
        act_derivative(ACT, a, v.w),
    );
}

@compute @workgroup_size(LANES)
fn forward(at: Invocation) {
    for (var k = 0u; k < PER_LANE; k++) {
        let i = element(at, k);
        if (i >= vec4_count(p.n)) {
            return;
        }
        y[i] = forward4(x[i]);
    }
}

@group(0) @binding(3) var<storage, read> bx: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bdy: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> bdx: array<vec4<f32>>;

@compute @workgroup_size(LANES)
fn backward(at: Invocation) {
    for (var k = 0u; k < PER_LANE; k++) {
        let i = element(at, k);
        if (i >= vec4_count(p.n)) {
            return;
        }
        bdx[i] = bdy[i] * derivative4(bx[i]);
    }
}
