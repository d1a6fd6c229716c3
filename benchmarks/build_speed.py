"""How fast is `specdsl.build` on the large examples? Ratios against writing the same model by hand, same run.

    python benchmarks/build_speed.py [--models vgg16 resnet50 inceptionv3] [--backends torch keras] [--repeats 3]

For each model and backend, the median over ``--repeats`` runs of:

- specdsl: ``specdsl.build("examples/<model>.yaml", backend)``, from the YAML file, so parsing, validation and
  planning are included;
- hand-written: the same model written by hand. Keras: ``keras.applications.VGG16 / ResNet50 / InceptionV3
  (weights=None)``, the canonical hand-written Keras code (weights=None: nothing is downloaded, and every build
  here runs with sockets refused, so a download attempt would fail the benchmark). Torch: the compact
  ``nn.Module`` classes below (torchvision is not used);
- plan only (for information): ``specdsl.check(path)``, the share of the specdsl column that is not the framework.

The table's ratio is specdsl / hand-written of the medians (1.00x: no overhead; above 1: specdsl is slower). The
two contenders run back to back in each repeat, alternating which goes first, and every model is deleted and
garbage-collected (and Keras' session cleared) before the next build starts, outside the timed region. "ratio per
run" is the range of the repeats' own ratios: on a shared 2-core machine it is often +-30%, and a median ratio
inside that range says nothing; raise --repeats.

Warm-up: each backend first imports its framework (and keras.applications) and builds a tiny model covering every
layer class the three models use, both with specdsl and by hand, untimed. So first-import and first-layer costs
(lazy imports inside torch and Keras, op registration, first allocations) are excluded; the import times are
printed for information.

Both sides build the same model. The first build of each contender is checked against the plan, outside the timed
region: trainable parameters equal the spec's (and Keras' total and non-trainable counts, torch's batch-norm
running statistics); the hand-written torch model's output shape is checked on the meta device. The hand-written
torch models initialize as Keras does (Glorot-uniform kernels, zero biases), as specdsl's torch build does by
default (``init="keras"``): both pay torch's own init in the constructors and then Keras'. Differences, by design:
the torch VGG16 flattens (C, H, W) rather than (H, W, C), and the torch InceptionV3 keeps a frozen BN gamma where
Keras has none (see ConvBN).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import specdsl

# before keras is first imported (lazily, in the functions below): Keras on torch, no TensorFlow
os.environ.setdefault("KERAS_BACKEND", "torch")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BACKENDS = ("torch", "keras")


# ---------------------------------------------------------------------------------------------------------------
# The hand-written torch models: what a PyTorch user writes for the architectures keras.applications builds.


def keras_init_(model: nn.Module) -> nn.Module:
    """Initialize as Keras (and specdsl's default ``init="keras"``) does: Glorot-uniform kernels, zero biases.

    An explicit init pass after construction, as torchvision's model classes do; nn.init's fans for a conv are
    in/out channels times the receptive field, as Keras counts them. Batch norms keep torch's gamma 1, beta 0.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


class VGG16(nn.Module):
    """keras.applications.VGG16: thirteen 3x3 'same' convs with ReLU in five blocks, each closed by a 2x2 max pool,
    then dense 4096-4096-1000 with softmax. It flattens in torch's (C, H, W) order where Keras flattens (H, W, C):
    the first dense layer has the same parameters, in another row order."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
            for _ in range(convs):
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
                cin = cout
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, classes),
            nn.Softmax(dim=1),
        )
        keras_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def resnet_conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    """ResNet-50's conv (with bias, as Keras') and batch norm (Keras' eps 1.001e-5 and momentum 0.99)."""
    return [nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout, eps=1.001e-5, momentum=0.01)]


