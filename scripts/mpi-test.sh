#!/usr/bin/env bash
# Data-parallel training's tests (tests/mpi.rs): installs Open MPI and libclang (which the mpi crate's
# bindgen needs) from apt where they are missing, lints the `mpi` feature's build, then runs the tests.
# They start `mpirun` with 2 and 3 ranks (oversubscribed) on the CPU backend over loopback, and 2 on the
# GPU backend (that one needs a Vulkan driver, which the test command installs, or NABLA_GPU_TESTS=off).
# Not part of the README's test command (the default build needs no MPI); CI (.ci/run) runs it after
# that command. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
    # mpirun, the headers and compiler wrapper the mpi crate's build asks for its flags, and libclang
    # with clang's own headers for bindgen.
    packages=()
    for p in openmpi-bin libopenmpi-dev libclang-dev; do
        installed "$p" || packages+=("$p")
    done
    if [ ${#packages[@]} -gt 0 ]; then
        echo "Installing ${packages[*]} for the MPI tests."
        sudo=""
        [ "$(id -u)" -ne 0 ] && sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            "${packages[@]}" >/dev/null
    fi
fi
# The tests use Open MPI's mpirun options and variables (--oversubscribe, OMPI_COMM_WORLD_RANK).
if ! mpirun --version 2>/dev/null | grep -q 'Open MPI'; then
    echo "error: the MPI tests need Open MPI's mpirun (with its headers) and libclang; no apt-get here" >&2
    echo "       installed them." >&2
    exit 1
fi

# Open MPI refuses to start as root without both of these (containers and CI run as root), and in a
# container the shared-memory transport's cross-memory attach is forbidden.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none

# lavapipe's window-system code complains when this is unset; compute needs no display.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

cargo clippy --release --all-targets --features mpi -- -D warnings
cargo test --release --features mpi --test mpi --no-run
# The tests time each mpirun out themselves; this bounds the whole file too (built above, not timed).
timeout 900 cargo test --release --features mpi --test mpi "$@"
