#!/usr/bin/env bash
# The test command: installs Mesa's software Vulkan driver (lavapipe) where no Vulkan driver is present,
# then runs the whole test suite. GPU tests run on whatever adapter nabla picks (NABLA_ADAPTER overrides);
# they fail when there is none, unless NABLA_GPU_TESTS=off says to skip them.
set -euo pipefail
cd "$(dirname "$0")/.."

vulkan_driver_present() {
    ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' &&
        ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null | grep -q .
}

if [ "${NABLA_GPU_TESTS:-}" != off ] && ! vulkan_driver_present; then
    echo "No Vulkan driver found: installing Mesa's lavapipe (mesa-vulkan-drivers, libvulkan1)."
    if ! command -v apt-get >/dev/null; then
        echo "error: no apt-get here. Install a Vulkan driver for your GPU (or Mesa's lavapipe), or run" >&2
        echo "       NABLA_GPU_TESTS=off $0 to run the CPU tests alone." >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

# lavapipe's window-system code complains when this is unset; compute needs no display.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# Library, binary and integration tests (the crate has no doc-tests).
cargo test --release --lib --bins --tests "$@"