class Bottleneck(nn.Module):
    """ResNet v1 bottleneck as Keras builds it: the stride is on the first 1x1 conv (and on the projection)."""

    def __init__(self, cin: int, filters: int, stride: int = 1, project: bool = False):
        super().__init__()
        self.shortcut = (
            nn.Sequential(*resnet_conv_bn(cin, 4 * filters, 1, stride)) if project else nn.Identity()
        )
        self.body = nn.Sequential(
            *resnet_conv_bn(cin, filters, 1, stride),
            nn.ReLU(inplace=True),
            *resnet_conv_bn(filters, filters, 3, padding=1),  # 'same' at stride 1: one pixel each side
            nn.ReLU(inplace=True),
            *resnet_conv_bn(filters, 4 * filters, 1),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.shortcut(x) + self.body(x))


class ResNet50(nn.Module):
    """keras.applications.ResNet50 (v1): zero-pad 3 + 7x7/2 valid conv, BN, ReLU, zero-pad 1 + 3x3/2 max pool,
    stages of 3, 4, 6, 3 bottlenecks (64..512 filters, x4 out), global average pool, dense 1000 softmax."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(
            nn.ZeroPad2d(3),
            *resnet_conv_bn(3, 64, 7, 2),
            nn.ReLU(inplace=True),
            nn.ZeroPad2d(1),  # zeros, as Keras pads; after a ReLU they never win the max
            nn.MaxPool2d(3, 2),
        )
        blocks: list[nn.Module] = []
        cin = 64
        for filters, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(count):
                blocks.append(Bottleneck(cin, filters, stride if i == 0 else 1, project=i == 0))
                cin = 4 * filters
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, classes), nn.Softmax(dim=1)
        )
        keras_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


class ConvBN(nn.Sequential):
    """keras.applications' conv2d_bn: a bias-free conv, batch norm *without scale*, ReLU.

    torch's BatchNorm2d cannot drop gamma alone (affine=False drops beta too), so gamma is kept and frozen at 1
    (``requires_grad=False``): the same function as Keras' scale=False and the same trainable parameters, but
    ``model.parameters()`` holds one extra (frozen) value per batch-norm channel, 17,216 in InceptionV3. The
    benchmark checks that difference exactly. 'same' here only ever has stride 1 and odd kernels, so it is
    symmetric padding.
    """

    def __init__(
        self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, same: bool = True
    ):
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        bn.weight.requires_grad_(False)
        padding = (kh // 2, kw // 2) if same else 0
        super().__init__(
            nn.Conv2d(cin, cout, (kh, kw), stride, padding, bias=False), bn, nn.ReLU(inplace=True)
        )


class Branches(nn.Module):
    """Parallel branches on one input, concatenated along channels."""

    def __init__(self, *branches: nn.Module):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], 1)


def avg_pool_same() -> nn.Module:
    """3x3/1 'same' average pooling; Keras leaves the padding out of the mean."""
    return nn.AvgPool2d(3, 1, padding=1, count_include_pad=False)


def inception_a(cin: int, pool: int) -> Branches:
    seq = nn.Sequential
    return Branches(
        ConvBN(cin, 64, 1),
        seq(ConvBN(cin, 48, 1), ConvBN(48, 64, 5)),
        seq(ConvBN(cin, 64, 1), ConvBN(64, 96, 3), ConvBN(96, 96, 3)),
        seq(avg_pool_same(), ConvBN(cin, pool, 1)),
    )


def reduction_a(cin: int) -> Branches:
    return Branches(
        ConvBN(cin, 384, 3, 2, same=False),
        nn.Sequential(ConvBN(cin, 64, 1), ConvBN(64, 96, 3), ConvBN(96, 96, 3, 2, same=False)),
        nn.MaxPool2d(3, 2),
    )


def inception_b(cin: int, c7: int) -> Branches:
    seq = nn.Sequential
    return Branches(
        ConvBN(cin, 192, 1),
        seq(ConvBN(cin, c7, 1), ConvBN(c7, c7, (1, 7)), ConvBN(c7, 192, (7, 1))),
        seq(
            ConvBN(cin, c7, 1),
            ConvBN(c7, c7, (7, 1)),
            ConvBN(c7, c7, (1, 7)),
            ConvBN(c7, c7, (7, 1)),
            ConvBN(c7, 192, (1, 7)),
        ),
        seq(avg_pool_same(), ConvBN(cin, 192, 1)),
    )


def reduction_b(cin: int) -> Branches:
    seq = nn.Sequential
    return Branches(
        seq(ConvBN(cin, 192, 1), ConvBN(192, 320, 3, 2, same=False)),
        seq(
            ConvBN(cin, 192, 1),
            ConvBN(192, 192, (1, 7)),
            ConvBN(192, 192, (7, 1)),
            ConvBN(192, 192, 3, 2, same=False),
        ),
        nn.MaxPool2d(3, 2),
    )


def inception_c(cin: int) -> Branches:
    seq = nn.Sequential

    def split(c: int) -> Branches:
        return Branches(ConvBN(c, 384, (1, 3)), ConvBN(c, 384, (3, 1)))

    return Branches(
        ConvBN(cin, 320, 1),
        seq(ConvBN(cin, 384, 1), split(384)),
        seq(ConvBN(cin, 448, 1), ConvBN(448, 384, 3), split(384)),
        seq(avg_pool_same(), ConvBN(cin, 192, 1)),
    )


class InceptionV3(nn.Module):
    """keras.applications.InceptionV3 (299x299 input): the stem, mixed0-10, global average pool, dense 1000."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(
            ConvBN(3, 32, 3, 2, same=False),
            ConvBN(32, 32, 3, same=False),
            ConvBN(32, 64, 3),
            nn.MaxPool2d(3, 2),
            ConvBN(64, 80, 1, same=False),
            ConvBN(80, 192, 3, same=False),
            nn.MaxPool2d(3, 2),
        )
        self.mixed = nn.Sequential(
            inception_a(192, 32),  # mixed0 -> 256
            inception_a(256, 64),  # mixed1 -> 288
            inception_a(288, 64),  # mixed2 -> 288
            reduction_a(288),  # mixed3 -> 768 at 17x17
            inception_b(768, 128),  # mixed4
            inception_b(768, 160),  # mixed5
            inception_b(768, 160),  # mixed6
            inception_b(768, 192),  # mixed7
            reduction_b(768),  # mixed8 -> 1280 at 8x8
            inception_c(1280),  # mixed9 -> 2048
            inception_c(2048),  # mixed10
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, classes), nn.Softmax(dim=1)
        )
        keras_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.mixed(self.stem(x)))


