#!/usr/bin/env python3
"""Evaluates a nabla checkpoint on the MNIST test set with NumPy alone: no nabla code, no PyTorch.

    python3 examples/python/evaluate.py --model runs/model.safetensors [--data data/mnist]

A nabla checkpoint is a safetensors file. Its metadata says how to rebuild the model
(`nabla.architecture`, e.g. "input 784, dense 256, batch_norm, relu, dense 10") and how to turn pixel
bytes into inputs (`nabla.input_scale`, `nabla.input_shift`). Its tensors are named as a
`torch.nn.Sequential` of the same layers names them: `{layer index}.{name}`, so layer 0's weights are
`0.weight`. This script reads both, runs the forward pass in float32 and counts correct predictions.
"""

import argparse
import gzip
import math
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

FORMAT = 2  # the newest checkpoint format this script reads
BATCH_NORM_EPS = 1e-5  # added to the variance before the square root, as in PyTorch
SELU_LAMBDA, SELU_ALPHA = 1.050701, 1.6732632  # Klambauer et al. 2017
GELU_C, GELU_K = 0.7978846, 0.044715  # sqrt(2/pi) and the cubic term's weight


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
    """"784" -> (784, 1, 1); "1x28x28" -> (1, 28, 28): channels, height, width."""
    dims = tuple(int(d) for d in text.split("x"))
    if len(dims) not in (1, 3) or min(dims) < 1:
        raise ValueError(f"input shape `{text}` is not like `784` or `1x28x28`")
    return dims + (1, 1) if len(dims) == 1 else dims


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


def parse_layer(text):
    """One layer: ("dense", 256), ("conv", (filters, kh, kw, stride, pad)), ("max_pool", (size, stride)),
    ("flatten", None), ("batch_norm", None), ("dropout", 0.2), ("relu", None), ..."""
    words = text.split()
    if len(words) == 2 and words[0] == "dense" and int(words[1]) > 0:
        return ("dense", int(words[1]))
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
        f"max_pool K [stride S], avg_pool K [stride S], flatten, batch_norm, dropout P and the "
        f"activations {', '.join(ACTIVATIONS)} (is the checkpoint from a newer nabla?)"
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


def load_checkpoint(path, no_normalise):
    """The input shape, layers, tensors and input scaling of the checkpoint at `path`."""
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
    return shape, layers, tensors, np.float32(scale), np.float32(shift)


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


def main():
    parser = argparse.ArgumentParser(description="A nabla checkpoint's MNIST test accuracy, in NumPy.")
    parser.add_argument("--model", required=True, help="the .safetensors checkpoint")
    parser.add_argument("--data", default="data/mnist", help="directory with the MNIST test files")
    parser.add_argument("--batch", type=int, default=1000, help="images per forward pass")
    parser.add_argument(
        "--no-normalise",
        action="store_true",
        help="feed pixels as 0-255: for format 1 checkpoints only (newer ones record their scaling)",
    )
    args = parser.parse_args()
    if args.batch < 1:
        fail("--batch must be at least 1")

    shape, layers, tensors, scale, shift = load_checkpoint(args.model, args.no_normalise)
    images = read_idx(args.data, "t10k-images-idx3-ubyte", 0x0803)
    labels = read_idx(args.data, "t10k-labels-idx1-ubyte", 0x0801)
    images = images.reshape(len(images), -1)  # each 28x28 image as 784 pixels, row by row
    if len(images) != len(labels) or len(labels) == 0 or images.shape[1] != np.prod(shape):
        fail(f"{images.shape} images, {len(labels)} labels: not MNIST for an input of {shape}")

    correct = 0
    for start in range(0, len(images), args.batch):
        # Pixel bytes become inputs as in training: x = byte * input_scale + input_shift.
        x = images[start : start + args.batch].astype(np.float32) * scale + shift
        logits = forward(x, shape, layers, tensors)
        # The prediction is the class with the largest logit (the first one, on a tie).
        correct += int((logits.argmax(axis=1) == labels[start : start + args.batch]).sum())
    print(f"test accuracy {100 * correct / len(labels):.2f}% on {len(labels)} images")


if __name__ == "__main__":
    main()
