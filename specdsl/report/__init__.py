"""Pictures of a model: from a plan, an architecture diagram; from an Optuna study, its plots (self-contained HTML
and PNG); from a trained model, its feature maps, filters and saliency maps (PNG grids).

Nothing heavy is imported here: the diagram needs Graphviz's ``dot`` program and no framework; the study's plots
import optuna, plotly and matplotlib, the trained model's pictures torch and matplotlib, inside their functions.

    >>> from specdsl.report import diagram, write_diagram
    >>> svg = diagram(specdsl.check("examples/resnet50.yaml"), "svg")      # bytes of an SVG file
    >>> write_diagram(specdsl.check("examples/lenet5.yaml"), "lenet5.png")
    >>> files, note = study_plots(study, "plots/")                          # HTML and PNG of Optuna's plots
    >>> run_explain("model.yaml", weights="checkpoints/model/best.pt")     # explain/model/*.png
    >>> run_predict("model.yaml", ["cat.jpg"], weights="checkpoints/model/best.pt").predictions[0].top
    >>> run_evaluate("model.yaml", weights="checkpoints/model").scores.accuracy  # and evaluate/model/*
    >>> plan, model = run_model(run_id, backend="keras")   # the trained model an MLflow run logged

The modules: ``_diagram`` (the plan as DOT text, laid out by ``dot``); ``_plots`` (a study's plots); ``_images``
(PNG grids of tiles and text, laid out in pixels, drawn by matplotlib); and those of ``specdsl explain``:
``_explain`` (the command: the weights, the data, the files, MLflow), ``_trained`` (a trained model from a
checkpoint or an MLflow run, with its preprocessing), ``_saliency`` (the images and layers chosen, predictions,
gradient saliency and Grad-CAM) and ``_pictures`` (the PNG grids of feature maps, filters and saliency);
``_predict`` (``specdsl predict``: image files decoded and classified); and those of ``specdsl evaluate``:
``_evaluate`` (the command), ``_scores`` (accuracy, confusion matrix, precision, recall, F1) and ``_mistakes``
(the confusion matrix and the most confident mistakes as PNGs).
"""

from ._diagram import (
    DIRECTIONS,
    FORMATS,
    describe,
    diagram,
    diagram_dot,
    diagram_format,
    svg_later,
    write_diagram,
)
from ._evaluate import Evaluation, run_evaluate
from ._explain import Explained, run_explain
from ._images import Grid, overlay, rgb, scaled
from ._pictures import explain_images
from ._plots import PLOTS, objective_names, study_plots
from ._predict import Predicted, Prediction, run_predict
from ._scores import Scores, scores
from ._trained import Trained, load_weights, run_model

__all__ = [
    "DIRECTIONS",
    "FORMATS",
    "PLOTS",
    "Predicted",
    "Prediction",
    "Scores",
    "Evaluation",
    "Explained",
    "Grid",
    "Trained",
    "describe",
    "diagram",
    "diagram_dot",
    "diagram_format",
    "explain_images",
    "load_weights",
    "objective_names",
    "overlay",
    "rgb",
    "run_evaluate",
    "run_explain",
    "run_model",
    "run_predict",
    "scaled",
    "scores",
    "study_plots",
    "svg_later",
    "write_diagram",
]