# ---------------------------------------------------------------------------------------------------------------
# The warm-up model: tiny, but it uses every layer class and option the three large models use.

WARMUP_SPEC = """\
name: warmup
input: [15, 15, 3]
layers:
  - zero_padding2d: 1
  - conv2d: {filters: 8, kernel: 3, strides: 2}
  - batchnorm: {epsilon: 1.001e-5}
  - activation: {function: relu, name: a}
  - conv2d: {filters: 8, kernel: 3, padding: same, use_bias: false}
  - batchnorm: {scale: false}
  - activation: {function: relu, name: b}
  - add: {inputs: [a, b], name: sum}
  - avgpool2d: {pool: 3, strides: 1, padding: same, name: p}
  - conv2d: {filters: 4, kernel: [1, 3], padding: same, activation: relu, inputs: sum, name: d}
  - concat: {inputs: [p, d], name: cat}
  - maxpool2d: {pool: 2, strides: 2}
  - flatten
  - dense: {units: 16, activation: relu, name: h}
  - global_avgpool2d: {inputs: cat, name: g}
  - concat: {inputs: [g, h]}
  - dense: {units: 10, activation: softmax}
"""


class Warmup(nn.Module):
    """WARMUP_SPEC by hand, in torch."""

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(*resnet_conv_bn(3, 8, 3, 2), nn.ReLU(inplace=True))
        self.pad = nn.ZeroPad2d(1)
        self.b = ConvBN(8, 8, 3)
        self.pool = avg_pool_same()
        self.d = nn.Sequential(nn.Conv2d(8, 4, (1, 3), padding=(0, 1)), nn.ReLU())
        self.h = nn.Sequential(nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(4 * 4 * 12, 16), nn.ReLU())
        self.g = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out = nn.Sequential(nn.Linear(12 + 16, 10), nn.Softmax(dim=1))
        keras_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.a(self.pad(x))
        s = a + self.b(a)
        cat = torch.cat([self.pool(s), self.d(s)], 1)
        return self.out(torch.cat([self.g(cat), self.h(cat)], 1))


