#!/usr/bin/env bash
# nabla in the browser.
#   scripts/web.sh build   builds the page into web/www: the library compiled to WebAssembly
#                          (web/, wasm32-unknown-unknown, release), its JavaScript bindings (web/www/pkg)
#                          and the MNIST files that `cargo run --release` fetched (web/www/data).
#                          Installs the wasm target and wasm-bindgen-cli (pinned to the crate's
#                          version) when they are missing.
#   scripts/web.sh serve [PORT]
#                          serves web/www on http://127.0.0.1:PORT/ (default 8080) with Node.js.
set -euo pipefail
cd "$(dirname "$0")/.."

data="${NABLA_DATA:-data/mnist}"
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

build() {
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        echo "Installing the wasm32-unknown-unknown target."
        rustup target add wasm32-unknown-unknown
    fi
    cargo build --manifest-path web/Cargo.toml --target-dir web/target --target wasm32-unknown-unknown \
        --release
    # The CLI must be the version of the wasm-bindgen crate the build linked, or the bindings break.
    local version
    version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' web/Cargo.lock)
    if [ "$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }')" != "$version" ]; then
        echo "Installing wasm-bindgen-cli $version."
        # Not --locked: its lock file pins versions of its own dependencies that registries may lack.
        cargo install wasm-bindgen-cli --version "$version"
    fi
    rm -rf web/www/pkg
    wasm-bindgen --target web --no-typescript --out-dir web/www/pkg \
        web/target/wasm32-unknown-unknown/release/nabla_web.wasm
    mkdir -p web/www/data
    for f in "${files[@]}"; do
        if [ ! -f "$data/$f" ]; then
            echo "error: $data/$f is missing. \`cargo run --release\` fetches MNIST into $data;" >&2
            echo "       run it once (or set NABLA_DATA to where the four IDX files are)." >&2
            exit 1
        fi
        cp -u "$data/$f" web/www/data/
    done
    echo "Built web/www ($(gzip -9 -c web/www/pkg/nabla_web_bg.wasm | wc -c) bytes of wasm, gzipped)." \
        "Serve it with: scripts/web.sh serve"
}

case "${1:-}" in
build) build ;;
serve) exec node web/serve.mjs "${2:-8080}" ;;
*)
    echo "usage: $0 build | serve [PORT]" >&2
    exit 2
    ;;
esac
