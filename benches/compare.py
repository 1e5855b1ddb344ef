#!/usr/bin/env python3
"""nabla's CPU backend against NumPy and PyTorch on the `nabla bench` workloads, all on 2 threads.

    python benches/compare.py --nabla BINARY [--epochs E] [--workloads LIST] [--data DIR]
                              [--sgemm | --nabla-sgemm-file FILE] [--limit-batches N]
    python benches/compare.py --self-test

Runs `BINARY bench --backends cpu` and reads its JSON report, then trains the same workloads with
PyTorch (all seven), NumPy (W1, W2 and W7, forward and backward written out here) and, for W7 where
it is installed, scikit-learn's BernoulliRBM, and prints one
Markdown table of steady seconds per epoch (the mean of the epochs after the first, as nabla reports
it), the test accuracies, the machine and the library versions. Only the training loop is timed: the
data is in memory as float32 before the clock starts (the shuffle is inside it). --sgemm runs
`cargo bench --bench matmul -- --cpu` after the workloads (FILE: its saved output) and adds a table of
sgemm GFLOP/s against torch.mm and NumPy's `@`.
--limit-batches N trains N batches an epoch in Python and scales their time to a full epoch: a quick
check of this script, not a measurement. On Linux the process, nabla included, is pinned to 2 CPUs
where more exist (nabla's CPU backend uses every CPU it may run on). scripts/cpu-compare.sh sets up
the Python environment, runs the sgemm bench and calls this.

--self-test checks the NumPy backward pass against finite differences and a few NumPy training steps
against PyTorch's, in float64.
"""

import os

THREADS = 2
# OpenBLAS (NumPy) and OpenMP/MKL (PyTorch) size their thread pools when they load.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = str(THREADS)

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

PIXELS = 784
CLASSES = 10
INFER_BATCH = 1000
CNN_LSTM_BATCH = 100
ADAM_LR = 1e-3
WORKLOADS = ("book", "mlp", "wide", "infer", "cnn", "lstm", "rbm")
NUMPY_WORKLOADS = ("book", "mlp", "rbm")
# W7: a 784-500 RBM by CD-1 after Hinton's practical guide, as `nabla bench` runs it.
RBM_HIDDEN = 500
RBM_BATCH = 100
RBM_LR = 0.1
RBM_WEIGHT_COST = 2e-4
RBM_MOMENTUM_SWITCH = 5  # epochs at momentum 0.5, then 0.9
SGEMM_SHAPES = ((256, 784, 1024), (1024, 1024, 1024))
SGEMM_BATCHES = 30
SGEMM_PRODUCTS = 4
SEED = 42
BUSY_SHARE = 0.1  # other work using more than this share of the CPUs just before the run
SGEMM_COMMAND = ("cargo", "bench", "--bench", "matmul", "--", "--cpu")


@dataclass(frozen=True)
class Dense:
    """A dense workload: hidden layer sizes, hidden activation, init, optimizer and batch."""

    hidden: tuple[int, ...]
    activation: str  # "sigmoid" or "relu"
    init_std: float | None  # N(0, init_std²) weights; None: He, N(0, 2/fan_in)
    lr: float
    momentum: float  # 0: plain SGD
    batch: int
    inputs: int = PIXELS
    classes: int = CLASSES

    @property
    def sizes(self):
        """Every layer's width, the input's first."""
        return (self.inputs, *self.hidden, self.classes)

    def std(self, fan_in):
        """The standard deviation of the initial weights of a layer with `fan_in` inputs."""
        return self.init_std if self.init_std is not None else (2.0 / fan_in) ** 0.5


DENSE = {
    "book": Dense((50,), "sigmoid", 0.01, lr=0.1, momentum=0.0, batch=100),
    "mlp": Dense((128, 128), "relu", None, lr=0.05, momentum=0.9, batch=128),
    "wide": Dense((1024, 1024), "relu", None, lr=0.05, momentum=0.9, batch=256),
}