def warmup_keras():
    """WARMUP_SPEC by hand, in Keras (the layer classes keras.applications uses)."""
    import keras
    from keras import layers as L

    x = inp = keras.Input((15, 15, 3))
    x = L.ZeroPadding2D(1)(x)
    x = L.Conv2D(8, 3, strides=2)(x)
    x = L.BatchNormalization(epsilon=1.001e-5)(x)
    a = L.Activation("relu")(x)
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(a)
    x = L.BatchNormalization(scale=False)(x)
    b = L.Activation("relu")(x)
    s = L.Add()([a, b])
    p = L.AveragePooling2D(3, strides=1, padding="same")(s)
    d = L.Conv2D(4, (1, 3), padding="same", activation="relu")(s)
    cat = L.Concatenate()([p, d])
    h = L.Dense(16, activation="relu")(L.Flatten()(L.MaxPooling2D(2, 2)(cat)))
    g = L.GlobalAveragePooling2D()(cat)
    out = L.Dense(10, activation="softmax")(L.Concatenate()([g, h]))
    return keras.Model(inp, out)


# ---------------------------------------------------------------------------------------------------------------
# Cases: a spec and its hand-written counterpart per backend


def keras_app(name: str) -> Callable[[], Any]:
    def make():
        import keras

        return getattr(keras.applications, name)(weights=None)

    make.__name__ = f"keras.applications.{name}"
    return make


@dataclass(frozen=True)
class Case:
    """A model to time: its spec (a path, or YAML text) and how to write it by hand for each backend."""

    name: str
    spec: Path | str
    hand: dict[str, Callable[[], Any]]
    torch_input: tuple[int, ...]  # (C, H, W), for the shape check


CASES: dict[str, Case] = {
    "vgg16": Case(
        "vgg16", EXAMPLES / "vgg16.yaml", {"torch": VGG16, "keras": keras_app("VGG16")}, (3, 224, 224)
    ),
    "resnet50": Case(
        "resnet50",
        EXAMPLES / "resnet50.yaml",
        {"torch": ResNet50, "keras": keras_app("ResNet50")},
        (3, 224, 224),
    ),
    "inceptionv3": Case(
        "inceptionv3",
        EXAMPLES / "inceptionv3.yaml",
        {"torch": InceptionV3, "keras": keras_app("InceptionV3")},
        (3, 299, 299),
    ),
}
WARMUP = Case("warmup", WARMUP_SPEC, {"torch": Warmup, "keras": warmup_keras}, (3, 15, 15))


# ---------------------------------------------------------------------------------------------------------------
# Same model? Parameter counts against the plan


def require(condition: bool, message: str) -> None:
    """A check that holds under ``python -O`` too: the comparison is meaningless without it."""
    if not condition:
        raise AssertionError(message)


def frozen_gammas(plan: specdsl.Plan) -> int:
    """The gammas a torch BatchNorm2d keeps (frozen) where the spec's batch norm has no scale: one per channel."""
    return sum(n.shape[-1] for n in plan.layers if n.kind == "batchnorm" and not n.layer.scale)


def torch_counts(model: nn.Module) -> dict[str, int]:
    params = list(model.parameters())
    return {
        "trainable": sum(p.numel() for p in params if p.requires_grad),
        "parameters": sum(p.numel() for p in params),
        "running stats": sum(
            b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var"))
        ),
    }


def keras_counts(model) -> dict[str, int]:
    def size(ws) -> int:
        return sum(math.prod(int(d) for d in w.shape) for w in ws)

    return {
        "trainable": size(model.trainable_weights),
        "non-trainable": size(model.non_trainable_weights),
        "parameters": int(model.count_params()),
    }


