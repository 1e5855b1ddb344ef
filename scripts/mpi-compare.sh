#!/usr/bin/env bash
# Data-parallel figures for BENCHMARKS.md: each workload trained on MNIST by one process with the global
# batch, then by RANKS processes under mpirun (each taking global/RANKS of every step), on the CPU
# backend; prints both runs' epoch lines, test accuracy and, for the ranks, the bytes all-reduced per
# step and the all-reduce's share of training time. Builds nabla with `--features mpi` first (see
# scripts/mpi-test.sh for what that needs). Not part of any test command.
#
#   bash scripts/mpi-compare.sh [RANKS] [WORKLOAD...]     (default 2; w2 w3 cnn mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
ranks="${1:-2}"
shift || true
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(w2 w3 cnn mnist)

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
cargo build --release --quiet --features mpi
nabla="${CARGO_TARGET_DIR:-target}/release/nabla"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for w in "${workloads[@]}"; do
    case "$w" in
        # W2 and W3 as `nabla bench` defines them (momentum 0.9, lr 0.05), 3 and 2 epochs.
        w2) args=(--layers 128,128 --init he --optimizer momentum --lr 0.05 --schedule constant
                  --epochs 3) global=128 ;;
        w3) args=(--layers 1024,1024 --init he --optimizer momentum --lr 0.05 --schedule constant
                  --epochs 2) global=256 ;;
        # The fast CNN preset (batch 64), its 3 epochs.
        cnn) args=(--preset cnn) global=64 ;;
        # The default preset, 8 epochs of Adam: the run whose accuracy must match.
        mnist) args=() global=200 ;;
        *) echo "unknown workload $w (w2, w3, cnn, mnist)" >&2; exit 1 ;;
    esac
    if (( global % ranks != 0 )); then
        echo "$w: its global batch $global does not split over $ranks ranks" >&2
        exit 1
    fi
    echo "== $w: 1 process, --batch $global"
    "$nabla" train --device cpu "${args[@]}" --batch "$global" --out "$out/one.safetensors" \
        --metrics "$out/one.csv" 2>&1 | grep -E '^(epoch|test)'
    echo "== $w: $ranks processes, --batch $((global / ranks)) each"
    mpirun -np "$ranks" "$nabla" train --device cpu "${args[@]}" --batch "$((global / ranks))" \
        --out "$out/ranks.safetensors" --metrics "$out/ranks.csv" 2>&1 |
        grep -E '^(epoch|test|gradients)'
done