@dataclass
class Run:
    """One library's run of one workload: seconds of each epoch (of each pass, for W4) and accuracy."""

    seconds: list[float]
    accuracy: float | None  # None for W7, an RBM, which classifies nothing

    def steady(self):
        """Mean seconds of the epochs after the first (the first's when it is the only one), nabla's
        steady figure."""
        rest = self.seconds[1:] or self.seconds
        return sum(rest) / len(rest)

    def figure(self, workload, test_images):
        """The table's figure: steady seconds, or for W4 images/s of the best pass (bigger is better)."""
        return test_images / min(self.seconds) if workload == "infer" else self.steady()


# ---- data ----


def read_idx(path):
    """A raw IDX file of unsigned bytes: magic 0x0000 0x08 D, D big-endian uint32 sizes, the values."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SystemExit(f"error: cannot read {path}: {e.strerror} (`nabla fetch --data DIR` gets MNIST)")
    if raw[:3] != b"\0\0\x08":
        raise SystemExit(f"error: {path} is not an IDX file of unsigned bytes")
    dims = raw[3]
    shape = np.frombuffer(raw, ">u4", count=dims, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_mnist(data_dir, prefix):
    """Images as float32 [n, 784] in [0, 1] and labels as int64 [n]."""
    images = read_idx(Path(data_dir) / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(Path(data_dir) / f"{prefix}-labels-idx1-ubyte")
    return (images.reshape(len(images), PIXELS).astype(np.float32) / 255.0, labels.astype(np.int64))


def time_epochs(name, epochs, n, batch, limit, permutation, step):
    """Seconds of each epoch of `step(indices)` over shuffled batches, the last partial one dropped;
    with `limit`, only that many batches run and their time is scaled to a full epoch."""
    batches = n // batch
    run = min(batches, limit) if limit else batches
    seconds = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = permutation(n)
        for b in range(run):
            step(order[b * batch:(b + 1) * batch])
        seconds.append((time.perf_counter() - start) * batches / run)
        print(f"{name}: epoch {epoch} {seconds[-1]:.3f} s", file=sys.stderr, flush=True)
    return seconds


# ---- NumPy ----


def softmax(logits):
    """Each row's softmax."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


class NumpyMlp:
    """A dense network with a softmax cross-entropy loss, trained by hand in NumPy. Weights are
    [fan_in, fan_out], so a layer computes `x @ W + b`."""

    def __init__(self, spec, rng, dtype=np.float32):
        self.spec = spec
        self.layers = [
            ((rng.standard_normal((fan_in, fan_out)) * spec.std(fan_in)).astype(dtype),
             np.zeros(fan_out, dtype))
            for fan_in, fan_out in zip(spec.sizes, spec.sizes[1:])
        ]
        self.velocities = [(np.zeros_like(w), np.zeros_like(b)) for w, b in self.layers]

    def activate(self, z):
        """The hidden activation, in place."""
        if self.spec.activation == "relu":
            np.maximum(z, 0, out=z)
        else:  # sigmoid as 0.5·(1 + tanh(z/2)): the same function, and no overflow in exp(-z)
            z *= 0.5
            np.tanh(z, out=z)
            z += 1
            z *= 0.5

    def derivative(self, a):
        """The hidden activation's derivative, from its output `a`."""
        return a > 0 if self.spec.activation == "relu" else a * (1 - a)

    def forward(self, x):
        """Every layer's output, the input first and the logits last."""
        outputs = [x]
        for i, (w, b) in enumerate(self.layers):
            z = outputs[-1] @ w
            z += b
            if i < len(self.layers) - 1:
                self.activate(z)
            outputs.append(z)
        return outputs

    def loss(self, x, labels):
        """Mean softmax cross-entropy over the batch."""
        logits = self.forward(x)[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(shifted).sum(axis=1))
        return float(np.mean(log_sum - shifted[np.arange(len(labels)), labels]))

    def gradients(self, x, labels):
        """The loss's gradient with respect to each layer's (W, b)."""
        outputs = self.forward(x)
        delta = softmax(outputs[-1])  # dLoss/dlogits = (softmax - one-hot) / batch
        delta[np.arange(len(labels)), labels] -= 1
        delta /= len(labels)
        grads = [None] * len(self.layers)
        for i in reversed(range(len(self.layers))):
            grads[i] = (outputs[i].T @ delta, delta.sum(axis=0))
            if i > 0:
                delta = (delta @ self.layers[i][0].T) * self.derivative(outputs[i])
        return grads

    def step(self, x, labels):
        """One SGD step, with momentum in PyTorch's form (v = μv + g; p -= lr·v) where it has one."""
        lr, momentum = self.spec.lr, self.spec.momentum
        for params, grads, velocities in zip(self.layers, self.gradients(x, labels), self.velocities):
            for p, g, v in zip(params, grads, velocities):
                if momentum:
                    v *= momentum
                    v += g
                    p -= lr * v
                else:
                    p -= lr * g

    def accuracy(self, x, labels):
        """The fraction of `x` whose largest logit is its label's."""
        correct = sum(
            int((self.forward(x[i:i + INFER_BATCH])[-1].argmax(axis=1) == labels[i:i + INFER_BATCH]).sum())
            for i in range(0, len(x), INFER_BATCH)
        )
        return correct / len(x)


