#!/usr/bin/env bash
# Checks that examples/python/evaluate.py, a NumPy client with no nabla code, reads nabla's checkpoints as
# nabla does. MNIST: trains three small models (one with batch norm, one on raw 0–255 pixels, a CNN)
# and four recurrent ones (LSTM, GRU, RNN, and an LSTM feeding its states to a GRU), evaluates each with
# `nabla eval` and with the script, and fails unless their test accuracies agree to 0.02 percentage
# points. Tables: trains a regression (wine quality), a binary classifier (a generated table with a text
# column) and a 3-class one (iris), and fails unless the script's per-row predictions match `nabla
# predict`'s and its figures on the whole table match `nabla eval`'s.
#
#   scripts/python-check.sh [--nabla BINARY] [CHECKPOINT...]
#
# BINARY (or $NABLA) is the nabla to use, by default the newer of target/release/nabla and
# target/debug/nabla. CHECKPOINTs (MNIST models) are compared too, besides the models trained here. The
# script keeps a virtual environment with evaluate.py's requirements in target/python-venv (made with
# `python3 -m venv`, filled by pip); on Debian it installs python3-venv when venv does not work. Without
# a usable python3, venv or pip it fails, unless NABLA_PYTHON_TESTS=off says to skip the check.
set -euo pipefail
cd "$(dirname "$0")/.."

# Why 0.02 points: NumPy's float32 products sum in a different order from nabla's kernels, so a logit
# can differ in its last bits, which flips the arg-max of an image whose two best classes are that close.
# Allowing 2 such images in MNIST's 10 000 is 0.02%; a real disagreement (a transposed weight, a wrong
# constant or input scale) costs far more.
TOLERANCE=0.02
# And every test image's ten probabilities. Measured here (float32 logits summed in another order): at
# most 1.8e-6 for the default model, 8.7e-7 with batch norm, 2e-7 for the CNN and 3.6e-5 for the model
# fed raw 0-255 pixels (its logits' terms are 255 times larger, and so is their rounding); for the
# recurrent models at most 2.3e-6 (the LSTM: 1.5e-6 in NumPy, 2.3e-6 in PyTorch; the GRU, the RNN and
# the stack under 1e-6). 1e-4 leaves a margin of about 3 over the worst, while a constant that moves the
# logits by 1e-3 moves an uncertain image's probabilities by up to 2.5e-4, and MNIST's test set has such
# images.
MNIST_PROBABILITY_TOLERANCE=1e-4

if [ "${NABLA_PYTHON_TESTS:-}" = off ]; then
    echo "python-check: skipped (NABLA_PYTHON_TESTS=off)."
    exit 0
fi

nabla="${NABLA:-}"
checkpoints=()
while [ $# -gt 0 ]; do
    case "$1" in
        --nabla) nabla="${2:?--nabla needs a path}"; shift 2 ;;
        -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

# shellcheck source=scripts/python-venv.sh
. scripts/python-venv.sh
ensure_venv "$venv" unusable

# Install the requirements unless this exact list is installed already (a copy of it marks that).
if ! cmp -s "$requirements" "$venv/requirements.txt" ||
    ! "$python" -c 'import numpy, safetensors' 2>/dev/null; then
    echo "Installing examples/python/requirements.txt into $venv."
    "$python" -m pip install --disable-pip-version-check -q -r "$requirements" ||
        unusable "pip could not install $requirements (output above)."
    cp "$requirements" "$venv/requirements.txt"
fi

