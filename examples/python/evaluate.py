#!/usr/bin/env python3
"""Evaluates a nabla checkpoint with NumPy alone: no nabla code, no PyTorch. On the MNIST test set:

    python3 examples/python/evaluate.py --model runs/model.safetensors [--data data/mnist]

or, for a model trained on a CSV table, on any table with the same columns:

    python3 examples/python/evaluate.py --model wine.safetensors --table wine.csv.gz --target quality \
        [--predictions out.csv]

A nabla checkpoint is a safetensors file. Its metadata says how to rebuild the model
(`nabla.architecture`, e.g. "input 784, dense 256, batch_norm, relu, dense 10") and how to turn pixel
bytes into inputs (`nabla.input_scale`, `nabla.input_shift`); a model of a table also records, in
`nabla.data`, its task, its columns (text columns one-hot over their categories), the standardisation of
its inputs and of its regression targets, and its class or target names. Its tensors are named as a
`torch.nn.Sequential` of the same layers names them: `{layer index}.{name}`, so layer 0's weights are
`0.weight`, and a recurrent layer's (rnn, lstm, gru) as PyTorch's nn.RNN, nn.LSTM and nn.GRU name
them: `0.weight_ih_l0`, `0.weight_hh_l0`, `0.bias_ih_l0`, `0.bias_hh_l0`. This script reads both and
runs the forward pass in float32; it then counts correct predictions, or for a table computes the
accuracy or RMSE, MAE and R², and writes the per-row predictions `nabla predict` writes.
"""

import argparse
import csv
import gzip
import json
import math
import re
import sys
import zlib
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

FORMAT = 2  # the newest checkpoint format this script reads
BATCH_NORM_EPS = 1e-5  # added to the variance before the square root, as in PyTorch
SELU_LAMBDA, SELU_ALPHA = 1.050701, 1.6732632  # Klambauer et al. 2017
GELU_C, GELU_K = 0.7978846, 0.044715  # sqrt(2/pi) and the cubic term's weight
GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # a recurrent cell's weight rows per unit (PyTorch's G)


def fail(message):
    """Stops with `message` on stderr and exit status 1."""
    sys.exit(f"error: {message}")


def sigmoid(x):
    # 1 / (1 + e^-x). For x < -88, e^-x overflows float32 to inf, which rightly gives 0.
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


# Each activation applies element-wise: y = f(x). Names and constants are nabla's (src/activation.rs).
ACTIVATIONS = {
    "identity": lambda x: x,
    "step": lambda x: (x > 0).astype(np.float32),  # 1 if x > 0 else 0
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),  # max(0, x)
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),  # x if x > 0 else 0.01x
    # x if x > 0 else e^x - 1 (alpha = 1); min(x, 0) keeps e^x from overflowing where it is unused.
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    # lambda*x if x > 0 else lambda*alpha*(e^x - 1)
    "selu": lambda x: SELU_LAMBDA * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "swish": lambda x: x * sigmoid(x),  # also called SiLU
    # GELU, tanh approximation: x/2 * (1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715x^3), written as the
    # equal x * sigmoid(2u). (PyTorch: nn.GELU(approximate="tanh"), not its default exact GELU.)
    "gelu": lambda x: x * sigmoid(2 * GELU_C * (x + GELU_K * x**3)),
    # ln(1 + e^x), written as max(x, 0) + ln(1 + e^-|x|) so that e^x never overflows
    "softplus": lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))),
}


# The parsers below raise ValueError on text they cannot read; load_checkpoint reports it.


def parse_shape(text):
    """"784" -> (784, 1, 1); "1x28x28" -> (1, 28, 28): channels, height, width; "28x28" (T steps of F
    features) -> (1, 28, 28)."""
    dims = tuple(int(d) for d in text.split("x"))
    if len(dims) not in (1, 2, 3) or min(dims) < 1:
        raise ValueError(f"input shape `{text}` is not like `784`, `28x28` or `1x28x28`")
    return {1: dims + (1, 1), 2: (1,) + dims, 3: dims}[len(dims)]


def parse_options(text, words, allowed):
    """The `stride S` and `pad P` pairs after a layer's size, as a dict."""
    options = {}
    if len(words) % 2:
        raise ValueError(f"layer `{text}`: after the size expected pairs like `stride 2`")
    for key, value in zip(words[::2], words[1::2]):
        if key not in allowed or key in options or int(value) < (1 if key == "stride" else 0):
            raise ValueError(f"layer `{text}`: after the size expected {' and '.join(allowed)}")
        options[key] = int(value)
    return options