class Rbm:
    """W7's CD-1 step, written once for NumPy and PyTorch (`lib` is either module): ph₀ = σ(v₀Wᵀ + c),
    h₀ ~ ph₀, pv = σ(h₀W + b), ph = σ(pvWᵀ + c); the gradient (phᵀpv − ph₀ᵀv₀)/N and the bias means;
    momentum 0.5 for the first epochs, then 0.9; the weight cost on W. nabla's `src/rbm/train.rs`."""

    def __init__(self, lib, rng, steps_per_epoch):
        self.lib = lib
        self.steps_per_epoch = steps_per_epoch
        w = (0.01 * np.random.default_rng(SEED).standard_normal((RBM_HIDDEN, PIXELS))).astype(np.float32)
        zeros = np.zeros
        self.params = [self.tensor(w), self.tensor(zeros(PIXELS, np.float32)),
                       self.tensor(zeros(RBM_HIDDEN, np.float32))]
        self.velocity = [self.tensor(zeros(p.shape, np.float32)) for p in self.params]
        self.rng = rng
        self.steps = 0

    def tensor(self, array):
        return torch.from_numpy(array) if self.lib is torch else array

    def uniform(self, shape):
        return torch.rand(shape) if self.lib is torch else self.rng.random(shape, dtype=np.float32)

    def sigmoid(self, z):
        return torch.sigmoid(z) if self.lib is torch else 1.0 / (1.0 + np.exp(-z))

    def step(self, v0):
        w, b, c = self.params
        n = len(v0)
        ph0 = self.sigmoid(v0 @ w.T + c)
        h0 = (self.uniform(ph0.shape) < ph0).to(torch.float32) if self.lib is torch else \
            (self.uniform(ph0.shape) < ph0).astype(np.float32)
        pv = self.sigmoid(h0 @ w + b)
        ph = self.sigmoid(pv @ w.T + c)
        grads = [(ph.T @ pv - ph0.T @ v0) / n + RBM_WEIGHT_COST * w, (pv - v0).mean(0), (ph - ph0).mean(0)]
        momentum = 0.5 if self.steps < RBM_MOMENTUM_SWITCH * self.steps_per_epoch else 0.9
        for p, v, g in zip(self.params, self.velocity, grads):
            v *= momentum
            v += g
            p -= RBM_LR * v
        self.steps += 1


def rbm_steps(n, limit):
    """The steps W7 takes an epoch, as `time_epochs` runs them (`limit` batches at most, if set)."""
    batches = n // RBM_BATCH
    return min(batches, limit) if limit else batches


