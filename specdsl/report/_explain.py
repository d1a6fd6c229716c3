"""Pictures of what a trained model computes, as PNG grids (torch; the lecture material's "what the network sees"):

- ``feature_maps_<i>.png``: for validation image ``i``, the output of every convolution (the most active channels
  of each, up to :data:`CHANNELS`), one row per layer;
- ``filters.png``: the kernels of the first convolution(s), the ones that read the image itself (RGB when they
  read three channels);
- ``saliency.png``: per image, the image with its true and predicted labels, its Grad-CAM map (Selvaraju et al.
  2017: the last spatial layer's channels weighted by the gradient of the predicted class) and its gradient
  saliency (|d score / d pixel|) over it. A model that is right for the wrong reason shows it here: a "wolf"
  found in the snow around the husky, not in the animal.

Everything is computed from the torch model the backend builds from the plan (its weights loaded from a
checkpoint, or from a model logged to MLflow) and images of the spec's own data, preprocessed as training
preprocessed them. torch, matplotlib and mlflow are imported inside the functions.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._text import terminal
from ..errors import DataError, SpecError, StoreError, TrainError
from ..plan import Plan, PlanNode, fmt
from ._images import BAD, FONT, GOOD, Grid, overlay, rgb, scaled

CONV_KINDS = ("conv2d", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose")
NOT_CAM = ("maxpool2d", "avgpool2d", "dropout", "spatial_dropout2d", "zero_padding2d")  # no Grad-CAM layer
CHANNELS = 16  # channels shown per layer in a feature map grid
LAYERS = 16  # convolutions shown in a feature map grid (evenly chosen when a model has more)
FILTERS = 64  # kernels shown per first convolution
IMAGES = 8  # validation images, by default
MAP_TILE = 56  # pixels of a feature map tile
IMAGE_TILE = 128  # pixels of an image in the saliency grid
FILTER_TILE = 40  # pixels of a kernel
PAD = 6
LABEL_W = 170  # the row labels' column


@dataclass
class Trained:
    """A trained model ready to explain: the plan, its torch model (eval mode), the preprocessing training used
    (``pixel * scale + offset`` per channel) and the class names."""

    plan: Plan
    model: Any
    scale: np.ndarray
    offset: np.ndarray
    class_names: list[str] = field(default_factory=list)
    source: str = ""  # where the weights came from, for the pictures' titles


# ---------------------------------------------------------------------------------------------------------------
# loading


def _checkpoint_file(weights: Path) -> Path:
    path = Path(weights)
    if path.is_dir():
        found = [path / name for name in ("best.pt", "best.weights.h5") if (path / name).is_file()]
        if not found:
            raise TrainError(
                f"the folder {terminal(path)} holds no checkpoint (best.pt or best.weights.h5).",
                hint="Pass the checkpoint file, or the folder `specdsl train -o` wrote.",
            )
        return found[0]
    if not path.is_file():
        raise TrainError(
            f"the checkpoint {terminal(path)} does not exist.",
            hint="Pass the best.pt (or best.weights.h5) that `specdsl train` wrote, e.g. "
            "checkpoints/<name>/best.pt.",
        )
    return path


def load_weights(plan: Plan, weights: str | os.PathLike) -> Any:
    """The torch model of ``plan`` with the weights of a checkpoint of ``specdsl train``: ``best.pt`` (a torch
    state_dict) or ``best.weights.h5`` (Keras' weights, carried over to torch), or a folder holding one."""
    import torch

    from .. import build

    path = _checkpoint_file(Path(weights))
    model = build(plan, "torch")
    if path.suffix == ".h5":
        from ..backends import get_backend
        from ..backends._transfer import keras_to_torch

        keras_model = get_backend("keras").build(plan)
        try:
            keras_model.load_weights(str(path))
        except Exception as e:
            raise TrainError(
                f"the Keras checkpoint {terminal(path)} does not fit the model of the spec "
                f"({type(e).__name__}: {terminal(str(e).splitlines()[0] if str(e) else '')[:200]}).",
                hint="Pass the spec the checkpoint was trained from.",
            ) from None
        keras_to_torch(plan, keras_model, model)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise TrainError(
                f"the checkpoint {terminal(path)} cannot be read as a torch state_dict ({type(e).__name__}).",
                hint="Pass the best.pt that `specdsl train` wrote.",
            ) from None
        _load_state(model, state, str(path))
    model.eval()
    return model


def _load_state(model: Any, state: Any, where: str) -> None:
    if not isinstance(state, dict):
        raise TrainError(
            f"{terminal(where)} holds no state_dict (a {type(state).__name__}).",
            hint="Pass the best.pt that `specdsl train` wrote.",
        )
    mine = model.state_dict()
    missing = sorted(set(mine) - set(state))
    extra = sorted(set(state) - set(mine))
    wrong = sorted(k for k in set(mine) & set(state) if tuple(mine[k].shape) != tuple(state[k].shape))
    if missing or extra or wrong:
        detail = (
            f"missing {', '.join(missing[:3])}"
            if missing
            else f"unexpected {', '.join(extra[:3])}"
            if extra
            else f"{wrong[0]} is {tuple(state[wrong[0]].shape)}, the spec's is {tuple(mine[wrong[0]].shape)}"
        )
        raise TrainError(
            f"the weights in {terminal(where)} do not fit the model of the spec ({terminal(detail)}).",
            hint="Pass the spec the checkpoint was trained from.",
        )
    model.load_state_dict(state)


def preprocessing(dataset: Any, data: Any) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) per channel as training computed them from the training images."""
    from ..train._batches import normalization

    return normalization(dataset.x_train, data.normalize if data is not None else "unit")


def load_run(run_id: str, tracking_uri: str | None = None) -> tuple[str, Any, dict[str, Any]]:
    """What an MLflow run of ``specdsl train`` logged: (the spec's text, the logged model, preprocessing.json)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from ..tracking._store import check_store, quiet_store_log, store_failure

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file on the terminal
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    quiet_store_log()
    check_store(mlflow.get_tracking_uri())
    client = mlflow.MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        failure = store_failure(e, mlflow.get_tracking_uri())
        if failure is not None:
            raise failure from None
        raise TrainError(
            f"there is no MLflow run {terminal(run_id)} in {mlflow.get_tracking_uri()}.",
            hint="Pass the run id `specdsl train` printed, and --tracking-uri where it ran.",
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        names = [f.path for f in client.list_artifacts(run_id, "spec")]
        concrete = [n for n in names if n.endswith(".concrete.yaml")]
        chosen = concrete or [n for n in names if n.endswith((".yaml", ".yml", ".json"))]
        if not chosen:
            raise TrainError(
                f"MLflow run {terminal(run_id)} logged no spec (spec/*.yaml).",
                hint="Explain a run of `specdsl train`, or pass the spec and --weights.",
            )
        text = Path(client.download_artifacts(run_id, chosen[0], tmp)).read_text(encoding="utf-8")
        pre: dict[str, Any] = {}
        if any(f.path == "preprocessing.json" for f in client.list_artifacts(run_id)):
            pre = json.loads(Path(client.download_artifacts(run_id, "preprocessing.json", tmp)).read_text())
    backend = run.data.tags.get("specdsl.backend", "torch")
    try:
        if backend == "keras":
            from ..backends import get_backend

            get_backend("keras")
            import mlflow.keras

            model = mlflow.keras.load_model(f"runs:/{run_id}/model")
        else:
            import mlflow.pytorch

            model = mlflow.pytorch.load_model(f"runs:/{run_id}/model", map_location="cpu")
    except MlflowException:
        raise TrainError(
            f"MLflow run {terminal(run_id)} logged no model.",
            hint="Explain a finished run of `specdsl train` (search trials keep no model), or pass "
            "the spec and --weights.",
        ) from None
    return text, model, pre


def model_from_run(plan: Plan, logged: Any, run_id: str) -> Any:
    """The torch model of ``plan`` with the weights of a model logged by ``specdsl train``."""
    from .. import build

    model = build(plan, "torch")
    if hasattr(logged, "get_weights") and not hasattr(logged, "state_dict"):  # Keras
        from ..backends._transfer import keras_to_torch

        keras_to_torch(plan, logged, model)
    else:
        _load_state(model, dict(logged.state_dict()), f"the model of MLflow run {run_id}")
    model.eval()
    return model


# ---------------------------------------------------------------------------------------------------------------
# choosing images and layers


def pick_images(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` examples, the classes taken in turn (the first example of each class, then the second,
    ...), so that every class shows when ``n`` allows."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(np.asarray(y).tolist()):
        by_class.setdefault(int(label), []).append(i)
    order: list[int] = []
    depth = 0
    while len(order) < min(n, len(y)):
        for label in sorted(by_class):
            if depth < len(by_class[label]) and len(order) < n:
                order.append(by_class[label][depth])
        depth += 1
    return np.asarray(order, dtype=np.int64)


def conv_nodes(plan: Plan) -> list[PlanNode]:
    """The convolutions whose outputs are images (H, W, C), in plan order."""
    return [n for n in plan.nodes if n.kind in CONV_KINDS and len(n.shape) == 3]


def first_convs(plan: Plan) -> list[PlanNode]:
    """The convolutions that no other convolution comes before: the ones that see the image itself."""
    after_conv: dict[str, bool] = {}
    firsts = []
    for node in plan.nodes:
        before = any(after_conv.get(i, False) for i in node.inputs)
        if node.kind in CONV_KINDS and len(node.shape) == 3:
            if not before:
                firsts.append(node)
            after_conv[node.name] = True
        else:
            after_conv[node.name] = before
    return firsts


def cam_node(plan: Plan) -> PlanNode | None:
    """The layer Grad-CAM looks at: the last one with an image output larger than 1x1 that is not a pooling,
    padding or dropout (with fused activations, usually the last convolution)."""
    found = None
    for node in plan.nodes[1:]:
        if len(node.shape) == 3 and node.shape[0] * node.shape[1] > 1 and node.kind not in NOT_CAM:
            found = node
    return found


def _spread(items: list[Any], k: int) -> list[Any]:
    if len(items) <= k:
        return items
    picks = np.linspace(0, len(items) - 1, k).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


# ---------------------------------------------------------------------------------------------------------------
# computing


def _inputs(trained: Trained, images: np.ndarray) -> Any:
    from ..train._batches import to_tensor

    return to_tensor(np.ascontiguousarray(images), trained.scale, trained.offset)


def predictions(trained: Trained, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, its probability) per image."""
    import torch

    with torch.no_grad():
        out = trained.model(_inputs(trained, images))
        out = out[0] if isinstance(out, tuple) else out
    probs = out.double().numpy()
    if probs.shape[-1] == 1:  # one sigmoid unit: class 1's probability
        p1 = probs[:, 0]
        pred = (p1 >= 0.5).astype(np.int64)
        return pred, np.where(pred == 1, p1, 1 - p1)
    pred = probs.argmax(-1)
    return pred, probs[np.arange(len(pred)), pred]


def saliency_maps(
    trained: Trained, images: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """(gradient saliency, Grad-CAM) per image, each H x W in 0..1, for the scores of ``classes`` (pre-softmax
    logits). Grad-CAM is None when the model has no spatial layer to look at."""
    import torch
    import torch.nn.functional as F

    from ..train._metrics import logits_mode

    plan, model = trained.plan, trained.model
    target = cam_node(plan)
    x = _inputs(trained, images).requires_grad_(True)
    with torch.enable_grad(), logits_mode(model, plan):
        values = model.node_outputs(x)
        out = values[plan.outputs[0]]
        picked = torch.as_tensor(classes, dtype=torch.int64)
        if out.shape[-1] == 1:  # a sigmoid unit: its logit for class 1, minus it for class 0
            score = torch.where(picked == 1, out[:, 0], -out[:, 0]).sum()
        else:
            score = out.gather(1, picked.view(-1, 1)).sum()
        wanted = [x] + ([values[target.name]] if target is not None else [])
        grads = torch.autograd.grad(score, wanted)
    grad_x = grads[0].detach().abs().amax(1).numpy()  # (N, H, W)
    saliency = np.stack([scaled(g, percentile=99) for g in grad_x])
    if target is None:
        return saliency, None
    act, grad = values[target.name].detach(), grads[1].detach()
    weights = grad.mean((2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=tuple(images.shape[1:3]), mode="bilinear", align_corners=False)[
        :, 0
    ].numpy()
    return saliency, np.stack([scaled(c) for c in cam])


# ---------------------------------------------------------------------------------------------------------------
# drawing


def _label(trained: Trained, index: int) -> str:
    names = trained.class_names
    return terminal(names[index]) if 0 <= index < len(names) else str(index)


def feature_map_grid(trained: Trained, image: np.ndarray, label: int, path: str | os.PathLike) -> Path | None:
    """The feature maps of one image: a row per convolution (up to :data:`LAYERS`), its :data:`CHANNELS` most
    active channels, each stretched to its own range (viridis). None when the model has no convolution."""
    import torch

    nodes = _spread(conv_nodes(trained.plan), LAYERS)
    if not nodes:
        return None
    with torch.no_grad():
        values = trained.model.node_outputs(_inputs(trained, image[None]))
    pred, prob = predictions(trained, image[None])
    cols = min(CHANNELS, max(n.shape[-1] for n in nodes))
    head = IMAGE_TILE + 2 * PAD + 18
    width = LABEL_W + cols * (MAP_TILE + PAD) + PAD
    height = head + len(nodes) * (MAP_TILE + PAD) + PAD
    grid = Grid(width, height)
    right = int(pred[0]) == int(label)
    grid.tile(PAD, PAD + 16, IMAGE_TILE, IMAGE_TILE, rgb(image))
    grid.text(
        PAD,
        PAD,
        f"true {_label(trained, int(label))}, predicted {_label(trained, int(pred[0]))} ({prob[0]:.2f})",
        color=GOOD if right else BAD,
        weight="bold",
    )
    grid.text(
        IMAGE_TILE + 3 * PAD,
        PAD + 20,
        f"{terminal(trained.plan.name)}: feature maps of "
        f"{len(nodes)} of {len(conv_nodes(trained.plan))} convolutions",
        size=FONT + 1,
    )
    grid.text(
        IMAGE_TILE + 3 * PAD,
        PAD + 40,
        f"each row: the {cols} most active channels (mean output), each scaled to its own range",
        color="#555555",
    )
    for r, node in enumerate(nodes):
        maps = values[node.name][0].numpy()  # (C, H, W)
        order = np.argsort(-maps.mean((1, 2)), kind="stable")[:cols]
        y = head + r * (MAP_TILE + PAD)
        grid.text(PAD, y + MAP_TILE // 2 - 14, terminal(node.name), weight="bold", va="top")
        grid.text(PAD, y + MAP_TILE // 2 + 2, fmt(node.shape), color="#555555", va="top")
        for c, channel in enumerate(order):
            grid.tile(
                LABEL_W + c * (MAP_TILE + PAD), y, MAP_TILE, MAP_TILE, scaled(maps[channel]), cmap="viridis"
            )
    return grid.save(path)


def _kernels(trained: Trained, node: PlanNode) -> np.ndarray:
    """The node's kernels as (filters, in channels, kh, kw)."""
    module = getattr(trained.model, trained.model.names[node.name])
    weight = (module.depthwise.weight if node.kind == "separable_conv2d" else module.weight).detach().numpy()
    return weight.transpose(1, 0, 2, 3) if node.kind == "conv2d_transpose" else weight


def filter_grid(trained: Trained, path: str | os.PathLike) -> Path | None:
    """The kernels of the first convolution(s), up to :data:`FILTERS` each, 16 a row: RGB when a kernel reads
    three channels, else its first channel in gray; each kernel scaled to its own range. None without one."""
    nodes = first_convs(trained.plan)
    if not nodes:
        return None
    per_row = 16
    blocks = []
    for node in nodes:
        k = _kernels(trained, node)[:FILTERS]
        blocks.append((node, k, -(-len(k) // per_row)))
    width = 2 * PAD + per_row * (FILTER_TILE + PAD)
    height = PAD + sum(22 + rows * (FILTER_TILE + PAD) for _, _, rows in blocks) + PAD
    grid = Grid(width, height)
    y = PAD
    for node, k, rows in blocks:
        total = _kernels(trained, node).shape[0]
        what = "RGB" if k.shape[1] == 3 else "gray" if k.shape[1] == 1 else f"input channel 1 of {k.shape[1]}"
        grid.text(
            PAD,
            y,
            f"{terminal(node.name)}: {min(total, FILTERS)} of {total} kernels "
            f"{k.shape[2]}x{k.shape[3]} ({what})",
            weight="bold",
        )
        y += 22
        for i, kernel in enumerate(k):
            tile = scaled(kernel.transpose(1, 2, 0)) if kernel.shape[0] == 3 else scaled(kernel[0])
            grid.tile(
                PAD + (i % per_row) * (FILTER_TILE + PAD),
                y + (i // per_row) * (FILTER_TILE + PAD),
                FILTER_TILE,
                FILTER_TILE,
                tile,
                cmap=None,
            )
        y += rows * (FILTER_TILE + PAD)
    return grid.save(path)


def saliency_grid(trained: Trained, images: np.ndarray, labels: np.ndarray, path: str | os.PathLike) -> Path:
    """One row per image: the image with its true and predicted labels (green when right, red when wrong), its
    Grad-CAM map and its gradient saliency over it."""
    pred, prob = predictions(trained, images)
    saliency, cam = saliency_maps(trained, images, pred)
    target = cam_node(trained.plan)
    columns = [
        "image",
        f"Grad-CAM ({terminal(target.name)})" if target is not None else "Grad-CAM (no layer)",
        "gradient saliency",
    ]
    width = LABEL_W + len(columns) * (IMAGE_TILE + PAD) + PAD
    head = 42
    height = head + len(images) * (IMAGE_TILE + PAD) + PAD
    grid = Grid(width, height)
    grid.text(
        PAD,
        PAD,
        f"{terminal(trained.plan.name)}: where the predicted class's score comes from",
        size=FONT + 1,
        weight="bold",
    )
    if trained.source:
        grid.text(
            width - PAD, PAD + 2, f"weights: {terminal(trained.source)}"[-60:], color="#555555", ha="right"
        )
    for c, title in enumerate(columns):
        grid.text(LABEL_W + c * (IMAGE_TILE + PAD) + IMAGE_TILE // 2, head - 16, title, ha="center")
    for r, image in enumerate(images):
        y = head + r * (IMAGE_TILE + PAD)
        right = int(pred[r]) == int(labels[r])
        grid.text(PAD, y + 30, f"true {_label(trained, int(labels[r]))}", weight="bold")
        grid.text(
            PAD,
            y + 50,
            f"predicted {_label(trained, int(pred[r]))}",
            color=GOOD if right else BAD,
            weight="bold",
        )
        grid.text(PAD, y + 70, f"probability {prob[r]:.2f}", color="#555555")
        base = rgb(image)
        grid.tile(LABEL_W, y, IMAGE_TILE, IMAGE_TILE, base)
        if cam is not None:
            grid.tile(LABEL_W + IMAGE_TILE + PAD, y, IMAGE_TILE, IMAGE_TILE, overlay(base, cam[r]))
        grid.tile(
            LABEL_W + 2 * (IMAGE_TILE + PAD),
            y,
            IMAGE_TILE,
            IMAGE_TILE,
            overlay(base, saliency[r], cmap="hot", alpha=0.6),
        )
    return grid.save(path)


def explain_images(
    trained: Trained, images: np.ndarray, labels: np.ndarray, folder: str | os.PathLike
) -> list[Path]:
    """Every picture of ``trained`` for ``images`` (uint8, N x H x W x C, the model's input size) and their true
    ``labels``, written to ``folder``: ``saliency.png``, ``filters.png`` and ``feature_maps_<i>.png`` for each
    image (the last two when the model has convolutions). Returns the files written."""
    if len(trained.plan.input_shape) != 3:
        raise SpecError(
            f"explain draws images, but the model's input is {fmt(trained.plan.input_shape)}.",
            hint="Explain a model whose input is an image (height, width, channels).",
        )
    if len(images) == 0:
        raise DataError(
            "there are no images to explain (the validation split is empty).",
            hint="Give the spec's data a validation split.",
        )
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(
            f"cannot create the folder {terminal(folder)} ({e.strerror or e}).",
            store=str(folder),
            hint="Pass -o another folder.",
        ) from None
    files = [saliency_grid(trained, images, labels, folder / "saliency.png")]
    filters = filter_grid(trained, folder / "filters.png")
    if filters is not None:
        files.append(filters)
    for i, (image, label) in enumerate(zip(images, labels)):
        maps = feature_map_grid(trained, image, int(label), folder / f"feature_maps_{i}.png")
        if maps is not None:
            files.append(maps)
    return files


# ---------------------------------------------------------------------------------------------------------------
# the command


@dataclass
class Explained:
    """What ``specdsl explain`` made: the files, the images explained, where the pictures were logged."""

    files: list[Path]
    images: int
    correct: int
    run_id: str | None = None
    experiment: str | None = None
    tracking_uri: str | None = None


def run_explain(
    spec: str | os.PathLike | None,
    *,
    weights: str | os.PathLike | None = None,
    run: str | None = None,
    images: int = IMAGES,
    output: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    track: bool | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> Explained:
    """``specdsl explain``: the pictures of a trained model for ``images`` validation images of its data.

    The weights come from ``weights`` (a checkpoint of ``specdsl train``) or from the model logged by the MLflow
    run ``run`` (whose spec is used when ``spec`` is None). ``data`` overrides the spec's ``data.path`` (as
    ``specdsl train --data``). The PNGs go to ``output`` (default ``explain/<the spec's name>``) and, when
    tracking (the default with ``run``; ``track=True`` otherwise), to MLflow under ``explain/``: as artifacts of
    ``run``, or of a new run in ``experiment`` (default: the spec's name).
    """
    import importlib.util

    from .. import check
    from .._text import file_stem
    from ..cli._train import _data_override
    from ..errors import BackendMissingError
    from ..spec import load
    from ..train._compat import load_for

    if importlib.util.find_spec("matplotlib") is None:
        raise BackendMissingError("matplotlib", "specdsl explain", extra="report")
    if (weights is None) == (run is None):
        raise SpecError(
            "explain needs the trained weights: give --weights CHECKPOINT or --run RUN_ID (one of them).",
            hint="e.g. specdsl explain model.yaml --weights checkpoints/<name>/best.pt",
        )
    if images < 1:
        raise SpecError(f"--images must be at least 1, but got {images}.")
    logged = pre = None
    if run is not None:
        text, logged, pre = load_run(run, tracking_uri)
        if spec is None:
            from ..plan import plan as make_plan

            the_plan = make_plan(load(text, file=f"MLflow run {run}: spec"))
        else:
            the_plan = check(spec)
    else:
        if spec is None:
            raise SpecError(
                "explain --weights needs the spec the weights were trained from.",
                hint="specdsl explain model.yaml --weights CHECKPOINT",
            )
        the_plan = check(spec)
    data_spec = _data_override(the_plan, Path(data) if data is not None else None, None)
    if data_spec is None:
        raise DataError(
            "there are no images to explain: the spec has no `data:` section and none was given.",
            hint="Pass --data (a folder of images, or a dataset name: see `specdsl data list`).",
        )
    dataset = load_for(the_plan, data_spec)
    x, y = dataset.x_val, dataset.y_val
    if len(y) == 0:
        x, y = (dataset.x_test, dataset.y_test) if len(dataset.y_test) else (dataset.x_train, dataset.y_train)
    if logged is not None:
        model = model_from_run(the_plan, logged, run)
        source = f"MLflow run {run}"
    else:
        model = load_weights(the_plan, weights)
        source = str(weights)
    if pre and pre.get("scale") and pre.get("offset"):
        scale, offset = (
            np.asarray(pre["scale"], dtype=np.float64),
            np.asarray(pre["offset"], dtype=np.float64),
        )
    else:
        scale, offset = preprocessing(dataset, data_spec)
    names = (pre or {}).get("class_names") or list(dataset.class_names)
    trained = Trained(the_plan, model, scale, offset, names, source)
    chosen = pick_images(x, y, images)
    folder = Path(output) if output is not None else Path("explain") / file_stem(the_plan.name)
    files = explain_images(trained, x[chosen], y[chosen], folder)
    pred, _ = predictions(trained, x[chosen])
    result = Explained(files, len(chosen), int((pred == y[chosen]).sum()))
    if track if track is not None else run is not None:
        _log(result, folder, the_plan, run, tracking_uri, experiment, source)
    return result


def _log(
    result: Explained,
    folder: Path,
    plan: Plan,
    run: str | None,
    tracking_uri: str | None,
    experiment: str | None,
    source: str,
) -> None:
    """The pictures as MLflow artifacts under ``explain/``: of ``run``, or of a new run."""
    import mlflow

    from ..tracking._run import configure
    from ..tracking._store import store_failure

    try:
        if run is not None:
            client = mlflow.MlflowClient()
            client.log_artifacts(run, str(folder), "explain")
            result.run_id = run
            result.experiment = client.get_experiment(client.get_run(run).info.experiment_id).name
        else:
            configure(tracking_uri, experiment or plan.name)
            tags = {
                "specdsl.role": "explain",
                "specdsl.spec": plan.name[:5000],
                "specdsl.weights": source[:5000],
            }
            with mlflow.start_run(run_name=f"explain {plan.name}"[:250], tags=tags) as active:
                mlflow.log_metrics({"explain.images": result.images, "explain.correct": result.correct})
                mlflow.log_artifacts(str(folder), "explain")
                result.run_id = active.info.run_id
            result.experiment = experiment or plan.name
    except Exception as e:
        failure = store_failure(e, mlflow.get_tracking_uri())
        if failure is not None:
            raise failure from None
        raise
    result.tracking_uri = mlflow.get_tracking_uri()