def parse_recurrent(text, words):
    """`lstm 128 [seq] [steps T]` -> ("lstm", (units, sequence, steps or None)), likewise rnn and gru.
    An LSTM's `forget-bias` or `chrono` only chose its starting biases, so it is read and ignored."""
    gate_bias = " [forget-bias | chrono]" if words[0] == "lstm" else ""
    bad = ValueError(f"layer `{text}`: expected `{words[0]} UNITS [seq] [steps T]{gate_bias}`")
    units, sequence, steps, initialised = int(words[1]), False, None, False
    rest = iter(words[2:])
    for word in rest:  # `seq`, `steps T` and a gate bias, each at most once, in any order
        if word == "seq" and not sequence:
            sequence = True
        elif word == "steps" and steps is None:
            steps = int(next(rest, "0"))
            if steps < 1:
                raise bad
        elif word in ("forget-bias", "chrono") and gate_bias and not initialised:
            initialised = True
        else:
            raise bad
    if units < 1:
        raise bad
    return (words[0], (units, sequence, steps))


def parse_layer(text):
    """One layer: ("dense", 256), ("conv", (filters, kh, kw, stride, pad)), ("max_pool", (size, stride)),
    ("lstm", (units, sequence, steps)), ("flatten", None), ("batch_norm", None), ("dropout", 0.2),
    ("relu", None), ..."""
    words = text.split()
    if len(words) == 2 and words[0] == "dense" and int(words[1]) > 0:
        return ("dense", int(words[1]))
    if len(words) >= 2 and words[0] in GATES:
        return parse_recurrent(text, words)
    if len(words) >= 2 and words[0] == "conv":
        filters, kernel_h, kernel_w = (int(d) for d in words[1].split("x"))
        options = parse_options(text, words[2:], ("stride", "pad"))
        return ("conv", (filters, kernel_h, kernel_w, options.get("stride", 1), options.get("pad", 0)))
    if len(words) >= 2 and words[0] in ("max_pool", "avg_pool"):
        size = int(words[1])
        return (words[0], (size, parse_options(text, words[2:], ("stride",)).get("stride", size)))
    if words == ["flatten"]:
        return ("flatten", None)
    if len(words) == 2 and words[0] == "dropout":
        return ("dropout", float(words[1]))
    if len(words) == 1 and (words[0] == "batch_norm" or words[0] in ACTIVATIONS):
        return (words[0], None)
    raise ValueError(
        f"unknown layer `{text}`: this script knows dense N, conv OxKHxKW [stride S] [pad P], "
        f"max_pool K [stride S], avg_pool K [stride S], rnn|lstm|gru N [seq] [steps T] (lstm also "
        f"[forget-bias | chrono]), flatten, "
        f"batch_norm, dropout P and the activations {', '.join(ACTIVATIONS)} (is the checkpoint from a "
        f"newer nabla?)"
    )


def parse_architecture(text):
    """The input shape and layers of an architecture in either of nabla's spellings: a layer list,
    "input 784, dense 256, relu, dense 10", or the older shorthand "784-256-10 relu [dropout 0.5]"."""
    if text.strip().startswith("input"):
        first, *rest = [item.strip() for item in text.split(",")]
        return parse_shape(first.removeprefix("input")), [parse_layer(item) for item in rest]
    words = text.split()  # the shorthand: widths, activation, optionally "dropout P"
    if len(words) not in (2, 4) or words[1] not in ACTIVATIONS or words[2:3] not in ([], ["dropout"]):
        raise ValueError("it is neither a layer list nor of the form `784-256-10 relu`")
    widths = [int(w) for w in words[0].split("-")]
    layers = []
    for width in widths[1:-1]:  # each hidden layer: dense, activation, [dropout]
        layers += [("dense", width), (words[1], None)]
        if len(words) == 4:
            layers.append(("dropout", float(words[3])))
    return parse_shape(str(widths[0])), layers + [("dense", widths[-1])]


def timeline(shape, steps):
    """A recurrent layer's input of shape (C, H, W) as (T steps, F features): with `steps T`, its values
    (flattened) as T equal steps; else a 1 x T x F sample, step t its t-th row."""
    channels, height, width = shape
    size = channels * height * width
    if steps is not None:
        if size % steps:
            raise ValueError(f"an input of {size} values is not {steps} equal steps")
        return steps, size // steps
    if channels != 1 or height * width == 1:
        raise ValueError(f"a recurrent layer reads a 1xTxF input, or any with `steps T`; "
                         f"{channels}x{height}x{width} is neither")
    return height, width