def numpy_runs(workloads, train, test, epochs, limit):
    """W1, W2 and W7 (those of `workloads`) trained with NumPy."""
    (x, y), (test_x, test_y) = train, test
    runs = {}
    for name in workloads:
        rng = np.random.default_rng(SEED)
        if name == "rbm":
            rbm = Rbm(np, rng, rbm_steps(len(x), limit))
            runs[name] = Run(time_epochs("numpy rbm", epochs, len(x), RBM_BATCH, limit, rng.permutation,
                                         lambda idx: rbm.step(x[idx])), None)
            continue
        net = NumpyMlp(DENSE[name], rng)
        seconds = time_epochs(f"numpy {name}", epochs, len(x), net.spec.batch, limit, rng.permutation,
                              lambda idx: net.step(x[idx], y[idx]))
        runs[name] = Run(seconds, net.accuracy(test_x, test_y))
    return runs


# ---- PyTorch ----


def he_init(model):
    """He weights N(0, 2/fan_in) and zero biases for every dense and convolutional layer (an LSTM keeps
    PyTorch's own initialisation, as nabla's W6 does)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


def torch_dense(spec):
    """The dense workload's network, initialised as `spec` says."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(spec.sizes, spec.sizes[1:])):
        if i:
            layers.append(nn.ReLU() if spec.activation == "relu" else nn.Sigmoid())
        layers.append(nn.Linear(fan_in, fan_out))
    model = nn.Sequential(*layers)
    if spec.init_std is None:
        he_init(model)
    else:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=spec.init_std)
                nn.init.zeros_(m.bias)
    return model


class RowLstm(nn.Module):
    """W6: an image's 28 rows as 28 steps through nn.LSTM(28, 128), the last hidden state to 10 logits."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.out = nn.Linear(128, CLASSES)

    def forward(self, x):
        states, _ = self.lstm(x.view(len(x), 28, 28))
        return self.out(states[:, -1])


def simple_cnn():
    """W5: the book's SimpleConvNet; shapes in comments are one image's."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2),  # 30×24×24, then 30×12×12
        nn.Flatten(),  # 4320
        nn.Linear(4320, 100), nn.ReLU(),
        nn.Linear(100, CLASSES),
    )


def torch_training_setup(name):
    """A training workload's model, optimizer and batch size."""
    if name in DENSE:
        spec = DENSE[name]
        model = torch_dense(spec)
        return model, torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum), spec.batch
    model = simple_cnn() if name == "cnn" else RowLstm()
    he_init(model)
    return model, torch.optim.Adam(model.parameters(), lr=ADAM_LR), CNN_LSTM_BATCH


def torch_passes(model, x, y, passes):
    """Seconds of each forward pass over (x, y) in batches of 1000, and the accuracy."""
    model.eval()
    seconds = []
    with torch.inference_mode():
        for _ in range(passes):
            start = time.perf_counter()
            correct = sum(int((model(x[i:i + INFER_BATCH]).argmax(1) == y[i:i + INFER_BATCH]).sum())
                          for i in range(0, len(x), INFER_BATCH))
            seconds.append(time.perf_counter() - start)
    model.train()
    return seconds, correct / len(x)


def torch_runs(workloads, train, test, epochs, limit):
    """The workloads with PyTorch; W4 times the W2 net trained just before it, or a fresh one."""
    torch.set_num_threads(THREADS)
    x, y = (torch.from_numpy(a) for a in train)
    test_x, test_y = (torch.from_numpy(a) for a in test)
    runs = {}
    mlp = None
    for name in workloads:
        torch.manual_seed(SEED)
        if name == "infer":
            model = mlp if mlp is not None else torch_dense(DENSE["mlp"])
            seconds, accuracy = torch_passes(model, test_x, test_y, epochs)
            print(f"torch infer: best pass {min(seconds):.4f} s", file=sys.stderr, flush=True)
            runs[name] = Run(seconds, accuracy)
            continue
        if name == "rbm":
            rbm = Rbm(torch, None, rbm_steps(len(x), limit))
            with torch.no_grad():
                runs[name] = Run(time_epochs("torch rbm", epochs, len(x), RBM_BATCH, limit,
                                             torch.randperm, lambda idx: rbm.step(x[idx])), None)
            continue
        model, optimizer, batch = torch_training_setup(name)

        def step(idx):
            loss = functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        seconds = time_epochs(f"torch {name}", epochs, len(x), batch, limit, torch.randperm, step)
        runs[name] = Run(seconds, torch_passes(model, test_x, test_y, 1)[1])
        if name == "mlp":
            mlp = model
    return runs


