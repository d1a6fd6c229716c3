"""MlflowCallback: per-epoch metrics into an MLflow run, one batched call per epoch."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..train import Callback

# summary values logged once at the end (besides test_* and best_*)
_TIMING = ("epoch_seconds", "images_per_s", "lr")


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C until the block is done, then raise it: an epoch's metrics are written whole or not at all
    before the run is closed as KILLED. Only in the main thread, and only where Python's own SIGINT handler is in
    place."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt


class MlflowCallback(Callback):
    """Logs every epoch's ``logs`` as MLflow metrics at ``step=epoch`` (from 0) with one ``log_batch`` call per epoch
    (20 single ``log_metric`` calls take ~4x as long on a local store), and at the end of training:
    ``test_<metric>`` for the test split, ``best_<key>`` for the best epoch's values and ``best_epoch``.

    ``run_id`` names the run to log into (default: the active run when training begins); ``client`` an
    ``MlflowClient`` (default: one for the current tracking URI). Non-finite values are skipped (MLflow stores
    NaN, but its charts do not draw it).

        >>> with mlflow.start_run():
        ...     fit(plan, callbacks=[MlflowCallback()])
    """

    def __init__(self, run_id: str | None = None, *, client: Any = None, prefix: str = ""):
        self.run_id = run_id
        self.client = client
        self.prefix = prefix
        self.steps_logged = 0

    def _ensure(self) -> None:
        import mlflow

        if self.client is None:
            self.client = mlflow.MlflowClient()
        if self.run_id is None:
            active = mlflow.active_run()
            if active is None:
                from ..errors import TrainError

                raise TrainError(
                    "MlflowCallback has no run to log into: pass run_id=, or start one with mlflow.start_run()."
                )
            self.run_id = active.info.run_id

    def _log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(f"{self.prefix}{k}", float(v), now, step)
            for k, v in values.items()
            if isinstance(v, (int, float)) and math.isfinite(v)
        ]
        if metrics:
            with interrupts_held():
                self.client.log_batch(self.run_id, metrics=metrics)

    def on_train_begin(self, info: dict[str, Any]) -> None:
        self._ensure()

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self._ensure()
        self._log(logs, epoch)
        self.steps_logged += 1

    def on_train_end(self, result: Any) -> None:
        self._ensure()
        final: dict[str, float] = {"best_epoch": result.best_epoch}
        final.update({f"best_{k}": v for k, v in result.best.items() if k not in _TIMING})
        if result.test:
            final.update({f"test_{k}": v for k, v in result.test.items()})
        final["train_seconds"] = result.seconds
        self._log(final, len(result.history))