def load_checkpoint(path, no_normalise, table=False):
    """The input shape, layers, tensors, input scaling and metadata of the checkpoint at `path`; with
    `table`, it must be a model of a table (have a `nabla.data` record)."""
    try:
        with safe_open(path, framework="np") as f:
            meta = f.metadata() or {}
        tensors = load_file(path)
    except Exception as e:  # a missing file, or not safetensors
        fail(f"cannot read {path} as a safetensors file: {e}")
    if "nabla.architecture" not in meta:
        fail(f"{path} has no `nabla.architecture` metadata: it is not a nabla model")
    fmt = meta.get("nabla.format", "1")  # format 1 files did not say
    if fmt not in [str(v) for v in range(1, FORMAT + 1)]:
        fail(f"{path} is checkpoint format `{fmt}`, newer than this script reads ({FORMAT})")
    if table and "nabla.data" not in meta:
        fail(f"{path} has no `nabla.data` record: it is not a model of a table (for MNIST, omit --table)")
    try:
        shape, layers = parse_architecture(meta["nabla.architecture"])
    except ValueError as e:
        fail(f"{path}: cannot read architecture `{meta['nabla.architecture']}`: {e}")
    if fmt == "1":
        # Format 1 named the k-th dense layer `dense.{k}`, its weight [in, out] and its bias [1, out].
        # Rename and reshape them to format 2's `{layer index}.weight` [out, in] and `.bias` [out].
        old, tensors = tensors, {}
        dense = [i for i, (kind, _) in enumerate(layers) if kind == "dense"]
        for k, i in enumerate(dense):
            for name in ["weight", "bias"]:
                if f"dense.{k}.{name}" not in old:
                    fail(f"{path} (format 1) has no tensor dense.{k}.{name}")
            tensors[f"{i}.weight"] = old[f"dense.{k}.weight"].T
            tensors[f"{i}.bias"] = old[f"dense.{k}.bias"].reshape(-1)
    # How pixel bytes become inputs: x = byte * scale + shift.
    if "nabla.input_scale" in meta and "nabla.input_shift" in meta:
        try:
            scale, shift = float(meta["nabla.input_scale"]), float(meta["nabla.input_shift"])
        except ValueError as e:
            fail(f"{path}: unreadable input scaling metadata ({e})")
    elif fmt != "1":
        fail(f"{path} (format {fmt}) lacks nabla.input_scale / nabla.input_shift metadata")
    else:  # format 1 did not record it; nabla trained on pixels / 255 unless told --no-normalise
        scale, shift = (1.0, 0.0) if no_normalise else (1 / 255, 0.0)
        hint = "" if no_normalise else " (--no-normalise if it was trained on 0-255 pixels)"
        print(f"note: {path} does not record its input scaling: multiplying pixels by {scale:.6g}{hint}",
              file=sys.stderr)
    check_tensors(path, shape, layers, tensors, meta.get("nabla.classes"))
    return shape, layers, tensors, np.float32(scale), np.float32(shift), meta


def check_tensors(path, shape, layers, tensors, classes):
    """Fails unless every layer's tensors are present, float32 and of the shape its input implies."""

    def expect(name, size):
        t = tensors.get(name)
        if t is None:
            fail(f"{path} has no tensor {name}")
        if t.dtype != np.float32 or t.shape != size:
            fail(f"tensor {name} is {t.dtype} {list(t.shape)}, expected float32 {list(size)}")
        if not np.isfinite(t).all():
            fail(f"tensor {name} holds NaN or infinity: was the model saved from a diverged run?")

    channels, height, width = shape
    for i, (kind, arg) in enumerate(layers):
        if kind == "dense":
            expect(f"{i}.weight", (arg, channels * height * width))
            expect(f"{i}.bias", (arg,))
            channels, height, width = arg, 1, 1
        elif kind == "conv":
            filters, kernel_h, kernel_w, stride, pad = arg
            expect(f"{i}.weight", (filters, channels, kernel_h, kernel_w))
            expect(f"{i}.bias", (filters,))
            if height + 2 * pad < kernel_h or width + 2 * pad < kernel_w:
                fail(f"layer {i}: a {kernel_h}x{kernel_w} window does not fit {height}x{width} + pad {pad}")
            channels = filters
            height, width = (height + 2 * pad - kernel_h) // stride + 1, (width + 2 * pad - kernel_w) // stride + 1
        elif kind in ("max_pool", "avg_pool"):
            size, stride = arg
            if height < size or width < size:
                fail(f"layer {i}: a {size}x{size} window does not fit {height}x{width}")
            height, width = (height - size) // stride + 1, (width - size) // stride + 1
        elif kind in GATES:
            units, sequence, steps = arg
            try:
                steps, features = timeline((channels, height, width), steps)
            except ValueError as e:
                fail(f"layer {i}: {e}")
            rows = GATES[kind] * units  # PyTorch's layout: the G gates' rows stacked
            expect(f"{i}.weight_ih_l0", (rows, features))
            expect(f"{i}.weight_hh_l0", (rows, units))
            expect(f"{i}.bias_ih_l0", (rows,))
            expect(f"{i}.bias_hh_l0", (rows,))
            channels, height, width = (1, steps, units) if sequence else (units, 1, 1)
        elif kind == "flatten":
            channels, height, width = channels * height * width, 1, 1
        elif kind == "batch_norm":
            for name in ["weight", "bias", "running_mean", "running_var"]:
                expect(f"{i}.{name}", (channels,))
    if height * width != 1:
        fail("the last layer outputs an image; a classifier must end with a dense layer")
    if classes is not None and classes != str(channels):
        fail(f"{path} says it has {classes} classes, but its last layer outputs {channels}")