def sklearn_runs(workloads, train, epochs, limit):
    """W7 with scikit-learn's BernoulliRBM (PCD-1, no momentum), one `partial_fit` per batch, where
    scikit-learn is installed."""
    try:
        from sklearn.neural_network import BernoulliRBM
    except ImportError:
        return {}
    if "rbm" not in workloads:
        return {}
    x = train[0]
    rng = np.random.default_rng(SEED)
    rbm = BernoulliRBM(n_components=RBM_HIDDEN, learning_rate=RBM_LR, batch_size=RBM_BATCH,
                       random_state=SEED)
    seconds = time_epochs("sklearn rbm", epochs, len(x), RBM_BATCH, limit, rng.permutation,
                          lambda idx: rbm.partial_fit(x[idx]))
    return {"rbm": Run(seconds, None)}


# ---- nabla ----


def nabla_runs(binary, data_dir, workloads, epochs):
    """`binary bench --backends cpu` on the workloads, read from its JSON report; also its device line."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "nabla.json"
        command = [binary, "bench", "--backends", "cpu", "--workloads", ",".join(workloads),
                   "--epochs", str(epochs), "--data", str(data_dir), "--json", str(report)]
        try:
            # Its progress goes to stderr; its table (stdout) is not needed, the JSON has the figures.
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        except (OSError, subprocess.CalledProcessError) as e:
            raise SystemExit(f"error: `{' '.join(command)}` failed: {e}")
        rows = [row for row in json.loads(report.read_text())["rows"] if row["backend"] == "cpu"]
    runs = {row["workload"]: Run(row["epoch_seconds"], row["test_accuracy"]) for row in rows}
    return runs, rows[0]["device"] if rows else "?"


def nabla_sgemm(text, source):
    """nabla's CPU GFLOP/s per (M, K, N) from `cargo bench --bench matmul -- --cpu` output (`text`, read
    from `source`), whose rows read `256×784×1024  238.1 …` (a transposed product's, `… Aᵀ`, are
    skipped)."""
    figures = {}
    for line in text.splitlines():
        match = re.match(r"\s*(\d+)×(\d+)×(\d+)\s+(\d+(?:\.\d+)?)", line)
        if match:
            m, k, n, gflops = match.groups()
            figures[int(m), int(k), int(n)] = float(gflops)
    if not figures:
        raise SystemExit(f"error: no `M×K×N  GFLOP/s` rows in {source}")
    return figures


# ---- sgemm ----


def best_gflops(shape, matmul):
    """Best GFLOP/s of `matmul()` (one M×K×N product) over batches of a few products."""
    m, k, n = shape
    matmul()  # warm-up
    best = float("inf")
    for _ in range(SGEMM_BATCHES):
        start = time.perf_counter()
        for _ in range(SGEMM_PRODUCTS):
            matmul()
        best = min(best, time.perf_counter() - start)
    return 2 * m * k * n * SGEMM_PRODUCTS / best / 1e9


def numpy_sgemm(shape):
    m, k, n = shape
    rng = np.random.default_rng(SEED)
    a, b = rng.random((m, k), np.float32), rng.random((k, n), np.float32)
    c = np.empty((m, n), np.float32)
    return best_gflops(shape, lambda: np.matmul(a, b, out=c))


def torch_sgemm(shape):
    m, k, n = shape
    torch.set_num_threads(THREADS)
    a, b, c = torch.rand(m, k), torch.rand(k, n), torch.empty(m, n)
    return best_gflops(shape, lambda: torch.mm(a, b, out=c))


# ---- the report ----


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, or what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def busy_share(seconds=3.0):
    """The share of the CPUs' time spent busy over the next `seconds` (from /proc/stat), or None
    where there is no /proc/stat. Unlike the load average, it forgets the minute before."""
    def sample():
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, all
    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, IndexError, ValueError):
        return None
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def run_sgemm_bench():
    """nabla's sgemm figures, from running its bench (after the workloads, so that its load does not
    count against them)."""
    try:
        out = subprocess.run(SGEMM_COMMAND, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"error: `{' '.join(SGEMM_COMMAND)}` failed: {e}")
    return nabla_sgemm(out, "its output")


def load_average():
    """The 1-minute load average, as /proc/loadavg writes it."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def pin_to_threads():
    """Keeps this process and its children on THREADS CPUs; returns a note saying which, or None."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) <= THREADS:
        return None
    os.sched_setaffinity(0, cpus[:THREADS])
    return f"pinned to CPUs {','.join(map(str, cpus[:THREADS]))}"


def torch_blas():
    """PyTorch's BLAS as its build configuration names it (MKL, with oneDNN for convolutions)."""
    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version (\d[\d.]*)", config)
    blas = f"MKL {mkl.group(1)}" if mkl else re.search(r"BLAS_INFO=(\w+)", config).group(1)
    onednn = re.search(r"MKL-DNN v(\S+)", config)
    return f"{blas}, oneDNN {onednn.group(1)}" if onednn else blas


