#!/usr/bin/env bash
# Compares nabla's CPU backend with NumPy and PyTorch on this machine, every library on 2 threads, all
# measured in one run (benches/compare.py does the measuring): the six `nabla bench` workloads on MNIST
# (NumPy does W1 and W2, PyTorch all six), printed as a Markdown table of steady seconds per epoch (W4:
# images/s) with the test accuracies, the machine and the library versions; then sgemm GFLOP/s, nabla's
# from `cargo bench --bench matmul -- --cpu` (the only cargo command here) against torch.mm (MKL) and
# NumPy's `@` (OpenBLAS).
#
#   scripts/cpu-compare.sh [--epochs E] [--rounds R] [--workloads LIST] [--nabla BINARY] [--data DIR]
#                          [--[no-]sgemm]
#
# E: epochs per workload, default 3 (steady = the mean of those after the first). R: rounds in which the
# libraries take turns, default 2; each library's best round counts (the machine's speed drifts). LIST: a comma-separated
# subset of book,mlp,wide,infer,cnn,lstm,rbm, default all. BINARY: default target/release/nabla (`cargo build
# --release`). DIR: MNIST's four raw IDX files, default data/mnist (`nabla fetch` fetches them when
# missing). The sgemm table is on by default (--sgemm); --no-sgemm skips it and cargo. PyTorch and NumPy
# come from a virtual environment kept in target/compare-venv (made with `python3 -m venv`, filled by
# `pip install torch numpy scikit-learn`: large downloads; on Debian python3-venv is installed when venv does not
# work). COMPARE_VENV=/path uses an existing environment with torch and numpy instead, installing nothing.
# Run it on an idle machine: the load averages printed with the table show whether it was one.
set -euo pipefail

# A path given on the command line, made absolute before the cd below.
absolute() {
    case "$1" in
        /*) echo "$1" ;;
        *) echo "$PWD/$1" ;;
    esac
}

epochs=3
rounds=2
workloads=book,mlp,wide,infer,cnn,lstm
nabla=target/release/nabla
data=data/mnist
sgemm=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --epochs) epochs="${2:?--epochs needs a number}"; shift 2 ;;
        --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
        --workloads) workloads="${2:?--workloads needs a list}"; shift 2 ;;
        --nabla) nabla="$(absolute "${2:?--nabla needs a path}")"; shift 2 ;;
        --data) data="$(absolute "${2:?--data needs a directory}")"; shift 2 ;;
        --sgemm) sgemm=yes; shift ;;
        --no-sgemm) sgemm=no; shift ;;
        -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 1 ;;
    esac
done
cd "$(dirname "$0")/.."

die() {
    echo "error: $1" >&2
    exit 1
}

[ -x "$nabla" ] || die "no nabla binary at $nabla: run \`cargo build --release\` or pass --nabla BINARY."
for file in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ ! -f "$data/$file" ]; then
        echo "MNIST is missing from $data: fetching it with nabla." >&2
        "$nabla" fetch --data "$data" >&2 || die "nabla fetch --data $data failed (output above)."
        break
    fi
done

if [ -n "${COMPARE_VENV:-}" ]; then
    python="$COMPARE_VENV/bin/python"
    [ -x "$python" ] || die "COMPARE_VENV=$COMPARE_VENV is not a virtual environment: no $python."
else
    venv=target/compare-venv
    python="$venv/bin/python"
    command -v python3 >/dev/null || die "no python3 on the PATH (3.10 or newer is needed)."
    # shellcheck source=scripts/python-venv.sh
    . scripts/python-venv.sh
    ensure_venv "$venv" die
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "$("$python" --version 2>&1) is too old: benches/compare.py needs Python 3.10 or newer."
if ! "$python" -c 'import numpy, torch' 2>/dev/null; then
    [ -z "${COMPARE_VENV:-}" ] || die "COMPARE_VENV=$COMPARE_VENV: $python cannot import numpy and torch."
    echo "Installing torch and numpy into $venv (PyTorch's wheels are large: this takes a while)." >&2
    "$python" -m pip install --disable-pip-version-check -q torch numpy scikit-learn ||
        die "pip could not install torch and numpy into $venv (output above)."
fi

sgemm_args=()
if [ "$sgemm" = yes ]; then
    command -v cargo >/dev/null ||
        die "no cargo on the PATH for nabla's sgemm bench: install Rust or pass --no-sgemm."
    # Built now; run by compare.py after the workloads, so that neither disturbs the other.
    echo "Building nabla's sgemm bench: cargo bench --bench matmul --no-run" >&2
    cargo bench --bench matmul --no-run >&2 ||
        die "cargo bench --bench matmul --no-run failed (output above); --no-sgemm skips it."
    sgemm_args=(--sgemm)
fi

"$python" benches/compare.py --nabla "$nabla" --data "$data" --epochs "$epochs" --rounds "$rounds" \
    --workloads "$workloads" \
    ${sgemm_args[@]+"${sgemm_args[@]}"}