def windows(x, kernel_h, kernel_w, stride, pad):
    """Every window of a [batch, C, H, W] batch, zero-padded by `pad`: [batch, C, OH, OW, KH, KW]."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    view = np.lib.stride_tricks.sliding_window_view(x, (kernel_h, kernel_w), axis=(2, 3))
    return view[:, :, ::stride, ::stride]


def recurrent(x, cell, units, sequence, steps, features, w_ih, w_hh, b_ih, b_hh):
    """A recurrent layer on a batch `x` [batch, T*F] of T steps of F features, step after step: the last
    state h_{T-1} [batch, H], or with `sequence` every state [batch, T*H], step after step. The cells are
    PyTorch's (nn.RNN with tanh, nn.LSTM, nn.GRU), from h_0 = c_0 = 0: W_ih [G*H, F] and W_hh [G*H, H]
    stack the G gates' rows in PyTorch's order, and so do b_ih and b_hh [G*H]."""
    n = len(x)
    # Every step's input term at once: a[:, t] = W_ih x_t + b_ih, [batch, T, G*H].
    a = x.reshape(n, steps, features) @ w_ih.T + b_ih
    h = np.zeros((n, units), dtype=np.float32)
    c = np.zeros((n, units), dtype=np.float32)  # the LSTM's cell state
    states = []
    for t in range(steps):
        r = h @ w_hh.T + b_hh  # the recurrent term W_hh h_{t-1} + b_hh, [batch, G*H]
        if cell == "rnn":
            # h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
            h = np.tanh(a[:, t] + r)
        elif cell == "lstm":
            # Gates i, f, g, o (input, forget, cell candidate, output), each H of the G*H:
            # i = s(.), f = s(.), g = tanh(.), o = s(.) of (W_i* x_t + b_i* + W_h* h_{t-1} + b_h*),
            # c_t = f * c_{t-1} + i * g, h_t = o * tanh(c_t)   (s = sigmoid, * element-wise)
            gi, gf, gg, go = np.split(a[:, t] + r, 4, axis=1)
            c = sigmoid(gf) * c + sigmoid(gi) * np.tanh(gg)
            h = sigmoid(go) * np.tanh(c)
        else:
            # Gates r, z (reset, update) and the candidate n:
            # r = s(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr), z likewise,
            # n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn)), h_t = (1 - z) * n + z * h_{t-1}
            xr, xz, xn = np.split(a[:, t], 3, axis=1)
            hr, hz, hn = np.split(r, 3, axis=1)
            reset, update = sigmoid(xr + hr), sigmoid(xz + hz)
            candidate = np.tanh(xn + reset * hn)
            h = (1 - update) * candidate + update * h
        states.append(h)
    return np.stack(states, axis=1).reshape(n, -1) if sequence else h


def forward(x, shape, layers, tensors):
    """The logits for a batch `x` of [batch, features] float32 inputs (an image's features are its
    C x H x W values, channel by channel, row-major)."""
    channels, height, width = shape
    for i, (kind, arg) in enumerate(layers):
        images = x.reshape(len(x), channels, height, width)
        if kind == "conv":
            # y[n, o, i, j] = b[o] + sum over c, u, v of W[o, c, u, v] x[n, c, i*S + u - P, j*S + v - P]
            # (zero outside the image): each window, unrolled, times the filters.
            filters, kernel_h, kernel_w, stride, pad = arg
            win = windows(images, kernel_h, kernel_w, stride, pad)
            n, c, out_h, out_w = win.shape[:4]
            rows = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_h * out_w, c * kernel_h * kernel_w)
            y = rows @ tensors[f"{i}.weight"].reshape(filters, -1).T + tensors[f"{i}.bias"]
            x = y.reshape(n, out_h, out_w, filters).transpose(0, 3, 1, 2).reshape(n, -1)
            channels, height, width = filters, out_h, out_w
        elif kind in ("max_pool", "avg_pool"):
            # The largest (or the mean) value of each size x size window, channel by channel.
            size, stride = arg
            win = windows(images, size, size, stride, 0)
            y = win.max(axis=(4, 5)) if kind == "max_pool" else win.mean(axis=(4, 5))
            height, width = y.shape[2:]
            x = y.reshape(len(x), -1)
        elif kind in GATES:
            units, sequence, steps = arg
            steps, features = timeline((channels, height, width), steps)
            names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
            weights = (tensors[f"{i}.{name}_l0"] for name in names)
            x = recurrent(x, kind, units, sequence, steps, features, *weights)
            channels, height, width = (1, steps, units) if sequence else (units, 1, 1)
        elif kind == "flatten":
            channels, height, width = channels * height * width, 1, 1  # the values stay in order
        elif kind == "dense":
            # y = x W^T + b, with W [out, in] and b [out]. An image input is flattened channel by
            # channel, row-major (C x H x W), which x already is.
            x = x @ tensors[f"{i}.weight"].T + tensors[f"{i}.bias"]
            channels, height, width = arg, 1, 1
        elif kind == "batch_norm":
            # y = gamma (x - running_mean) / sqrt(running_var + eps) + beta, per channel (per feature for
            # a flat input; for an image, one set of statistics per channel across its positions).
            gamma, beta, mean, var = (
                tensors[f"{i}.{name}"][:, None]  # [C, 1]: one value per channel, for all positions
                for name in ["weight", "bias", "running_mean", "running_var"]
            )
            x_c = x.reshape(len(x), channels, height * width)  # [batch, C, positions]
            x = (gamma * (x_c - mean) / np.sqrt(var + BATCH_NORM_EPS) + beta).reshape(len(x), -1)
        elif kind == "dropout":
            pass  # dropout is only active in training: at inference, y = x
        else:
            x = ACTIVATIONS[kind](x)
    return x


def read_idx(directory, name, magic):
    """The array in MNIST's IDX file `name` (or `name.gz`) in `directory`; `magic` is its magic number."""
    path = Path(directory) / name
    if not path.exists() and path.with_name(name + ".gz").exists():
        path = path.with_name(name + ".gz")
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(f"cannot read {path}: {e} (`nabla train` downloads MNIST to data/mnist)")
    # The header: big-endian 32-bit words, the magic number (0x08 = unsigned bytes, then the number of
    # dimensions), then each dimension's size. The bytes follow.
    words = 1 + (magic & 0xFF)
    header = [int.from_bytes(data[4 * i : 4 * i + 4], "big") for i in range(words)]
    if header[0] != magic or len(data) != 4 * words + math.prod(header[1:]):
        fail(f"{path} is not the MNIST IDX file it should be")
    return np.frombuffer(data, dtype=np.uint8, offset=4 * words).reshape(header[1:])