def check_hand(case: Case, backend: str, model, plan: specdsl.Plan) -> dict[str, int]:
    """Assert that a hand-written model has the spec's parameters (the documented frozen gammas aside)."""
    if backend == "torch":
        got = torch_counts(model)
        want = {
            "trainable": plan.trainable,
            "parameters": plan.trainable + frozen_gammas(plan),
            "running stats": plan.non_trainable,
        }
    else:
        got = keras_counts(model)
        want = {"trainable": plan.trainable, "non-trainable": plan.non_trainable, "parameters": plan.params}
    require(got == want, f"{case.name} hand-written for {backend}: {got}, but the spec has {want}")
    return got


def check_torch_shape(case: Case) -> tuple[int, ...]:
    """The hand-written torch model's output shape, computed on the meta device (no memory, no arithmetic)."""
    with torch.device("meta"):
        model = case.hand["torch"]()
        out = model.eval()(torch.empty(1, *case.torch_input))
    return tuple(out.shape)


# ---------------------------------------------------------------------------------------------------------------
# Timing


class NetworkTouched(RuntimeError):
    pass


@contextlib.contextmanager
def no_network() -> Iterator[list[str]]:
    """Refuse every socket connection and name lookup inside; yields the list of attempts (asserted empty)."""
    attempts: list[str] = []

    def refuse(what: str):
        def fn(*args, **kwargs):
            attempts.append(f"{what}{args[1:] if what == 'connect' else args}")
            raise NetworkTouched(f"the benchmark touched the network: {attempts[-1]}")

        return fn

    saved = (socket.socket.connect, socket.socket.connect_ex, socket.create_connection, socket.getaddrinfo)
    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect")
    socket.create_connection = refuse("create_connection")
    socket.getaddrinfo = refuse("getaddrinfo")
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.create_connection, socket.getaddrinfo = saved
    if attempts:
        raise NetworkTouched(f"the benchmark touched the network: {attempts}")


def free(backend: str) -> None:
    """Collect the garbage of the last build; Keras' clear_session also resets its name counters (and collects)."""
    if backend == "keras":
        import keras

        keras.backend.clear_session()
    else:
        gc.collect()


def timed(backend: str, make: Callable[[], Any], check: Callable[[Any], Any] | None = None) -> float:
    """Seconds to run ``make()``; the result is checked (untimed), then deleted and collected before returning,
    so each build starts clean (a full collection takes ~0.5 s with Keras loaded: it is done once per build)."""
    start = time.perf_counter()
    model = make()
    seconds = time.perf_counter() - start
    if check is not None:
        check(model)
    del model
    free(backend)
    return seconds


@dataclass(frozen=True)
class Row:
    model: str
    backend: str
    specdsl_s: float
    hand_s: float
    plan_ms: float
    counts: dict[str, int]
    run_ratios: tuple[float, ...] = ()  # specdsl / hand of each repeat (the two ran back to back): the noise

    @property
    def ratio(self) -> float:
        return self.specdsl_s / self.hand_s


def measure(case: Case, backend: str, repeats: int) -> Row:
    """Median seconds of specdsl.build and of the hand-written model over ``repeats`` alternating runs."""
    plan = specdsl.check(case.spec)
    counts: dict[str, int] = {}

    def check_spec(model) -> None:
        got = torch_counts(model)["trainable"] if backend == "torch" else keras_counts(model)["trainable"]
        require(
            got == plan.trainable, f"{case.name}: specdsl's {backend} model has {got} trainable parameters"
        )

    def check_hand_once(model) -> None:
        if not counts:
            counts.update(check_hand(case, backend, model, plan))

    if backend == "torch":
        shape = check_torch_shape(case)
        require(shape == (1, *plan.output_shape), f"{case.name}: the hand-written torch model gives {shape}")

    spec_times, hand_times, plan_times = [], [], []
    contenders = {
        "specdsl": (lambda: specdsl.build(case.spec, backend), check_spec, spec_times),
        "hand": (case.hand[backend], check_hand_once, hand_times),
    }
    free(backend)
    with no_network():
        for i in range(repeats):
            order = ("specdsl", "hand") if i % 2 == 0 else ("hand", "specdsl")
            for who in order:
                make, check, times = contenders[who]
                times.append(timed(backend, make, check if i == 0 else None))
            start = time.perf_counter()
            specdsl.check(case.spec)
            plan_times.append(time.perf_counter() - start)
    return Row(
        case.name,
        backend,
        statistics.median(spec_times),
        statistics.median(hand_times),
        statistics.median(plan_times) * 1e3,
        counts,
        tuple(a / b for a, b in zip(spec_times, hand_times)),
    )


