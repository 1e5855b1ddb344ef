// Element-wise activation, forward y = f(x) and backward dx = dy ⊙ f'(x).
// The functions themselves are in activation_fns.wgsl (appended by the host).
// One invocation per element; the grid is 2-D when n exceeds 65535 workgroups.

override ACT: u32 = 0u;

struct Params {
    n: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    if (i < p.n) {
        y[i] = act_forward(ACT, p.alpha, x[i]);
    }
}

@group(0) @binding(3) var<storage, read> bx: array<f32>;
@group(0) @binding(4) var<storage, read> bdy: array<f32>;
@group(0) @binding(5) var<storage, read_write> bdx: array<f32>;

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    if (i < p.n) {
        bdx[i] = bdy[i] * act_derivative(ACT, p.alpha, bx[i]);
    }
}