# ---- Tables -------------------------------------------------------------------------------------------
#
# A model trained on a CSV table records in `nabla.data` (JSON) how nabla read it, fitted on the training
# part: the task, the input columns in order (a numeric column is one feature; a text column is one
# feature per category, one-hot, over its sorted categories), the standardisation of those features
# (x = (v - mean[j]) / std[j]), for a regression the targets' mean and std (the model learns
# (t - mean) / std, so a prediction is out * std + mean), and the class or target names.

TASKS = {"classification", "binary", "regression"}
# A number as nabla (Rust's f32 parser) reads one: ASCII digits, an optional point and exponent. Python's
# float() would also take `1_000` or non-ASCII digits, which nabla refuses.
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
NOT_FINITE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
CSV_SPACE = " \t\n\r\x0c"  # what nabla's CSV reader trims from each field: ASCII whitespace


def number(text):
    """`text` as a float32 if it is a finite number as nabla reads one, else None (and why not)."""
    if NOT_FINITE.fullmatch(text):
        return None, "is not a finite number"
    if not NUMBER.fullmatch(text):
        return None, "is not a number"
    with np.errstate(over="ignore"):
        value = np.float32(float(text))  # decimal -> float64 -> float32; nabla rounds straight to f32
    if not np.isfinite(value):
        return None, "is not a finite number"  # beyond float32's range
    return value, None