def numpy_blas():
    """NumPy's BLAS (OpenBLAS in the PyPI wheels) from its build configuration."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    except (TypeError, KeyError):  # NumPy before 1.26 only prints its configuration
        return "see numpy.show_config()"


def short_blas(description):
    return "MKL" if description.startswith("MKL") else "OpenBLAS" if "openblas" in description else "BLAS"


def cell(value, fmt):
    return "–" if value is None else format(value, fmt)


def print_report(workloads, epochs, rounds, limit, results, nabla_device, machine, sgemm):
    """The Markdown tables. `results` maps a library's column name to its runs by workload."""
    test_images = 10_000
    libraries = list(results)
    print("## nabla's CPU backend against NumPy and PyTorch\n")
    print(machine)
    print(f"nabla: {nabla_device}")
    print(f"NumPy {np.__version__} ({numpy_blas()}), PyTorch {torch.__version__} ({torch_blas()}), "
          f"Python {platform.python_version()}\n")
    steady = f"mean of epochs 2–{epochs}" if epochs > 1 else "one epoch, so the first"
    print(f"Steady seconds per epoch of 60 000 training images ({steady}; each library's best of "
          f"{rounds} interleaved round{'s' if rounds > 1 else ''}); W4: images/s.")
    if limit:
        print(f"**NumPy and PyTorch trained {limit} batches an epoch, their time scaled to a full epoch: "
              "a check of the harness, not a measurement.**")
    print()
    print("| workload | " + " | ".join(libraries) + " | nabla / best |")
    print("|---|" + "---:|" * (len(libraries) + 1))
    for name in workloads:
        label = f"W{WORKLOADS.index(name) + 1} `{name}`" + (" (images/s)" if name == "infer" else "")
        figures = {lib: runs[name].figure(name, test_images) if name in runs else None
                   for lib, runs in results.items()}
        others = [f for lib, f in figures.items() if lib != "nabla CPU" and f is not None]
        ours = figures["nabla CPU"]
        if not others or ours is None:
            ratio = "–"
        elif name == "infer":
            ratio = f"{max(others) / ours:.2f}×"
        else:
            ratio = f"{ours / min(others):.2f}×"
        fmt = ",.0f" if name == "infer" else ".3f"
        print(f"| {label} | " + " | ".join(cell(f, fmt) for f in figures.values()) + f" | {ratio} |")
    print(f"\nnabla / best: nabla's seconds over the fastest other library's, so above 1 nabla is slower. "
          f"W4 is images/s over the 10 000 test images (bigger is better, each library's best of {epochs} "
          "passes), so its ratio is best / nabla, again above 1 when nabla is slower.\n")
    print("Test accuracy after training:\n")
    print("| workload | " + " | ".join(libraries) + " |")
    print("|---|" + "---:|" * len(libraries))
    for name in workloads:
        accuracies = [runs[name].accuracy if name in runs else None for runs in results.values()]
        print(f"| `{name}` | " + " | ".join(cell(a, ".2%") for a in accuracies) + " |")
    if sgemm is None:
        return
    torch_name, numpy_name = short_blas(torch_blas()), short_blas(numpy_blas())
    print(f"\nsgemm GFLOP/s (2·M·K·N per product, {THREADS} threads; torch.mm and NumPy: best of "
          f"{SGEMM_BATCHES} batches of {SGEMM_PRODUCTS} products; nabla: `cargo bench --bench matmul -- "
          "--cpu`, the best of 30 batches of one or more products):\n")
    print(f"| M×K×N | nabla CPU | torch.mm ({torch_name}) | NumPy @ ({numpy_name}) "
          f"| nabla / {torch_name} |")
    print("|---|---:|---:|---:|---:|")
    for shape, (nabla_gflops, torch_gflops, numpy_gflops) in sgemm.items():
        ratio = "–" if nabla_gflops is None else f"{nabla_gflops / torch_gflops:.2f}"
        print(f"| {'×'.join(map(str, shape))} | {cell(nabla_gflops, '.1f')} | {torch_gflops:.1f} "
              f"| {numpy_gflops:.1f} | {ratio} |")


