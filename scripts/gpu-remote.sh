#!/usr/bin/env bash
# Runs a pack made by scripts/gpu-pack.sh (which copies this file to .gpu-pack/remote.sh) on a Linux
# x86-64 machine with a GPU driver but no Rust toolchain and no network.
#
# Usage: bash .gpu-pack/remote.sh [test|bench|all] [kernels filter]
#   test   every test executable, each under a timeout (TEST_TIMEOUT seconds, default 300), with counts
#   bench  `nabla bench --backends gpu`, the criterion `kernels` bench (only the benchmarks matching the
#          filter, e.g. `gpu`, if one is given), the `matmul` bench, and `nabla train --device gpu --epochs 2`
#   all    both (the default)
# With the device tool (10 minutes a call): carry [".gpu-pack"], and run `test` and `bench` as two calls,
#   e.g. `set -o pipefail; bash .gpu-pack/remote.sh test 2>&1 | tee $OUT/console.txt`, then `bench gpu`.
# Logs go directly into $OUT if set, else ./gpu-results: info.txt, tests.txt, bench.txt, bench.json,
# kernels.txt, matmul.txt, train.txt (7 files; room for one console log within a limit of 8).
# Exits 1 when a test or a run failed; a failure never stops the runs after it.
set -euo pipefail
what=${1:-all}
filter=${2:-}
case $what in test | bench | all) ;; *) echo "usage: $0 [test|bench|all] [kernels filter]" >&2; exit 2 ;; esac
pack=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$(pwd)/gpu-results}
mkdir -p "$out"
work=$(mktemp -d /tmp/nabla-gpu.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0

# The Vulkan loader, unpacked privately (no root needed) when the system has none.
if ! ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; then
    for deb in "$pack"/deb/*.deb; do
        if [ -f "$deb" ]; then dpkg -x "$deb" "$work/vulkan"; else echo "warning: no loader .deb in the pack" >&2; fi
    done
    export LD_LIBRARY_PATH=$work/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
# NVIDIA's container driver ships its ICD outside the loader's search path: name it unless one is found.
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$icd" ] &&
    ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
    export VK_DRIVER_FILES=$icd
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$work}
# Criterion would otherwise write its reports into ./target.
export CRITERION_HOME=$work/criterion
[ -f "$pack/font.ttf" ] && export NABLA_FONT=$pack/font.ttf

bin=$work/bin
mkdir -p "$bin" && tar xJf "$pack/bin.tar.xz" -C "$bin"
# The tests read CARGO_MANIFEST_DIR/data/mnist, the path they were compiled with: recreate it here.
data=$(cat "$pack/manifest_dir")/data
if ! ls "$data"/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte >/dev/null 2>&1; then
    if ! mkdir -p "$data" 2>/dev/null || [ ! -w "$data" ]; then
        echo "warning: cannot write $data: the tests that read MNIST will fail" >&2
        data=$work/data && mkdir -p "$data"
    fi
    tar xJf "$pack/mnist.tar.xz" -C "$data"
fi
mnist=$data/mnist

# step NAME SECONDS COMMAND...: runs COMMAND under a timeout, logs to $out/NAME, records a failure.
step() {
    local name=$1 limit=$2
    shift 2
    local rc=0
    echo "== $name: $*"
    timeout -k 10 "$limit" "$@" >"$out/$name" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then echo "!! $name failed (exit $rc; 124 is the timeout)"; status=1; fi
}

step info.txt 60 bash -c "command -v nvidia-smi >/dev/null && nvidia-smi -L
    env | grep -E '^(VK_|LD_LIBRARY|NABLA_)'; '$bin/nabla' info"
cat "$out/info.txt"

if [ "$what" != bench ]; then
    passed=0 failed=0
    : >"$out/tests.txt"
    for exe in "$bin"/test_*; do
        name=${exe##*/test_} log=$work/test.log start=$SECONDS
        rc=0
        timeout -k 10 "${TEST_TIMEOUT:-300}" "$exe" >"$log" 2>&1 || rc=$?
        # "test result: ok. 12 passed; 0 failed; ..."; none when the executable crashed or timed out.
        pattern='s/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed;.*/\1 \2/p'
        read -r p f < <(sed -n "$pattern" "$log" | tail -1) || true
        if [ -z "${p:-}" ]; then p=0 f=1; fi
        passed=$((passed + p)) failed=$((failed + f))
        [ "$rc" -ne 0 ] && status=1
        echo "$name: exit $rc, $p passed, $f failed, $((SECONDS - start))s"
        grep -E '^test .* FAILED$' "$log" || true
        { echo "===== $name: exit $rc"; cat "$log"; } >>"$out/tests.txt"
        unset p f
    done
    echo "tests: $passed passed, $failed failed (a crash or timeout counts as one failure)"
fi

if [ "$what" != test ]; then
    step bench.txt 300 "$bin/nabla" bench --backends gpu --data "$mnist" --json "$out/bench.json"
    grep '^|' "$out/bench.txt" || true
    step kernels.txt 300 "$bin/bench_kernels" --bench ${filter:+"$filter"}
    grep -B1 'time:' "$out/kernels.txt" | grep -v '^--$' || true
    step matmul.txt 200 "$bin/bench_matmul"
    cat "$out/matmul.txt"
    step train.txt 300 "$bin/nabla" train --device gpu --epochs 2 --data "$mnist" \
        --out "$work/model.safetensors" --metrics "$work/metrics.csv"
    [ -f "$work/metrics.csv" ] && cat "$work/metrics.csv" >>"$out/train.txt"
    grep -E '^(device|epoch|test accuracy)|metrics|error' "$out/train.txt" || true
fi
exit "$status"