def read_prep(path, meta, shape):
    """The checkpoint's `nabla.data` record as a dict, checked against the model's input `shape`:
    task, names, columns [(name, categories or None)], width, mean/std of the inputs (or None) and of
    the targets (regression; else None), outputs."""

    def bad(what):
        fail(f"{path}: the nabla.data record's {what} is invalid")

    def floats(v, what, n):
        if not isinstance(v, list) or len(v) != n or not all(isinstance(x, (int, float)) for x in v):
            bad(what)
        return np.array(v, dtype=np.float32)  # the record holds float32 values written as decimals

    def strings(v, what):
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            bad(what)
        return v

    try:
        record = json.loads(meta["nabla.data"])
    except ValueError:
        bad("JSON")
    if not isinstance(record, dict):
        bad("JSON")
    task = record.get("task")
    if task not in TASKS:
        bad("task")
    names = strings(record.get("names"), "names")
    schema = record.get("schema")
    if not isinstance(schema, dict) or "table" not in schema:
        kind = schema if isinstance(schema, str) else "something other than a table"
        fail(f"{path} was trained on {kind}, not a CSV table: --table reads models of tables")
    if not isinstance(schema["table"], list):
        bad("schema")
    columns = []
    for c in schema["table"]:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            bad("column name")
        categories = c.get("categories")
        if categories is not None:
            categories = strings(categories, f"categories of column `{c['name']}`")
        columns.append((c["name"], categories))
    width = sum(1 if cats is None else len(cats) for _, cats in columns)
    if record.get("shape") != str(width) or math.prod(shape) != width:
        fail(f"{path}: the table's columns make {width} features, but the model takes {shape[0]} "
             f"(nabla.data shape `{record.get('shape')}`)")
    scaling = record.get("scaling")
    if scaling == "identity":
        mean = std = None
    elif isinstance(scaling, dict) and isinstance(scaling.get("standard"), dict):
        mean = floats(scaling["standard"].get("mean"), "input mean", width)
        std = floats(scaling["standard"].get("std"), "input std", width)
    else:
        bad("scaling (a table's is `identity` or `standard`)")
    target = record.get("target")
    if (task == "regression") != (target is not None) or not isinstance(target, (dict, type(None))):
        bad("target scaling")
    if target is not None:
        target = (floats(target.get("mean"), "target mean", len(names)),
                  floats(target.get("std"), "target std", len(names)))
    outputs = 1 if task == "binary" else len(names)
    if task == "binary" and len(names) != 2 or task == "classification" and len(names) < 2:
        bad("names (classes)")
    return {"task": task, "names": names, "columns": columns, "width": width, "mean": mean, "std": std,
            "target": target, "outputs": outputs}


def read_table(path):
    """The header and rows of the CSV table at `path` (gunzipped when it ends in .gz), each field trimmed
    of ASCII whitespace, as nabla reads it. Rows are (line number, fields); empty lines are skipped."""
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    header, rows = None, []
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            for record in reader:
                if not record:
                    continue  # an empty line
                record = [field.strip(CSV_SPACE) for field in record]
                if header is None:
                    header = record
                    continue
                if len(record) != len(header):
                    fail(f"{path}: line {reader.line_num}: the row has {len(record)} fields where the "
                         f"header has {len(header)}")
                rows.append((reader.line_num, record))
    except UnicodeDecodeError:
        fail(f"{path}: the text is not valid UTF-8")
    except (OSError, EOFError, zlib.error, csv.Error) as e:  # missing, unreadable, a broken .gz
        fail(f"cannot read {path}: {e}")
    if header is None or all(name == "" for name in header):
        fail(f"{path}: the file is empty: a CSV table needs a header row naming its columns")
    for i, name in enumerate(header):
        if name == "":
            fail(f"{path}: column {i + 1} has no name in the header")
        if name in header[:i]:
            fail(f"{path}: column `{name}` is named twice in the header")
    if not rows:
        fail(f"{path}: the table has a header but no rows")
    return header, rows


def column_index(path, header, name, needed=None):
    """Where column `name` is in the header; `needed` lists the model's input columns (None for a
    --target column)."""
    if name not in header:
        if needed is None:
            fail(f"{path}: no column `{name}` (--target); the columns are: {', '.join(header)}")
        fail(f"{path}: no column `{name}`; the columns needed are: {', '.join(needed)}")
    return header.index(name)


def numbers(path, rows, i, name):
    """Column `i` (named `name`) of every row as float32 numbers."""
    out = np.empty(len(rows), dtype=np.float32)
    for r, (line, record) in enumerate(rows):
        if record[i] == "":
            fail(f"{path}: row {r + 1} (line {line}), column `{name}`: the value is missing")
        out[r], why = number(record[i])
        if why:
            fail(f"{path}: row {r + 1} (line {line}), column `{name}`: `{record[i]}` {why}")
    return out


def encode_inputs(path, header, rows, prep):
    """The rows' raw features [rows, width] float32, by the model's columns: each found by its header
    name (other columns are ignored), in the model's order; a numeric column as its value, a text
    column one-hot over the model's categories (a category the model has not seen is an error)."""
    needed = [name for name, _ in prep["columns"]]
    x = np.zeros((len(rows), prep["width"]), dtype=np.float32)
    j = 0  # the next feature
    for name, categories in prep["columns"]:
        i = column_index(path, header, name, needed)
        if categories is None:
            x[:, j] = numbers(path, rows, i, name)
            j += 1
            continue
        position = {c: k for k, c in enumerate(categories)}
        for r, (line, record) in enumerate(rows):
            k = position.get(record[i])
            if k is None:
                fail(f"{path}: row {r + 1} (line {line}), column `{name}`: `{record[i]}` is not one of "
                     f"the categories the model was trained on ({', '.join(categories)})")
            x[r, j + k] = 1
        j += len(categories)
    return x


