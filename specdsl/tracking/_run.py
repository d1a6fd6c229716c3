"""An MLflow run for one training of a spec: tags, parameters, artifacts, the model, the final status.

MLflow is imported inside the functions. Without a tracking URI, MLflow's own default applies (MLflow 3: the
``mlflow.db`` SQLite file in the working folder, artifacts under ``./mlruns``; or ``MLFLOW_TRACKING_URI``), so
``mlflow ui`` started in the project folder shows the runs with no flags.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._text import file_stem
from ..errors import TrainError
from ._store import check_artifacts_writable, prepare_store, store_failure
from ._tags import (
    BACKEND_TAG,
    EXPERIMENT_KIND_TAG,
    PARAM_MAX,
    SPEC_FILE_TAG,
    SPEC_TAG,
    TRAINING_KIND,
    VERSION_TAG,
    tag_values,
)


def configure(tracking_uri: str | None = None, experiment: str | None = None) -> str:
    """Point MLflow at ``tracking_uri`` (when given) and make ``experiment`` the current one (tagged as model
    training unless it says its kind already); returns its id. A store that cannot be opened or written is a
    StoreError."""
    import mlflow

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    prepare_store(mlflow.get_tracking_uri())
    try:
        exp = mlflow.set_experiment(experiment or "Default")
        if (
            EXPERIMENT_KIND_TAG not in exp.tags
        ):  # MLflow 3's UI then opens it on its runs, not a GenAI overview
            mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
        return exp.experiment_id
    except Exception as e:
        failure = store_failure(e, mlflow.get_tracking_uri())
        if failure is not None:
            raise failure from None
        if not isinstance(e, mlflow.exceptions.MlflowException):
            raise
        raise TrainError(
            f"MLflow cannot use experiment `{experiment}` at {mlflow.get_tracking_uri()}: {e.message}",
            hint="Check --tracking-uri and --experiment.",
        ) from None


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
        return
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):  # train.stages: train.stages.1.unfreeze, as a search names its draws
            _flatten(f"{prefix}.{i}", v, out)
        return
    if isinstance(value, (list, tuple)):
        value = list(value)
    out[prefix] = str(value)[:PARAM_MAX]


def spec_params(plan: Any, train: Any = None, data: Any = None) -> dict[str, str]:
    """The run's parameters, flattened with dots: ``train.optimizer.lr``, ``data.augment.flip``, the architecture's
    totals ``model.params``, ``model.trainable``, ``model.non_trainable``, ``model.flops``, and the search
    parameters drawn for this spec under their own names.

        >>> spec_params(specdsl.check("examples/mnist_cnn.yaml"))["train.batch_size"]
        '128'
    """
    out: dict[str, str] = {}
    train = train if train is not None else plan.spec.train
    data = data if data is not None else plan.spec.data
    if train is not None:
        _flatten("train", train.model_dump(mode="json"), out)
    if data is not None:
        _flatten("data", data.model_dump(mode="json"), out)
    for key in ("params", "trainable", "non_trainable", "flops", "activation_bytes"):
        out[f"model.{key}"] = str(getattr(plan, key))
    out["model.input_shape"] = str(list(plan.input_shape))
    out["model.output_shape"] = str(list(plan.output_shape))
    for name, value in (plan.spec.params or {}).items():
        out.setdefault(name, str(value)[:PARAM_MAX])
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def pip_requirements(backend: str) -> list[str]:
    """What loading the logged model needs (given explicitly: MLflow's own inference starts a subprocess)."""
    from importlib.metadata import version

    reqs = [f"torch=={version('torch').split('+')[0]}"]
    if backend == "keras":
        reqs.insert(0, f"keras=={version('keras')}")
    return reqs


def log_model(
    model: Any, backend: str, example: Any, *, name: str = "model", serialization_format: str = "pt2"
) -> str:
    """Log the trained model in MLflow's pytorch flavor (torch: ``pt2``, a traced graph that loads without
    specdsl; ``"pickle"`` is quicker to write but needs specdsl to load) or keras flavor, with an input example
    (two normalized images: NCHW for torch, NHWC for Keras) from which MLflow infers the signature.
    Returns the model URI."""
    import mlflow
    import numpy as np

    if backend == "torch":
        import mlflow.pytorch

        model.eval()
        info = mlflow.pytorch.log_model(
            model,
            name=name,
            input_example=example,
            pip_requirements=pip_requirements("torch"),
            serialization_format=serialization_format,
        )
    else:
        from ..backends import get_backend

        get_backend("keras")  # KERAS_BACKEND before mlflow.keras imports keras
        import mlflow.keras
        from mlflow.models import infer_signature

        # a signature, not an input example: mlflow.keras (3.x) writes the example before creating its folder
        signature = infer_signature(example, np.asarray(model.predict(example, verbose=0)))
        info = mlflow.keras.log_model(
            model, name=name, signature=signature, pip_requirements=pip_requirements("keras")
        )
    return info.model_uri


def example_input(result: Any, dataset: Any, n: int = 2) -> Any:
    """``n`` images of the dataset, preprocessed as training fed them, in the backend's layout."""
    import numpy as np

    x = dataset.x_test if len(dataset.x_test) else dataset.x_train
    norm = result.info.get("normalization") or {
        "scale": [1 / 255] * x.shape[-1],
        "offset": [0.0] * x.shape[-1],
    }
    scale = np.asarray(norm["scale"], dtype=np.float32)
    offset = np.asarray(norm["offset"], dtype=np.float32)
    batch = x[:n].astype(np.float32) * scale + offset
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2) if result.backend == "torch" else batch)


