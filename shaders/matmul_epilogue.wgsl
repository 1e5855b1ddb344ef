// The fused epilogue every matrix-product kernel applies to its raw result s = Σ_k op(A)[i,k]·op(B)[k,j]
// before storing element i (row-major index) of column j of C (the host appends this file and
// activation_fns.wgsl; the kernel declares `p.alpha`, `bias` and `aux`):
//
//   forward   C = act(s + bias[j])                      (bias when HAS_BIAS, act = ACT)
//   GRAD      C = s · f'(z), f' from aux[i] = y = f(z)  (backprop through the activation ACT into the
//                                                         product that computes dL/dy)

override HAS_BIAS: bool = false;
override ACT: u32 = 0u;
override GRAD: bool = false;

fn epilogue(i: u32, j: u32, s: f32) -> f32 {
    if (GRAD) {
        return s * act_derivative_from_output(ACT, p.alpha, aux[i]);
    }
    var v = s;
    if (HAS_BIAS) {
        v += bias[j];
    }
    return act_forward(ACT, p.alpha, v);
}