# `test accuracy 93.11% on 10000 images` (evaluate.py; nabla eval says `samples`) -> `93.11 10000`
accuracy() {
    sed -n -E 's/.*test accuracy ([0-9][0-9.]*)% on ([0-9]+) (images|samples).*/\1 \2/p' <<<"$1" | head -n 1
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
        return
    fi
    # Every test image's ten probabilities, not just the accuracy: `nabla predict` on the IDX directory
    # against evaluate.py's, to MNIST_PROBABILITY_TOLERANCE.
    if ! "$nabla" predict --device cpu --model "$model" --input data/mnist --output "$tmp/mnist-nabla.csv" \
        2>"$tmp/stderr" ||
        ! "$python" examples/python/evaluate.py --model "$model" --predictions "$tmp/mnist-numpy.csv" \
            >/dev/null; then
        cat "$tmp/stderr" >&2
        echo "FAIL $model: the per-image predictions could not be written (messages above)" >&2
        failures=$((failures + 1))
        return
    fi
    if ! "$python" "$tmp/compare_mnist.py" "$model" "$tmp/mnist-nabla.csv" "$tmp/mnist-numpy.csv" \
        "$MNIST_PROBABILITY_TOLERANCE"; then
        failures=$((failures + 1))
        return
    fi
    # PyTorch loads the same file with load_state_dict(strict=True) and must agree as closely.
    [ -n "$torch_python" ] || return 0
    if ! "$torch_python" examples/python/torch_load.py --model "$model" \
        --predictions "$tmp/mnist-torch.csv" 2>"$tmp/stderr" ||
        ! "$python" "$tmp/compare_mnist.py" "$model (PyTorch)" "$tmp/mnist-nabla.csv" \
            "$tmp/mnist-torch.csv" "$MNIST_PROBABILITY_TOLERANCE"; then
        cat "$tmp/stderr" >&2
        failures=$((failures + 1))
    fi
}

# PyTorch is optional (its wheels are gigabytes): NABLA_TORCH_PYTHON names a Python that has torch,
# numpy and safetensors, or the check's own environment may have it. Without it, the check says so.
torch_python="${NABLA_TORCH_PYTHON:-}"
if [ -z "$torch_python" ] && "$python" -c 'import torch' 2>/dev/null; then
    torch_python="$python"
fi

# The per-image comparison: the same header and rows, every probability within the tolerance, and the
# same class except where evaluate.py's top two probabilities are within the tolerance (a near tie).
cat >"$tmp/compare_mnist.py" <<'EOF'
import csv, sys
model, ours, theirs, tolerance = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
a, b = list(csv.reader(open(ours))), list(csv.reader(open(theirs)))
if a[0] != b[0] or len(a) != len(b):
    sys.exit(f"FAIL {model}: the prediction files differ in shape: {a[0]} x {len(a)}, {b[0]} x {len(b)}")
worst, flipped = 0.0, 0
for r, s in zip(a[1:], b[1:]):
    p, q = [float(v) for v in r[2:]], [float(v) for v in s[2:]]
    worst = max(worst, max(abs(x - y) for x, y in zip(p, q)))
    top = sorted(q)[-2:]
    if r[1] != s[1] and top[1] - top[0] > tolerance:
        flipped += 1
if worst > tolerance or flipped:
    sys.exit(f"FAIL {model}: probabilities differ by up to {worst:.2g} (tolerance {tolerance}), "
             f"{flipped} class(es) differ beyond near ties")
print(f"ok   {model}: {len(a) - 1} images' probabilities agree (max |diff| {worst:.2g})")
EOF

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

echo "Training seven small models with $nabla."
train bn --batch-norm
# GELU, not the default ReLU, for the 0–255 model: a ReLU network with small biases scores nearly the
# same on pixels × 1/255 as on raw pixels, so it would hide a client that ignores nabla.input_scale.
train raw --no-normalise --lr 1e-4 --activation gelu
# A CNN with padding, a stride, both poolings and an explicit flatten.
train cnn --arch "conv 6x5x5 pad 2, relu, avg_pool 2, conv 8x3x3 stride 2, relu, max_pool 2 stride 1, flatten, dense 10"
# Recurrent models, each image a sequence of its rows (`input 28x28`): 200 steps of 25 images at a high
# rate, enough to move the weights well away from their initial values (60-70% test accuracy). The RNN
# reads `steps 14` (two rows a step) and the stack passes every LSTM state (`seq`) to the GRU, so that
# both ways of reading a sequence are checked; the LSTMs start from `chrono` and `forget-bias` biases, so
# that the clients read both words.
recurrent=(--batch 25 --lr 1e-2 --clip-norm 1)
train lstm "${recurrent[@]}" --arch "input 28x28, lstm 16 chrono, dense 10"
train gru "${recurrent[@]}" --arch "input 28x28, gru 16, dense 10"
train rnn "${recurrent[@]}" --arch "input 28x28, rnn 16 steps 14, dense 10"
train stack "${recurrent[@]}" --arch "input 28x28, lstm 16 seq forget-bias, gru 8, dense 10"
for model in "$tmp"/{bn,raw,cnn,lstm,gru,rnn,stack}.safetensors ${checkpoints[@]+"${checkpoints[@]}"}; do
    compare "$model"
done

