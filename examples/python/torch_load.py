"""Loads a nabla MNIST checkpoint into PyTorch as the README says: a `torch.nn.Sequential` of the same
layers, built from `nabla.architecture`, takes the file's tensors with `load_state_dict(strict=True)`,
with no renaming or reshaping. Recurrent layers (rnn, lstm, gru) load too: each is PyTorch's nn.RNN
(tanh), nn.LSTM or nn.GRU, batch first, whose tensors the file names as PyTorch does
(`{index}.weight_ih_l0`, ...), with a forward that reads its input as nabla does. Then it classifies
MNIST's test images and writes every image's ten probabilities in the CSV `nabla predict --input
data/mnist` writes, so the two can be compared.

    python torch_load.py --model runs/model.safetensors --predictions torch.csv [--data data/mnist]

Needs torch, numpy and safetensors. scripts/python-check.sh runs it where the Python it uses has
torch (`NABLA_TORCH_PYTHON`), and says so when it cannot.
"""

import argparse
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from evaluate import fail, parse_architecture, read_idx, rust_float, timeline

MODULES = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": lambda: nn.ELU(1.0),
    "selu": nn.SELU,
    "swish": nn.SiLU,
    "softplus": nn.Softplus,
    "gelu": lambda: nn.GELU(approximate="tanh"),
}


class Recurrent:
    """nabla's input and output for PyTorch's recurrent layers (one layer, batch first, h_0 = c_0 = 0).
    In: any [N, ...] tensor read as [N, T, F] (a 1xTxF image's rows, or `steps T`). Out: the last state
    [N, H], or with `seq` every state as a [N, 1, T, H] image, nabla's 1xTxH shape (which nabla
    flattens before a dense layer, and a following recurrent layer reads as T steps of H)."""

    def __init__(self, features, units, steps, sequence, **options):
        super().__init__(features, units, batch_first=True, **options)
        self.steps, self.sequence = steps, sequence

    def forward(self, x):
        out, _ = super().forward(x.reshape(len(x), self.steps, -1))  # out: [N, T, H], every h_t
        return out.unsqueeze(1) if self.sequence else out[:, -1]


class RNN(Recurrent, nn.RNN):
    def __init__(self, *args):
        super().__init__(*args, nonlinearity="tanh")


class LSTM(Recurrent, nn.LSTM):
    pass


class GRU(Recurrent, nn.GRU):
    pass


RECURRENT = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def sequential(shape, layers):
    """The `nn.Sequential` whose `state_dict` names match the checkpoint's `{index}.{name}`."""
    channels, height, width = shape
    flat = channels * height * width if (height, width) != (1, 1) else channels
    features = channels if (height, width) == (1, 1) else None  # None while images flow
    modules = []
    for kind, arg in layers:
        if kind == "dense":
            modules.append(nn.Linear(features if features is not None else flat, arg))
            features = arg
        elif kind == "conv":
            filters, kh, kw, stride, pad = arg
            modules.append(nn.Conv2d(channels, filters, (kh, kw), stride=stride, padding=pad))
            channels = filters
            height = (height + 2 * pad - kh) // stride + 1
            width = (width + 2 * pad - kw) // stride + 1
            flat = channels * height * width
        elif kind in ("max_pool", "avg_pool"):
            size, stride = arg
            pool = nn.MaxPool2d if kind == "max_pool" else nn.AvgPool2d
            modules.append(pool(size, stride=stride))
            height = (height - size) // stride + 1
            width = (width - size) // stride + 1
            flat = channels * height * width
        elif kind in RECURRENT:
            units, sequence, steps = arg
            now = (features, 1, 1) if features is not None else (channels, height, width)
            try:
                steps, inputs = timeline(now, steps)
            except ValueError as e:
                fail(f"{kind} layer: {e}")
            modules.append(RECURRENT[kind](inputs, units, steps, sequence))
            if sequence:  # images flow again: 1 x T x H
                channels, height, width, flat, features = 1, steps, units, steps * units, None
            else:
                features = units
        elif kind == "flatten":
            modules.append(nn.Flatten())
            features = flat if features is None else features
        elif kind == "batch_norm":
            modules.append(nn.BatchNorm1d(features) if features is not None else nn.BatchNorm2d(channels))
        elif kind == "dropout":
            modules.append(nn.Dropout(arg))
        elif kind in MODULES:
            modules.append(MODULES[kind]())
        else:
            fail(f"no PyTorch module for nabla's `{kind}` here")
    return nn.Sequential(*modules)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--predictions", required=True, metavar="OUT.csv")
    parser.add_argument("--data", default="data/mnist")
    args = parser.parse_args()
    with safe_open(args.model, "pt") as f:
        meta = f.metadata()
    shape, layers = parse_architecture(meta["nabla.architecture"])
    model = sequential(shape, layers)
    model.load_state_dict(load_file(args.model), strict=True)
    model.eval()  # batch norm uses its running statistics; dropout does nothing
    scale, shift = float(meta["nabla.input_scale"]), float(meta["nabla.input_shift"])
    images = read_idx(args.data, "t10k-images-idx3-ubyte", 0x0803)
    x = torch.from_numpy(images.reshape(len(images), *shape).astype(np.float32)) * scale + shift
    if shape[1:] == (1, 1):
        x = x.reshape(len(images), -1)
    with torch.no_grad():
        probabilities = torch.softmax(model(x), dim=1).numpy()
    header = ["sample", "class"] + [f"p_{c}" for c in range(probabilities.shape[1])]
    lines = [",".join(header)]
    for i, row in enumerate(probabilities):
        lines.append(",".join([str(i), str(int(row.argmax()))] + [rust_float(p) for p in row]))
    with open(args.predictions, "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")
    print(f"PyTorch loaded {args.model} with load_state_dict(strict=True)", file=sys.stderr)


if __name__ == "__main__":
    main()