def read_truth(path, header, rows, prep, targets):
    """The `targets` columns as the model's truth: [rows, targets] float32 values for a regression, else
    class indices [rows] (a value matches a class name exactly, or as the same number: `5.0` is class
    `5`)."""
    if prep["task"] == "regression":
        if len(targets) != len(prep["names"]):
            fail(f"the model predicts {len(prep['names'])} target(s) ({', '.join(prep['names'])}); "
                 f"--target names {len(targets)}")
        return np.stack([numbers(path, rows, column_index(path, header, t), t) for t in targets], axis=1)
    if len(targets) != 1:
        fail(f"a {prep['task']} model has one target column; --target names {len(targets)}")
    i = column_index(path, header, targets[0])
    exact = {name: c for c, name in enumerate(prep["names"])}
    by_value = {}
    for c, name in enumerate(prep["names"]):
        value, _ = number(name)
        if value is not None:
            by_value.setdefault(float(value), c)  # float: -0.0 and 0.0 are one key
    labels = np.empty(len(rows), dtype=np.int64)
    for r, (line, record) in enumerate(rows):
        value, _ = number(record[i])
        c = exact.get(record[i], by_value.get(float(value)) if value is not None else None)
        if c is None:
            fail(f"{path}: row {r + 1} (line {line}), column `{targets[0]}`: `{record[i]}` is not one of "
                 f"the model's classes ({', '.join(prep['names'])})")
        labels[r] = c
    return labels


def predicted_classes(logits):
    """Each row's class: for one output, 1 when the logit is positive (sigmoid > 1/2); else the arg-max
    of the logits (the first, on a tie)."""
    return (logits[:, 0] > 0).astype(np.int64) if logits.shape[1] == 1 else logits.argmax(axis=1)


def to_targets(logits, prep):
    """A regression's outputs in the targets' units: out * std + mean (float32, as nabla)."""
    mean, std = prep["target"]
    return logits * std + mean