# Tables: the same file through `nabla predict` and `evaluate.py --table`, row by row. Each predicted value
# (a regression's values, a class's probability) must agree to 1e-4 relative + 1e-4 absolute (float32 sums
# in another order differ in their last bits, ~1e-7); each predicted class must agree, except in a row
# whose classes nearly tie (|logit| below 1e-4 for two classes, the two best probabilities within 1e-4 for
# more), where that last-bit difference may flip it. The figures on the whole table (`nabla eval --test`
# the same file) must agree to their printed digits: RMSE, MAE and R² to 1.5e-4 (4 decimals, one rounding
# step apart at most), the accuracy to 0.01 points plus any near-tie rows that flipped.
cat >"$tmp/compare.py" <<'EOF'
import csv, math, re, sys

name, nabla_csv, numpy_csv, nabla_eval, numpy_eval = sys.argv[1:]
TIE = 1e-4


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def near_tie(probs):
    if len(probs) == 2:  # one logit, or two: ln(p1/p0) is their difference
        return min(probs) > 0 and abs(math.log(probs[1] / probs[0])) < TIE
    top = sorted(probs)[-2:]
    return top[1] - top[0] < TIE


ours, theirs = read(nabla_csv), read(numpy_csv)
problems, header = [], ours[0]
if theirs[0] != header:
    sys.exit(f"FAIL {name}: headers differ: nabla predict {header}, evaluate.py {theirs[0]}")
if len(theirs) != len(ours):
    sys.exit(f"FAIL {name}: nabla predict wrote {len(ours) - 1} rows, evaluate.py {len(theirs) - 1}")
classes = header[1] == "class"
values = [j for j in range(1, len(header)) if header[j] != "class"]
max_abs = max_rel = 0.0
ties = 0
for a, b in zip(ours[1:], theirs[1:]):
    if a[0] != b[0]:
        problems.append(f"sample `{a[0]}` is `{b[0]}` in evaluate.py's file")
    for j in values:
        x, y = float(a[j]), float(b[j])
        d = abs(x - y)
        max_abs = max(max_abs, d)
        max_rel = max(max_rel, d / abs(x)) if x else max_rel
        if not d <= 1e-4 + 1e-4 * abs(x):
            problems.append(f"sample {a[0]}, {header[j]}: nabla {a[j]}, evaluate.py {b[j]}")
    if classes and a[1] != b[1]:
        if near_tie([float(a[j]) for j in values]) or near_tie([float(b[j]) for j in values]):
            ties += 1
        else:
            problems.append(f"sample {a[0]}: class {a[1]} in nabla's file, {b[1]} in evaluate.py's")
rows = len(ours) - 1

# The figures: nabla eval's `... test RMSE 0.6374 MAE 0.5007 R² 0.3767 on 1599 samples` (or `test
# accuracy 97.50% on 300 samples`, then a confusion matrix) against evaluate.py's `RMSE ... on 1599 samples`.
nabla_line = nabla_eval.splitlines()[0] if nabla_eval else ""
count = [re.search(r" on (\d+) samples", t) for t in (nabla_line, numpy_eval)]
if not all(count) or {int(c.group(1)) for c in count} != {rows}:
    problems.append(f"figures not on {rows} samples: nabla eval `{nabla_line}`, evaluate.py `{numpy_eval}`")
if classes:
    found = [re.findall(r"accuracy ([0-9.]+)%", t) for t in (nabla_line, numpy_eval)]
    tolerance = 100 * ties / rows + 0.01 + 1e-9
else:
    found = [re.findall(r"RMSE (\S+) MAE (\S+) R² (\S+)", t) for t in (nabla_line, numpy_eval)]
    found = [[v for triple in f for v in triple] for f in found]
    tolerance = 1.5e-4
if not found[0] or len(found[0]) != len(found[1]) or any(
    not abs(float(x) - float(y)) <= tolerance for x, y in zip(*found)
):
    problems.append(f"figures differ: nabla eval `{nabla_line}`, evaluate.py `{numpy_eval}`")

if problems:
    print(f"FAIL {name}: evaluate.py disagrees with nabla on {len(problems)} point(s):", file=sys.stderr)
    for p in problems[:10]:
        print(f"       {p}", file=sys.stderr)
    sys.exit(1)