class TrackedRun:
    """A context manager around one MLflow run of a spec's training.

    On entry: configures MLflow, starts the run (nested in the active one when ``nested``), checks that its
    artifact folder is writable (a TrainError before any training otherwise; the run is then marked FAILED),
    and logs tags (``specdsl.spec``, ``specdsl.spec_file``, ``specdsl.backend``), parameters
    (:func:`spec_params`) and artifacts (the spec file, ``summary.txt``). ``callback`` is the
    :class:`MlflowCallback` to pass to ``fit``. :meth:`log_result` logs the model and the preprocessing.
    On exit the run ends FINISHED, KILLED (KeyboardInterrupt: the best checkpoint so far is logged first) or
    FAILED (any other exception, which propagates). A failure of the tracking store or of its artifact folder (a
    full disk, a corrupt ``mlflow.db``) becomes one StoreError; the run is closed FAILED if the store still takes it.

        >>> with TrackedRun(plan, train, data, backend="torch") as run:
        ...     result = fit(plan, callbacks=[run.callback], checkpoint_dir="ckpt")
        ...     run.log_result(result, dataset)
    """

    def __init__(
        self,
        plan: Any,
        train: Any = None,
        data: Any = None,
        *,
        backend: str | None = None,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        run_name: str | None = None,
        nested: bool = False,
        tags: dict[str, str] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
    ):
        self.plan = plan
        self.train = train if train is not None else plan.spec.train
        self.data = data if data is not None else plan.spec.data
        self.backend = backend or (self.train.backend if self.train is not None else "torch")
        self.tracking_uri = tracking_uri
        self.experiment = experiment or plan.name
        self.run_name = run_name
        self.nested = nested
        self.tags = dict(tags or {})
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.run_id: str | None = None
        self.artifact_uri: str | None = None
        self.experiment_id: str | None = None
        self.model_uri: str | None = None
        self.callback: Any = None

    def __enter__(self) -> TrackedRun:  # noqa: PYI034 (not meant to be subclassed)
        import mlflow

        from .._version import __version__
        from ._callback import MlflowCallback

        self.experiment_id = configure(self.tracking_uri, self.experiment)
        self.tracking_uri = mlflow.get_tracking_uri()
        tags = tag_values(
            {
                SPEC_TAG: self.plan.name,
                SPEC_FILE_TAG: self.plan.spec.file,
                BACKEND_TAG: self.backend,
                VERSION_TAG: __version__,
                **self.tags,
            }
        )
        try:
            run = mlflow.start_run(
                experiment_id=self.experiment_id, run_name=self.run_name, nested=self.nested, tags=tags
            )
        except Exception as e:
            self._raise_store_failure(e)
            raise
        self.run_id = run.info.run_id
        self.artifact_uri = run.info.artifact_uri
        try:
            check_artifacts_writable(run.info.artifact_uri)
            self._log_spec()
        except BaseException as e:
            self._end("FAILED", e)
            raise
        self.callback = MlflowCallback(self.run_id)
        return self

    def _log_spec(self) -> None:
        import mlflow

        from ..plan import summary_text

        params = spec_params(self.plan, self.train, self.data)
        params["train.backend"] = self.backend
        mlflow.log_params(params)
        file = self.plan.spec.file
        if os.path.isfile(file):
            mlflow.log_artifact(file, artifact_path="spec")
        if self.plan.spec.params or not os.path.isfile(file):  # a drawn search trial: the concrete spec too
            import yaml

            text = yaml.safe_dump(_plain(self.plan.spec.raw), sort_keys=False)
            mlflow.log_text(text, f"spec/{file_stem(self.plan.name)}.concrete.yaml")
        mlflow.log_text(summary_text(self.plan), "summary.txt")

    def log_result(
        self, result: Any, dataset: Any = None, *, model: bool = True, serialization_format: str = "pt2"
    ) -> None:
        """Log the preprocessing (``preprocessing.json``: layout, per-channel scale and offset, class names) and,
        with ``model``, the trained model with an input example from ``dataset``."""
        import mlflow

        pre = {
            "layout": "NCHW" if result.backend == "torch" else "NHWC",
            "dtype": "float32",
            "normalized": "pixel * scale + offset, per channel, pixels 0..255",
            **(result.info.get("normalization") or {}),
            "class_names": result.info.get("class_names"),
            "output": "probabilities (the spec's last activation)",
        }
        mlflow.log_text(json.dumps(pre, indent=2) + "\n", "preprocessing.json")
        if model and dataset is not None:
            self.model_uri = log_model(
                result.model,
                result.backend,
                example_input(result, dataset),
                serialization_format=serialization_format,
            )

    def __exit__(self, kind, exc, tb) -> None:
        import mlflow

        if mlflow.active_run() is None or mlflow.active_run().info.run_id != self.run_id:
            return
        if kind is None:
            self._end("FINISHED")
            return
        if issubclass(kind, KeyboardInterrupt):
            try:
                self._log_checkpoint()
            finally:
                self._end("KILLED")
            return
        self._end("FAILED", exc)

    def _end(self, status: str, exc: BaseException | None = None) -> None:
        """End the run with ``status``; when ``exc`` (what stopped it) or the ending itself is a failure of the
        store, raise it as one StoreError (the run closed FAILED if the store still takes it)."""
        import mlflow

        try:
            mlflow.end_run(status)
        except Exception as e:
            if exc is None:
                self._raise_store_failure(e)
                raise
        if exc is not None:
            self._raise_store_failure(exc)

    def _raise_store_failure(self, e: BaseException) -> None:
        failure = store_failure(e, self.tracking_uri or "", self.artifact_uri)
        if failure is not None and failure is not e:
            raise failure from None

    def _log_checkpoint(self) -> None:
        import mlflow

        folder = self.checkpoint_dir
        if folder is None or not folder.is_dir():
            return
        for name in ("best.pt", "best.json", "best.weights.h5"):
            if (folder / name).is_file():
                mlflow.log_artifact(str(folder / name), artifact_path="checkpoint")
