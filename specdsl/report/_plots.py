"""Optuna's plots of a study, as files that need no network: HTML with plotly.js inside (about 4.8 MB each), and
PNG drawn by Optuna's matplotlib versions of the same plots (no browser).

The objectives are named after the metrics they rank (``val_accuracy``, ``params``), on the axes and in the titles;
a study of several objectives adds its Pareto front, one axis per objective.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from typing import Any

PLOTS = ("optimization_history", "param_importances", "parallel_coordinate", "pareto_front")
PNG_SIZE = (800, 500)  # pixels of every PNG (at PNG_DPI)
PNG_DPI = 100
METRICS_ATTR = "specdsl.metrics"  # the study's user attribute naming its objectives


def objective_names(study: Any) -> list[str]:
    """The metric each objective of ``study`` ranks, as ``specdsl search`` records them; ``objective N`` else."""
    names = list(study.user_attrs.get(METRICS_ATTR) or [])
    n = len(study.directions)
    return names[:n] if len(names) >= n else [f"objective {i}" for i in range(n)]


class _Importances:
    """Optuna's importance evaluator, computed once for both files of the importance plot (fANOVA: a random
    forest, the slowest of the plots)."""

    def __init__(self) -> None:
        from optuna.importance import FanovaImportanceEvaluator

        self._evaluator = FanovaImportanceEvaluator(seed=0)
        self._cache: dict[Any, dict[str, float]] = {}

    def evaluate(self, study: Any, params: Any = None, *, target: Any = None) -> dict[str, float]:
        key = (tuple(params) if params else None, target is None)
        if key not in self._cache:
            self._cache[key] = self._evaluator.evaluate(study, params, target=target)
        return self._cache[key]


def _evaluator() -> Any:
    from optuna.importance import BaseImportanceEvaluator

    # a subclass, as Optuna checks the type of the evaluator it is given
    cls = type("CachedImportances", (_Importances, BaseImportanceEvaluator), {})
    return cls()


def _makers(study: Any, module: Any, names: list[str], evaluator: Any) -> dict[str, Callable[[], Any]]:
    multi = len(names) > 1
    target = (lambda t: t.values[0]) if multi else None
    makers = {
        "optimization_history": lambda: module.plot_optimization_history(
            study, target=target, target_name=names[0]
        ),
        "param_importances": lambda: module.plot_param_importances(
            study, evaluator=evaluator, target=target, target_name=names[0]
        ),
        "parallel_coordinate": lambda: module.plot_parallel_coordinate(
            study, target=target, target_name=names[0]
        ),
    }
    if multi:
        makers["pareto_front"] = lambda: module.plot_pareto_front(study, target_names=names)
    return makers


@contextlib.contextmanager
def _matplotlib() -> Iterator[Any]:
    """pyplot with the process's settings restored afterwards (Optuna's plots switch on the ggplot style)."""
    import matplotlib
    import matplotlib.pyplot as plt

    with matplotlib.rc_context():
        yield plt


def _save_png(axes: Any, path: str, plt: Any) -> None:
    first = axes.flat[0] if hasattr(axes, "flat") else axes
    fig = first.figure
    try:
        fig.set_size_inches(PNG_SIZE[0] / PNG_DPI, PNG_SIZE[1] / PNG_DPI)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig.tight_layout()
        fig.savefig(path, dpi=PNG_DPI, format="png")
    finally:
        plt.close(fig)


def study_plots(
    study: Any,
    folder: str | os.PathLike,
    *,
    metrics: list[str] | None = None,
    html: bool = True,
    png: bool = True,
    diagrams: bool = True,
) -> tuple[list[str], str | None]:
    """Optuna's plots of ``study`` written to ``folder``: ``NAME.html`` (plotly.js inlined: they show offline) and
    ``NAME.png`` (800x500, matplotlib) for NAME in optimization_history, param_importances, parallel_coordinate
    and, with several objectives, pareto_front. ``metrics`` name the objectives (default: what ``specdsl search``
    recorded in the study). Returns (the files written, a note naming the plots that could not be drawn or None;
    with ``diagrams``, the note also says when Graphviz is missing, so that the trials' runs hold no diagram).
    """
    names = list(metrics) if metrics else objective_names(study)
    folder = os.fspath(folder)
    files: list[str] = []
    skipped: list[str] = []
    evaluator = _evaluator()
    kinds = []
    if html:
        if importlib.util.find_spec("plotly") is None:
            skipped.append("html (optuna.visualization needs plotly: pip install plotly)")
        else:
            import optuna.visualization as vis

            kinds.append(("html", vis))
    if png:
        if importlib.util.find_spec("matplotlib") is None:
            skipped.append("png (optuna.visualization.matplotlib needs matplotlib: pip install matplotlib)")
        else:
            import optuna.visualization.matplotlib as vis_mpl

            kinds.append(("png", vis_mpl))
    for suffix, module in kinds:
        for name, make in _makers(study, module, names, evaluator).items():
            path = os.path.join(folder, f"{name}.{suffix}")
            try:
                with warnings.catch_warnings():  # Optuna's "experimental" warnings of the matplotlib plots
                    warnings.simplefilter("ignore")
                    if suffix == "html":
                        make().write_html(path, include_plotlyjs=True, full_html=True)
                    else:
                        with _matplotlib() as plt:
                            _save_png(make(), path, plt)
                files.append(path)
            except Exception as e:  # too few trials for importances, no parameters, ...
                first = str(e).splitlines()[0] if str(e) else ""
                skipped.append(f"{name}.{suffix} ({type(e).__name__}: {first})")
    if diagrams and shutil.which("dot") is None:
        skipped.append("the trials' model.svg (Graphviz's dot is not installed: apt-get install graphviz)")
    note = f"plots skipped: {'; '.join(skipped)}" if skipped else None
    return files, note