def probabilities(logits):
    """Each class's probability: sigmoid(z) for the second class and 1 - it for the first (one output),
    else the softmax of the logits. Float32, as nabla computes them."""
    if logits.shape[1] == 1:
        p = sigmoid(logits[:, :1])
        return np.concatenate([np.float32(1) - p, p], axis=1)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def figures(prep, logits, truth):
    """The line nabla eval prints for a table: `accuracy 97.50%`, or `RMSE 0.6374 MAE 0.5007 R² 0.3767`
    in the targets' units (per target where there are several), computed in float64."""
    n = len(truth)
    if prep["task"] != "regression":
        return f"accuracy {100 * (predicted_classes(logits) == truth).sum() / n:.2f}%"
    error = to_targets(logits, prep).astype(np.float64) - truth.astype(np.float64)
    rmse = np.sqrt((error**2).mean(axis=0))
    mae = np.abs(error).mean(axis=0)
    ss_tot = ((truth.astype(np.float64) - truth.astype(np.float64).mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1 - (error**2).sum(axis=0) / ss_tot, np.nan)
    names = prep["names"]

    def fmt(v):
        return "NaN" if np.isnan(v) else f"{v:.4f}"

    return "; ".join(
        (f"{names[j]}: " if len(names) > 1 else "")
        + f"RMSE {fmt(rmse[j])} MAE {fmt(mae[j])} R² {fmt(r2[j])}"
        for j in range(len(names))
    )


def rust_float(v):
    """A float32 as Rust's `{}` writes it (and so nabla predict): the shortest decimal that reads back
    as the same float32, never in exponent form (1, 0.5, 5.2192335, 0.0000001)."""
    v = np.float32(v)
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return np.format_float_positional(v, unique=True, trim="-")


def csv_field(text):
    """A CSV field, quoted where it holds a comma, a quote or a line break (as nabla writes them)."""
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def predictions_csv(prep, logits):
    """The CSV nabla predict writes: a header `sample,class,p_<name>...` (classes) or `sample,<target
    names>` (regression), then per row its number from 1, its class and probabilities, or its values."""
    names = prep["names"]
    if prep["task"] == "regression":
        header = ["sample"] + names
        body = [[rust_float(v) for v in row] for row in to_targets(logits, prep)]
    else:
        header = ["sample", "class"] + [f"p_{n}" for n in names]
        body = [
            [names[c]] + [rust_float(p) for p in row]
            for c, row in zip(predicted_classes(logits), probabilities(logits))
        ]
    lines = [",".join(csv_field(h) for h in header)]
    lines += [",".join([str(r + 1)] + [csv_field(f) for f in row]) for r, row in enumerate(body)]
    return "\n".join(lines) + "\n"


def evaluate_table(args):
    """--table: the model's figures on the table (with --target) and its predictions (--predictions)."""
    if not args.target and not args.predictions:
        fail("say what to do with the table: --target COLUMN for the figures, --predictions OUT.csv "
             "for each row's prediction, or both")
    shape, layers, tensors, _, _, meta = load_checkpoint(args.model, False, table=True)
    prep = read_prep(args.model, meta, shape)
    header, rows = read_table(args.table)
    x = encode_inputs(args.table, header, rows, prep)
    truth = read_truth(args.table, header, rows, prep, args.target) if args.target else None
    if prep["mean"] is not None:
        x = (x - prep["mean"]) / prep["std"]  # standardised as in training, in float32
    logits = np.concatenate([forward(x[s : s + args.batch], shape, layers, tensors)
                             for s in range(0, len(x), args.batch)])
    if logits.shape[1] != prep["outputs"]:
        fail(f"{args.model}: a {prep['task']} model of {len(prep['names'])} names should give "
             f"{prep['outputs']} output(s), but its last layer gives {logits.shape[1]}")
    if truth is not None:
        print(f"{figures(prep, logits, truth)} on {len(rows)} samples")
    if args.predictions:
        try:
            with open(args.predictions, "w", encoding="utf-8", newline="") as f:
                f.write(predictions_csv(prep, logits))
        except OSError as e:
            fail(f"cannot write {args.predictions}: {e}")
        print(f"{len(rows)} predictions written to {args.predictions}", file=sys.stderr)


def evaluate_mnist(args):
    """The model's accuracy on MNIST's 10 000 test images."""
    shape, layers, tensors, scale, shift, _ = load_checkpoint(args.model, args.no_normalise)
    images = read_idx(args.data, "t10k-images-idx3-ubyte", 0x0803)
    labels = read_idx(args.data, "t10k-labels-idx1-ubyte", 0x0801)
    images = images.reshape(len(images), -1)  # each 28x28 image as 784 pixels, row by row
    if len(images) != len(labels) or len(labels) == 0 or images.shape[1] != np.prod(shape):
        fail(f"{images.shape} images, {len(labels)} labels: not MNIST for an input of {shape}")

    correct = 0
    all_logits = []
    for start in range(0, len(images), args.batch):
        # Pixel bytes become inputs as in training: x = byte * input_scale + input_shift.
        x = images[start : start + args.batch].astype(np.float32) * scale + shift
        logits = forward(x, shape, layers, tensors)
        all_logits.append(logits)
        # The prediction is the class with the largest logit (the first one, on a tie).
        correct += int((logits.argmax(axis=1) == labels[start : start + args.batch]).sum())
    print(f"test accuracy {100 * correct / len(labels):.2f}% on {len(labels)} images")
    if args.predictions:
        # As `nabla predict --input DIR` writes it for a directory of IDX files: images named by their
        # index from 0, each with its class and the ten probabilities.
        logits = np.concatenate(all_logits)
        names = [str(c) for c in range(logits.shape[1])]
        header = ["sample", "class"] + [f"p_{n}" for n in names]
        lines = [",".join(header)]
        for i, (c, row) in enumerate(zip(predicted_classes(logits), probabilities(logits))):
            lines.append(",".join([str(i), names[c]] + [rust_float(p) for p in row]))
        try:
            with open(args.predictions, "w", encoding="utf-8", newline="") as f:
                f.write("\n".join(lines) + "\n")
        except OSError as e:
            fail(f"cannot write {args.predictions}: {e}")


def main():
    parser = argparse.ArgumentParser(
        description="A nabla checkpoint's MNIST test accuracy, or its figures and predictions on a CSV "
        "table, in NumPy."
    )
    parser.add_argument("--model", required=True, help="the .safetensors checkpoint")
    parser.add_argument("--data", help="directory with the MNIST test files (default data/mnist)")
    parser.add_argument("--batch", type=int, default=1000, help="images (rows) per forward pass")
    parser.add_argument(
        "--no-normalise",
        action="store_true",
        help="feed pixels as 0-255: for format 1 checkpoints only (newer ones record their scaling)",
    )
    parser.add_argument(
        "--table",
        metavar="FILE.csv[.gz]",
        help="evaluate a model trained on a table on this CSV table instead of MNIST: its columns are "
        "found by the header names the model was trained on",
    )
    parser.add_argument(
        "--target",
        action="append",
        metavar="COLUMN",
        help="with --table: the column holding the truth, for the accuracy or RMSE, MAE and R² (repeat "
        "for several regression targets)",
    )
    parser.add_argument(
        "--predictions",
        metavar="OUT.csv",
        help="write each row's (or MNIST test image's) prediction there, as `nabla predict --output` "
        "does",
    )
    args = parser.parse_args()
    if args.batch < 1:
        fail("--batch must be at least 1")
    if args.table is not None:
        if args.data is not None or args.no_normalise:
            fail("--data and --no-normalise are for MNIST; --table evaluates a model of a table")
        evaluate_table(args)
    else:
        if args.target:
            fail("--target goes with --table FILE.csv")
        args.data = args.data or "data/mnist"
        evaluate_mnist(args)


if __name__ == "__main__":
    main()
