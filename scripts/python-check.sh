#!/usr/bin/env bash
# Checks that examples/python/evaluate.py, a NumPy client with no nabla code, reads nabla's checkpoints as
# nabla does: trains two small models (one with batch norm, one on raw 0–255 pixels), evaluates each with
# `nabla eval` and with the script, and fails unless their test accuracies agree to 0.02 percentage points.
#
#   scripts/python-check.sh [--nabla BINARY] [CHECKPOINT...]
#
# BINARY (or $NABLA) is the nabla to use, by default the newer of target/release/nabla and
# target/debug/nabla. CHECKPOINTs are compared too, besides the two models trained here. The script
# keeps a virtual environment with evaluate.py's requirements in target/python-venv (made with
# `python3 -m venv`, filled by pip); on Debian it installs python3-venv when venv does not work. Without
# a usable python3, venv or pip it fails, unless NABLA_PYTHON_TESTS=off says to skip the check.
set -euo pipefail
cd "$(dirname "$0")/.."

# Why 0.02 points: NumPy's float32 products sum in a different order from nabla's kernels, so a logit
# can differ in its last bits, which flips the arg-max of an image whose two best classes are that close.
# Allowing 2 such images in MNIST's 10 000 is 0.02%; a real disagreement (a transposed weight, a wrong
# constant or input scale) costs far more.
TOLERANCE=0.02

if [ "${NABLA_PYTHON_TESTS:-}" = off ]; then
    echo "python-check: skipped (NABLA_PYTHON_TESTS=off)."
    exit 0
fi

nabla="${NABLA:-}"
checkpoints=()
while [ $# -gt 0 ]; do
    case "$1" in
        --nabla) nabla="${2:?--nabla needs a path}"; shift 2 ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) checkpoints+=("$1"); shift ;;
    esac
done
if [ -z "$nabla" ]; then
    # The newer of the release and debug builds: an old one may lack flags used below.
    for candidate in target/release/nabla target/debug/nabla; do
        if [ -x "$candidate" ] && { [ -z "$nabla" ] || [ "$candidate" -nt "$nabla" ]; }; then
            nabla="$candidate"
        fi
    done
fi
if [ -z "$nabla" ] || [ ! -x "$nabla" ]; then
    echo "error: no nabla binary${nabla:+ at $nabla}: build one or pass --nabla PATH" >&2
    exit 1
fi

unusable() {
    echo "error: $1" >&2
    echo "       This check needs python3 (3.9 or newer) with venv and pip, and pip able to install" >&2
    echo "       examples/python/requirements.txt. Set NABLA_PYTHON_TESTS=off to skip it." >&2
    exit 1
}

command -v python3 >/dev/null || unusable "no python3 on the PATH."
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null ||
    unusable "$(python3 --version 2>&1 || echo python3) is too old or does not run."

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

venv=target/python-venv
python="$venv/bin/python"
requirements=examples/python/requirements.txt

make_venv() {
    rm -rf "$venv"
    python3 -m venv "$venv" >"$tmp/venv.log" 2>&1 && "$python" -m pip --version >/dev/null 2>&1
}

if ! "$python" -c '' 2>/dev/null; then
    echo "Creating a Python virtual environment in $venv."
    if ! make_venv; then
        # Debian's python3 keeps venv's pip bootstrap (ensurepip) in a separate package.
        system_python="$(python3 -c 'import sys; print(sys.base_prefix == "/usr")')"
        if command -v apt-get >/dev/null && [ "$system_python" = True ]; then
            echo "python3 -m venv failed: installing Debian's venv support (python3-venv)."
            sudo=""
            [ "$(id -u)" -ne 0 ] && sudo=sudo
            $sudo apt-get update -qq || unusable "apt-get update failed."
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null ||
                unusable "installing python3-venv failed."
        fi
        if ! make_venv; then
            cat "$tmp/venv.log" >&2
            rm -rf "$venv"
            unusable "python3 -m venv $venv failed (output above)."
        fi
    fi
fi

# Install the requirements unless this exact list is installed already (a copy of it marks that).
if ! cmp -s "$requirements" "$venv/requirements.txt" ||
    ! "$python" -c 'import numpy, safetensors' 2>/dev/null; then
    echo "Installing examples/python/requirements.txt into $venv."
    "$python" -m pip install --disable-pip-version-check -q -r "$requirements" ||
        unusable "pip could not install $requirements (output above)."
    cp "$requirements" "$venv/requirements.txt"
fi

# `test accuracy 93.11% on 10000 images` -> `93.11 10000`
accuracy() {
    sed -n 's/.*test accuracy \([0-9][0-9.]*\)% on \([0-9][0-9]*\) images.*/\1 \2/p' <<<"$1" | head -n 1
}

failures=0
compare() {
    local model="$1" out ours theirs
    if ! out="$("$nabla" eval --device cpu --model "$model" 2>"$tmp/stderr")"; then
        cat "$tmp/stderr" >&2
        echo "error: nabla eval failed on $model" >&2
        exit 1
    fi
    theirs="$(accuracy "$out")"
    [ -n "$theirs" ] || { echo "error: no accuracy in nabla eval's output: $out" >&2; exit 1; }
    if ! out="$("$python" examples/python/evaluate.py --model "$model")"; then
        echo "FAIL $model: evaluate.py failed (message above)" >&2
        failures=$((failures + 1))
        return
    fi
    ours="$(accuracy "$out")"
    [ -n "$ours" ] || { echo "error: no accuracy in evaluate.py's output: $out" >&2; exit 1; }
    read -r nabla_acc nabla_n <<<"$theirs"
    read -r numpy_acc numpy_n <<<"$ours"
    if [ "$nabla_n" = "$numpy_n" ] && awk -v a="$nabla_acc" -v b="$numpy_acc" -v t="$TOLERANCE" \
        'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t + 1e-9) }'; then
        echo "ok   $model: nabla eval ${nabla_acc}%, evaluate.py ${numpy_acc}% on $numpy_n images"
    else
        echo "FAIL $model: nabla eval ${nabla_acc}% on $nabla_n images, evaluate.py ${numpy_acc}% on" \
            "$numpy_n images: more than $TOLERANCE points apart" >&2
        failures=$((failures + 1))
    fi
}

train() {
    local out="$1"
    shift
    if ! "$nabla" train --device cpu --train-images 5000 --epochs 1 --out "$tmp/$out.safetensors" \
        --metrics "$tmp/$out.csv" "$@" >"$tmp/train.log" 2>&1; then
        cat "$tmp/train.log" >&2
        echo "error: $nabla train $* failed (output above)" >&2
        exit 1
    fi
}

echo "Training three small models with $nabla."
train bn --batch-norm
# GELU, not the default ReLU, for the 0–255 model: a ReLU network with small biases scores nearly the
# same on pixels × 1/255 as on raw pixels, so it would hide a client that ignores nabla.input_scale.
train raw --no-normalise --lr 1e-4 --activation gelu
# A CNN with padding, a stride, both poolings and an explicit flatten.
train cnn --arch "conv 6x5x5 pad 2, relu, avg_pool 2, conv 8x3x3 stride 2, relu, max_pool 2 stride 1, flatten, dense 10"
for model in "$tmp/bn.safetensors" "$tmp/raw.safetensors" "$tmp/cnn.safetensors" ${checkpoints[@]+"${checkpoints[@]}"}; do
    compare "$model"
done
if [ "$failures" -gt 0 ]; then
    echo "python-check: FAILED: evaluate.py disagrees with nabla eval on $failures checkpoint(s)." >&2
    exit 1
fi
echo "python-check: evaluate.py agrees with nabla eval."