agree = f"classes agree on {rows - ties} ({ties} near ties differ), " if classes else ""
kind = "accuracy %" if classes else "RMSE MAE R²"
print(f"ok   {name}: {rows} rows, {agree}values agree (max |diff| {max_abs:.2g}, max relative "
      f"{max_rel:.2g}); {kind}: nabla eval {' '.join(found[0])}, evaluate.py {' '.join(found[1])}")
EOF

# A binary task with a text column: 300 rows, two numeric columns on unlike scales, a text column (one
# category holds a comma, so it is quoted), and the target (yes/no) among them, not last.
"$python" - "$tmp/buyers.csv" <<'EOF'
import csv, random, sys

rng = random.Random(7)
effect = {"red": 1.0, "green": -0.6, "light blue": 0.0, "dark, red": 0.6}
with open(sys.argv[1], "w", newline="") as f:
    out = csv.writer(f, lineterminator="\n")
    out.writerow(["size", "buys", "colour", "weight"])
    for _ in range(300):
        size, weight, colour = rng.uniform(1, 10), rng.gauss(50, 15), rng.choice(sorted(effect))
        score = 0.5 * (size - 5.5) - 0.08 * (weight - 50) + effect[colour] + rng.gauss(0, 0.5)
        out.writerow([f"{size:.3f}", "yes" if score > 0 else "no", colour, f"{weight:.2f}"])
EOF

compare_table() {
    local name="$1" table="$2" target="$3" model="$tmp/$4.safetensors" figures numpy_figures
    if ! "$nabla" predict --device cpu --model "$model" --input "$table" --output "$tmp/$4-nabla.csv" \
        >/dev/null 2>"$tmp/stderr" ||
        ! figures="$("$nabla" eval --device cpu --model "$model" --data "$table" --test "$table" \
            --target "$target" 2>"$tmp/stderr")"; then
        cat "$tmp/stderr" >&2
        echo "error: nabla predict or eval failed on $model" >&2
        exit 1
    fi
    if ! numpy_figures="$("$python" examples/python/evaluate.py --model "$model" --table "$table" \
        --target "$target" --predictions "$tmp/$4-numpy.csv" 2>"$tmp/stderr")"; then
        cat "$tmp/stderr" >&2
        echo "FAIL $name: evaluate.py --table failed (message above)" >&2
        failures=$((failures + 1))
        return
    fi
    "$python" "$tmp/compare.py" "$name" "$tmp/$4-nabla.csv" "$tmp/$4-numpy.csv" "$figures" \
        "$numpy_figures" || failures=$((failures + 1))
}

# The wine and iris tables come with the linfa-datasets crate, which cargo unpacks to build the tests.
tables="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/linfa-datasets-0.8.1/data 2>/dev/null |
    head -n 1)"
if [ -z "$tables" ]; then
    echo "error: no linfa-datasets-0.8.1 tables in the cargo registry (cargo fetches them to build the" >&2
    echo "       tests: run cargo test, or cargo fetch, first)" >&2
    exit 1
fi
echo "Training three small models of tables with $nabla."
table_train() {
    local out="$1"
    shift
    if ! "$nabla" train --device cpu --out "$tmp/$out.safetensors" --metrics "$tmp/$out-metrics.csv" "$@" \
        >"$tmp/train.log" 2>&1; then
        cat "$tmp/train.log" >&2
        echo "error: $nabla train $* failed (output above)" >&2
        exit 1
    fi
}
table_train wine --data "$tables/winequality-red.csv.gz" --target quality --task regression --epochs 3
table_train buyers --data "$tmp/buyers.csv" --target buys --epochs 5
table_train iris --data "$tables/iris.csv.gz" --target species --epochs 5
compare_table "wine (regression)" "$tables/winequality-red.csv.gz" quality wine
compare_table "buyers (binary, a text column)" "$tmp/buyers.csv" buys buyers
compare_table "iris (3 classes)" "$tables/iris.csv.gz" species iris

if [ "$failures" -gt 0 ]; then
    echo "python-check: FAILED: evaluate.py disagrees with nabla on $failures model(s)." >&2
    exit 1
fi
echo "python-check: evaluate.py agrees with nabla eval and nabla predict."
if [ -n "$torch_python" ]; then
    echo "python-check: PyTorch loads the MNIST checkpoints with load_state_dict(strict=True) and agrees."
else
    echo "python-check: SKIPPED the PyTorch check: no torch (set NABLA_TORCH_PYTHON to a Python with" \
        "torch, numpy and safetensors)." >&2
fi