def keep_best(best, runs, test):
    """Merges `runs` into `best`, keeping each workload's faster run."""
    images = len(test[1])
    for name, run in runs.items():
        kept = best.get(name)
        faster = kept is None or (run.figure(name, images) > kept.figure(name, images)
                                  if name == "infer" else run.steady() < kept.steady())
        if faster:
            best[name] = run


def compare(args):
    workloads = [w for w in WORKLOADS if w in args.workloads]  # nabla's order: W2 trains before W4
    nabla_gflops = None
    if args.nabla_sgemm_file:
        nabla_gflops = nabla_sgemm(Path(args.nabla_sgemm_file).read_text(), args.nabla_sgemm_file)
    pinned = pin_to_threads()
    busy_before, load_before = busy_share(), load_average()
    train, test = load_mnist(args.data, "train"), load_mnist(args.data, "t10k")
    numpy_workloads = [w for w in workloads if w in NUMPY_WORKLOADS]
    nabla, numpy, pytorch, sklearn = {}, {}, {}, {}
    # The libraries take turns, round after round, and each keeps its best round per workload: on a
    # machine shared with others (a VM whose neighbours come and go) speed drifts by tens of percent
    # within minutes, and the best of interleaved rounds is the figure that repeats.
    for _ in range(args.rounds):
        runs, nabla_device = nabla_runs(args.nabla, args.data, workloads, args.epochs)
        keep_best(nabla, runs, test)
        keep_best(numpy, numpy_runs(numpy_workloads, train, test, args.epochs, args.limit_batches), test)
        keep_best(pytorch, torch_runs(workloads, train, test, args.epochs, args.limit_batches), test)
        keep_best(sklearn, sklearn_runs(workloads, train, args.epochs, args.limit_batches), test)
    if args.sgemm:
        nabla_gflops = run_sgemm_bench()
    sgemm_numpy = {s: numpy_sgemm(s) for s in SGEMM_SHAPES} if nabla_gflops is not None else None
    sgemm = None
    if nabla_gflops is not None:
        sgemm = {s: (nabla_gflops.get(s), torch_sgemm(s), sgemm_numpy[s]) for s in SGEMM_SHAPES}
    busy = "unknown" if busy_before is None else f"{busy_before:.0%}"
    machine = (f"machine: {cpu_model()}, {os.cpu_count()} hardware threads, every library on {THREADS}"
               f"{f' ({pinned})' if pinned else ''}; CPUs {busy} busy just before the run; load "
               f"average {load_before} before, {load_average()} after")
    if busy_before is not None and busy_before > BUSY_SHARE:
        machine += (f"\n**Other work used {busy} of the CPUs just before the run: the figures may be "
                    "far off, PyTorch's and NumPy's most (their 2 threads spin-wait for each other).**")
    results = {"nabla CPU": nabla, "NumPy": numpy, "PyTorch": pytorch}
    if sklearn:
        results["scikit-learn"] = sklearn
    print_report(workloads, args.epochs, args.rounds, args.limit_batches, results, nabla_device,
                 machine, sgemm)


