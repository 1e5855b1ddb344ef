#!/usr/bin/env python3
"""PyTorch eager reference: trains a small CNN (or W6's LSTM) on MNIST on the CPU and times each epoch.

    python examples/python/torch_simple_cnn.py [--model simple|deep|fast|lstm] [--epochs N]
                                               [--limit-batches N] [--data data/mnist]

Prints one line per epoch: `epoch E: train_seconds S test_acc A`. Only the training loop
(forward, backward, optimiser step over every batch) is timed; the data is loaded into tensors
beforehand and the test pass comes after the clock stops. Adam (lr 1e-3), batch 100, shuffled,
cross-entropy loss, 2 threads.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def read_idx(path, magic):
    """Reads a raw (uncompressed) MNIST IDX file: big-endian uint32 header, then uint8 data."""
    raw = Path(path).read_bytes()
    header = np.frombuffer(raw, dtype=">u4", count=4 if magic == 2051 else 2)
    if header[0] != magic:
        raise SystemExit(f"error: {path}: magic {header[0]}, expected {magic}")
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * len(header))
    if magic == 2051:  # images: count, rows, cols
        return data.reshape(int(header[1]), 1, int(header[2]), int(header[3]))
    return data  # labels: count


def load(data_dir, prefix):
    """Images as float32 [n, 1, 28, 28] in [0, 1] and labels as int64 [n]."""
    images = read_idx(Path(data_dir) / f"{prefix}-images-idx3-ubyte", 2051)
    labels = read_idx(Path(data_dir) / f"{prefix}-labels-idx1-ubyte", 2049)
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def build(name):
    """The three models; shapes in comments are one 28x28 image's after each stage."""
    if name == "simple":  # the book's SimpleConvNet
        return nn.Sequential(
            nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2),  # 30x24x24 -> 30x12x12
            nn.Flatten(),  # 4320
            nn.Linear(4320, 100), nn.ReLU(),
            nn.Linear(100, 10),
        )
    if name == "deep":  # the book's DeepConvNet
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 16x14x14
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=2), nn.ReLU(),  # 32x16x16
            nn.MaxPool2d(2),  # 32x8x8
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 64x4x4
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 50), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(50, 10),
        )
    if name == "fast":
        return nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),  # 16x24x24 -> 16x12x12
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),  # 32x8x8 -> 32x4x4
            nn.Flatten(),  # 512
            nn.Linear(512, 10),
        )
    if name == "lstm":  # W6: the rows as 28 steps of 28 pixels, LSTM 128, its last state to 10 logits
        return RowLstm()
    raise SystemExit(f"error: unknown model {name!r}")


class RowLstm(nn.Module):
    """nn.LSTM(28, 128) over an image's rows, then nn.Linear(128, 10) on the last hidden state."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.out = nn.Linear(128, 10)

    def forward(self, x):
        states, _ = self.lstm(x.view(len(x), 28, 28))
        return self.out(states[:, -1])


def accuracy(model, x, y, batch=1000):
    """Fraction of test images whose arg-max logit is the label."""
    model.eval()  # dropout off
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / len(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["simple", "deep", "fast", "lstm"], default="simple")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit-batches", type=int, default=0,
                        help="stop each epoch after this many batches (0: all), for quick checks")
    parser.add_argument("--data", default="data/mnist", help="directory with the raw IDX files")
    args = parser.parse_args()

    torch.set_num_threads(2)
    batch = 100

    # Everything is in memory before any timing starts.
    train_x, train_y = load(args.data, "train")
    test_x, test_y = load(args.data, "t10k")

    model = build(args.model)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()

    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(train_x))  # shuffle each epoch
        batches = len(train_x) // batch  # 600
        if args.limit_batches > 0:
            batches = min(batches, args.limit_batches)

        start = time.perf_counter()
        for b in range(batches):
            idx = order[b * batch:(b + 1) * batch]
            loss = loss_fn(model(train_x[idx]), train_y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        seconds = time.perf_counter() - start

        acc = accuracy(model, test_x, test_y)
        print(f"epoch {epoch}: train_seconds {seconds:.3f} test_acc {acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
