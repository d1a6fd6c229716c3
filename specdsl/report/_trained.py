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

VERBS = {
    "explain": "Explain",
    "predict": "Predict with",
    "evaluate": "Evaluate",
    "compile": "Compile",
}  # the way out of an error


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
    state_dict) or ``best.weights.h5`` (Keras' weights, carried over to torch), or a folder holding one; or a
    file ``compile --weights`` takes (a specdsl ``.npz`` checkpoint, a Keras ``.keras`` model)."""
    import torch

    path = _checkpoint_file(Path(weights))
    model = get_backend("torch").build(plan)
    if path.suffix in (".npz", ".keras"):
        from ..weights import load_into

        load_into(model, plan, path)
    elif path.suffix == ".h5":
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


def load_run(
    run_id: str, tracking_uri: str | None = None, command: str = "explain"
) -> tuple[str, Any, dict[str, Any]]:
    """What an MLflow run of ``specdsl train`` logged: (the spec's text, the logged model, preprocessing.json).
    ``command`` (explain, predict, evaluate) words the way out of an error."""
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
                hint=f"{VERBS.get(command, command)} a run of `specdsl train`, or pass the spec and --weights.",
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
        model = _logged_checkpoint(client, run_id)  # a run stopped (Ctrl-C) before it logged its model
        if model is None:
            raise TrainError(
                f"MLflow run {terminal(run_id)} logged no model.",
                hint=f"{VERBS.get(command, command)} a finished run of `specdsl train` (search trials keep no "
                "model), or pass the spec and --weights.",
            ) from None
    return text, model, pre


def _logged_checkpoint(client: Any, run_id: str) -> Any:
    """The best checkpoint an interrupted ``specdsl train`` run logged (``checkpoint/best.pt``: its state_dict;
    ``checkpoint/best.weights.h5``: its layers' arrays, read as data), or None when it logged none."""
    names = {f.path for f in client.list_artifacts(run_id, "checkpoint")}
    with tempfile.TemporaryDirectory() as tmp:
        if "checkpoint/best.pt" in names:
            import torch

            path = client.download_artifacts(run_id, "checkpoint/best.pt", tmp)
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception:
                return None
        if "checkpoint/best.weights.h5" in names:
            from ..weights import read

            return read(client.download_artifacts(run_id, "checkpoint/best.weights.h5", tmp))
    return None


def model_from_run(plan: Plan, logged: Any, run_id: str) -> Any:
    """The torch model of ``plan`` with the weights of a model logged by ``specdsl train`` (or of the checkpoint
    an interrupted run logged: a state_dict, or a Keras checkpoint's arrays)."""
    from ..weights import Weights, load_into

    model = get_backend("torch").build(plan)
    if isinstance(logged, Weights):
        load_into(model, plan, logged)
    elif isinstance(logged, dict):
        _load_state(model, logged, f"the checkpoint of MLflow run {run_id}")
    elif hasattr(logged, "get_layer") and hasattr(logged, "layers"):  # Keras: on torch, a Module too
        keras_to_torch(plan, logged, model)
    else:
        _load_state(model, dict(logged.state_dict()), f"the model of MLflow run {run_id}")
    model.eval()
    return model


def run_model(
    run: str,
    spec: str | os.PathLike | None = None,
    *,
    backend: str = "torch",
    tracking_uri: str | None = None,
    command: str = "compile",
) -> tuple[Plan, Any]:
    """The plan of an MLflow run of ``specdsl train`` (of the spec it logged, or of ``spec``) and ``backend``'s
    model of it holding the weights of the model the run logged (or of the checkpoint it logged when stopped
    before). An unknown run, a run with no model or weights that do not fit are one TrainError.

        >>> plan, model = run_model("3f2a...", backend="keras", tracking_uri="sqlite:///mlflow.db")
    """
    from ..plan import plan as make_plan
    from ..spec import load
    from ..weights import get_arrays, set_arrays

    text, logged, _ = load_run(run, tracking_uri, command)
    the_plan = make_plan(load(text, file=f"MLflow run {run}: spec") if spec is None else load(spec))
    model = model_from_run(the_plan, logged, run)
    if backend != "torch":
        model = set_arrays(get_backend(backend).build(the_plan), the_plan, get_arrays(model, the_plan))
    return the_plan, model


def load_trained(
    command: str,
    spec: str | os.PathLike | None,
    *,
    weights: str | os.PathLike | None = None,
    run: str | None = None,
    data: str | os.PathLike | None = None,
    tracking_uri: str | None = None,
    need_data: bool = True,
) -> tuple[Trained, Any]:
    """The trained model a command (explain, predict, evaluate) works on, and the spec's data (None when not
    needed): weights from ``weights`` (a checkpoint) or the model the MLflow run ``run`` logged (its spec used when
    ``spec`` is None); ``data`` overrides the spec's ``data.path``. The preprocessing and class names come from
    the run's preprocessing.json, else from the data (loaded when ``need_data``, or when they cannot come from
    elsewhere); a spec without data takes pixels to 0..1 and names the classes by their index."""
    from ..errors import DataError, SpecError
    from ..plan import plan as make_plan
    from ..spec import load
    from ..train import data_override, load_for

    if (weights is None) == (run is None):
        raise SpecError(
            f"{command} needs the trained weights: give --weights CHECKPOINT or --run RUN_ID (one of them).",
            hint=f"e.g. specdsl {command} model.yaml --weights checkpoints/<name>/best.pt",
        )
    logged = None
    pre: dict[str, Any] = {}
    if run is not None:
        text, logged, pre = load_run(run, tracking_uri, command)
        the_plan = make_plan(load(text, file=f"MLflow run {run}: spec") if spec is None else load(spec))
    else:
        if spec is None:
            raise SpecError(
                f"{command} --weights needs the spec the weights were trained from.",
                hint=f"specdsl {command} model.yaml --weights CHECKPOINT",
            )
        the_plan = make_plan(load(spec))
    data_spec = data_override(the_plan, Path(data) if data is not None else None, None)
    if data_spec is None and need_data:
        raise DataError(
            f"there are no images to {command}: the spec has no `data:` section and none was given.",
            hint="Pass --data (a folder of images, or a dataset name: see `specdsl data list`).",
        )
    known = bool(pre.get("scale") and pre.get("offset") and pre.get("class_names"))
    dataset = load_for(the_plan, data_spec) if data_spec is not None and (need_data or not known) else None
    if logged is not None:
        model, source = model_from_run(the_plan, logged, str(run)), f"MLflow run {run}"
    else:
        model, source = load_weights(the_plan, weights), str(weights)  # type: ignore[arg-type]
    if pre.get("scale") and pre.get("offset"):
        scale = np.asarray(pre["scale"], dtype=np.float64)
        offset = np.asarray(pre["offset"], dtype=np.float64)
    elif dataset is not None:
        scale, offset = preprocessing(dataset, data_spec)
    else:
        channels = the_plan.input_shape[-1]
        scale, offset = np.full(channels, 1 / 255), np.zeros(channels)
    names = pre.get("class_names") or (list(dataset.class_names) if dataset is not None else [])
    return Trained(the_plan, model, scale, offset, [str(n) for n in names], source), dataset