def import_backend(backend: str) -> float:
    """Seconds to import the backend's framework (torch is already imported by this file: 0 then)."""
    start = time.perf_counter()
    if backend == "keras":
        import keras
        import keras.applications  # noqa: F401

        from specdsl.backends import get_backend

        get_backend("keras")
    else:
        from specdsl.backends import get_backend

        get_backend("torch")
    return time.perf_counter() - start


def warm_up(backend: str, case: Case = WARMUP) -> float:
    """Import the backend and build the warm-up model both ways, untimed; returns the import seconds."""
    seconds = import_backend(backend)
    free(backend)
    with no_network():
        plan = specdsl.check(case.spec)
        timed(backend, lambda: specdsl.build(case.spec, backend))
        timed(backend, case.hand[backend], lambda m: check_hand(case, backend, m, plan))
    return seconds


# ---------------------------------------------------------------------------------------------------------------
# The command


FOOTNOTE = """\
ratio = specdsl build / hand-written build, of the medians (1.00x: no overhead). specdsl's column includes
reading the YAML, validation and planning (plan-only ms, for information). ratio per run: the lowest and highest
ratio of one repeat's back-to-back pair, a measure of this machine's noise; a difference within it is no evidence
of one (use more --repeats). No network was touched."""


def table(rows: list[Row]) -> str:
    head = (
        f"{'model':12s} {'backend':8s} {'specdsl build s':>15s} {'hand-written s':>15s} {'ratio':>7s} "
        f"{'plan-only ms':>13s}  {'ratio per run':>13s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        spread = f"{min(r.run_ratios):.2f}-{max(r.run_ratios):.2f}x" if r.run_ratios else "-"
        lines.append(
            f"{r.model:12s} {r.backend:8s} {r.specdsl_s:15.3f} {r.hand_s:15.3f} {r.ratio:6.2f}x "
            f"{r.plan_ms:13.1f}  {spread:>13s}"
        )
    return "\n".join(lines)


def describe_counts(case: Case, row: Row, plan: specdsl.Plan) -> str:
    c = row.counts
    if row.backend == "torch":
        extra = c["parameters"] - c["trainable"]
        return (
            f"   {case.name} torch by hand: {c['trainable']:,} trainable = spec's {plan.trainable:,}; "
            f"{c['parameters']:,} in model.parameters()"
            + (f" (+{extra:,} frozen BN gammas, see ConvBN)" if extra else "")
            + f"; {c['running stats']:,} running stats = spec's non-trainable {plan.non_trainable:,}"
        )
    return (
        f"   {case.name} keras by hand ({case.hand['keras'].__name__}): {c['parameters']:,} params "
        f"({c['trainable']:,} trainable, {c['non-trainable']:,} non-trainable) = spec's {plan.params:,} "
        f"({plan.trainable:,}, {plan.non_trainable:,})"
    )


def main(argv: list[str] | None = None, cases: dict[str, Case] | None = None) -> list[Row]:
    cases = CASES if cases is None else cases
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=list(cases), default=list(cases))
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per contender; the median is kept (default 3)"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    print(
        f"build speed: specdsl.build vs hand-written, median of {args.repeats} run(s); Python "
        f"{platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}, {os.cpu_count()} CPUs"
    )
    rows: list[Row] = []
    for backend in args.backends:
        seconds = warm_up(backend)
        version = ""
        if backend == "keras":
            import keras

            version = f" {keras.__version__}"
        print(
            f"warm-up {backend}{version}: import {seconds:.2f} s, then a tiny model of every layer class built "
            "both ways (all excluded from the timings)",
            flush=True,
        )
        for name in args.models:
            case = cases[name]
            row = measure(case, backend, args.repeats)
            print(describe_counts(case, row, specdsl.check(case.spec)), flush=True)
            rows.append(row)
    print()
    print(table(rows))
    print(FOOTNOTE)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