# ---- self-test ----


def self_test():
    """Checks NumpyMlp's gradients by central differences and its training steps against PyTorch's."""
    rng = np.random.default_rng(SEED)
    x = rng.random((4, 7))
    labels = np.array([0, 2, 1, 2])
    step = 1e-5  # central differences err by O(step²) and by rounding of O(1e-16 / step)
    for activation in ("sigmoid", "relu"):
        spec = Dense((5, 4), activation, 0.5, lr=0.1, momentum=0.9, batch=4, inputs=7, classes=3)
        net = NumpyMlp(spec, rng, np.float64)
        net.layers = [(w, b + rng.standard_normal(b.shape)) for w, b in net.layers]  # non-zero biases
        worst = 0.0
        for params, grads in zip(net.layers, net.gradients(x, labels)):
            for p, g in zip(params, grads):
                for index in np.ndindex(p.shape):
                    saved = p[index]
                    p[index] = saved + step
                    up = net.loss(x, labels)
                    p[index] = saved - step
                    down = net.loss(x, labels)
                    p[index] = saved
                    numeric = (up - down) / (2 * step)
                    worst = max(worst, abs(numeric - g[index]) / max(abs(numeric) + abs(g[index]), 1e-8))
        print(f"{activation}: largest relative gradient error {worst:.1e}")
        if worst > 1e-5:
            raise SystemExit("self-test FAILED: the NumPy backward pass disagrees with finite differences")

    torch.set_num_threads(THREADS)
    for name in ("book", "mlp"):
        spec = replace(DENSE[name], hidden=(6, 5), init_std=0.5, batch=4, inputs=7, classes=3)
        net = NumpyMlp(spec, rng, np.float64)
        model = torch_dense(spec).double()
        with torch.no_grad():
            for linear, (w, b) in zip(model[::2], net.layers):
                linear.weight.copy_(torch.from_numpy(w.T))
                linear.bias.copy_(torch.from_numpy(b))
        optimizer = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum)
        for _ in range(3):
            batch = rng.random((4, 7))
            net.step(batch, labels)
            loss = functional.cross_entropy(model(torch.from_numpy(batch)), torch.from_numpy(labels))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        gap = max(np.abs(linear.weight.detach().numpy().T - w).max() for linear, (w, _) in
                  zip(model[::2], net.layers))
        print(f"{name}: 3 steps, largest weight difference from PyTorch's {gap:.1e}")
        if gap > 1e-12:
            raise SystemExit("self-test FAILED: the NumPy training step differs from PyTorch's")
    print("self-test passed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nabla", help="the nabla binary whose `bench` to run")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per workload (passes for W4)")
    parser.add_argument("--workloads", type=lambda s: s.split(","), default=list(WORKLOADS),
                        help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--data", default="data/mnist", help="directory of MNIST's four raw IDX files")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of every library in turn; each keeps its best (default 2)")
    parser.add_argument("--sgemm", action="store_true",
                        help="run `cargo bench --bench matmul -- --cpu` after the workloads and add "
                             "an sgemm table (from the repository's root)")
    parser.add_argument("--nabla-sgemm-file", help="saved output of `cargo bench --bench matmul -- --cpu`")
    parser.add_argument("--limit-batches", type=int, default=0,
                        help="Python trains this many batches an epoch, scaled to a full one (quick checks)")
    parser.add_argument("--self-test", action="store_true", help="check the NumPy implementation and exit")
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {','.join(sorted(unknown))} (expected {','.join(WORKLOADS)})")
    if args.nabla is None:
        parser.error("--nabla BINARY is needed (or --self-test)")
    if args.epochs < 1 or args.limit_batches < 0:
        parser.error("--epochs needs at least 1 and --limit-batches cannot be negative")
    compare(args)


if __name__ == "__main__":
    main()
