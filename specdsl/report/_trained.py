"""A trained model to explain: its torch model with the weights of a checkpoint of ``specdsl train`` (``best.pt``,
or Keras' ``best.weights.h5`` carried over to torch) or of a model logged to MLflow, and the preprocessing that
training used. torch and mlflow are imported inside the functions.
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
from ..backends import get_backend, keras_to_torch
from ..errors import TrainError
from ..plan import Plan


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

    path = _checkpoint_file(Path(weights))
    model = get_backend("torch").build(plan)
    if path.suffix == ".h5":
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
    from ..train import normalization

    return normalization(dataset.x_train, data.normalize if data is not None else "unit")


def load_run(run_id: str, tracking_uri: str | None = None) -> tuple[str, Any, dict[str, Any]]:
    """What an MLflow run of ``specdsl train`` logged: (the spec's text, the logged model, preprocessing.json)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from ..tracking import check_store, quiet_store_log, store_failure

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
    model = get_backend("torch").build(plan)
    if hasattr(logged, "get_weights") and not hasattr(logged, "state_dict"):  # Keras
        keras_to_torch(plan, logged, model)
    else:
        _load_state(model, dict(logged.state_dict()), f"the model of MLflow run {run_id}")
    model.eval()
    return model
