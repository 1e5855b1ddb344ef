//! Subnormal floats flushed to zero on the CPU backend's threads while they run its ops.
//!
//! Arithmetic that meets a subnormal operand or result takes a microcode assist on x86, about a hundred
//! times slower than the ordinary path. Training makes subnormals as a matter of course: momentum and
//! Adam's moments decay geometrically wherever a gradient is zero (a dead ReLU unit's weights), and
//! 0.9ᵗ passes below f32's smallest normal (1.2e-38) after about 830 steps. Measured here, W3's epochs
//! after the first ran 40% slower and W5's 65% slower before this. Flushing them (the MXCSR's FTZ and
//! DAZ bits) is what GPUs do and what WGSL allows; it changes only values below 1.2e-38.
//!
//! The bits are set on the worker threads for good, and on the calling thread only for the length of an
//! op ([`Flushed`]), so that code outside nabla keeps its own floating-point mode.

/// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6) bits.
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

/// While alive, the calling thread flushes subnormals to zero; dropping it restores the thread's mode.
pub(super) struct Flushed {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl Flushed {
    /// Starts flushing on this thread.
    pub(super) fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = read();
            if saved & FTZ_DAZ != FTZ_DAZ {
                write(saved | FTZ_DAZ);
            }
            Flushed { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Flushed {}
    }
}

impl Drop for Flushed {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if self.saved & FTZ_DAZ != FTZ_DAZ {
            write(self.saved);
        }
    }
}

/// Makes this thread flush subnormals for the rest of its life (the backend's own worker threads).
pub(super) fn flush_on_this_thread() {
    std::mem::forget(Flushed::new());
}

#[cfg(target_arch = "x86_64")]
fn read() -> u32 {
    let mut csr = 0u32;
    // SAFETY: stmxcsr stores the 32-bit control register at the given address, a live local.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
    csr
}

#[cfg(target_arch = "x86_64")]
fn write(csr: u32) {
    // SAFETY: ldmxcsr loads the control register from a live local; the value differs from the
    // present one only in the FTZ and DAZ bits, which change rounding of subnormals only.
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormals_flush_inside_the_guard_and_not_after() {
        let tiny = std::hint::black_box(1e-38f32);
        let half = std::hint::black_box(0.5f32);
        assert!((tiny * half) > 0.0, "a subnormal product, unflushed");
        {
            let _flushed = Flushed::new();
            let product = std::hint::black_box(tiny) * std::hint::black_box(half);
            #[cfg(target_arch = "x86_64")]
            assert_eq!(product, 0.0);
            #[cfg(not(target_arch = "x86_64"))]
            let _ = product;
        }
        assert!(std::hint::black_box(tiny) * std::hint::black_box(half) > 0.0);
    }
}
