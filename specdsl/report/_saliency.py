"""What the pictures of a trained model show, computed: the images and layers chosen, the predictions, and the
saliency of each image (Selvaraju et al. 2017's Grad-CAM: the last spatial layer's channels weighted by the
gradient of the predicted class; and the gradient saliency |d score / d pixel|). torch is imported inside the
functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..plan import Plan, PlanNode
from ._images import scaled
from ._trained import Trained

CONV_KINDS = ("conv2d", "depthwise_conv2d", "separable_conv2d", "conv2d_transpose")
NOT_CAM = ("maxpool2d", "avgpool2d", "dropout", "spatial_dropout2d", "zero_padding2d")  # no Grad-CAM layer


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


def model_inputs(trained: Trained, images: np.ndarray) -> Any:
    """The images as the model's input tensor, preprocessed as training preprocessed them."""
    from ..train import to_tensor

    return to_tensor(np.ascontiguousarray(images), trained.scale, trained.offset)


def predictions(trained: Trained, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, its probability) per image."""
    import torch

    with torch.no_grad():
        out = trained.model(model_inputs(trained, images))
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

    from ..train import logits_mode

    plan, model = trained.plan, trained.model
    target = cam_node(plan)
    x = model_inputs(trained, images).requires_grad_(True)
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
