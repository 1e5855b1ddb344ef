#!/usr/bin/env bash
# Data-parallel training's tests (tests/mpi.rs): installs Open MPI and libclang (which the mpi crate's
# bindgen needs) from apt where they are missing, lints the `mpi` feature's build, then runs the tests,
# which start `mpirun` with 2 and 3 ranks (oversubscribed) on the CPU backend over loopback. Not part of
# the README's test command (the default build needs no MPI); CI (.ci/run) runs it after that command.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v mpirun >/dev/null || packages+=(openmpi-bin)
# The headers and the compiler wrapper the mpi crate's build script asks for the flags.
command -v mpicc >/dev/null || packages+=(libopenmpi-dev)
ldconfig -p 2>/dev/null | grep 'libclang[-.0-9]*\.so' >/dev/null || packages+=(libclang-dev)
if [ ${#packages[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "error: no apt-get here. Install ${packages[*]} (Open MPI or MPICH, and libclang)." >&2
        exit 1
    fi
    echo "Installing ${packages[*]} for the MPI tests."
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >/dev/null
fi

# Open MPI refuses to start as root without both of these (containers and CI run as root), and in a
# container the shared-memory transport's cross-memory attach is forbidden.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none

cargo clippy --release --all-targets --features mpi -- -D warnings
# The tests time each mpirun out themselves; this bounds the whole file too.
timeout 900 cargo test --release --features mpi --test mpi "$@"
