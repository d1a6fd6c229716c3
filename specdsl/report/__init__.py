"""Pictures of a model: from a plan, an architecture diagram; from an Optuna study, its plots (self-contained HTML
and PNG).

Nothing heavy is imported here: the diagram needs Graphviz's ``dot`` program and no framework; the study's plots
import optuna, plotly and matplotlib inside their functions.

    >>> from specdsl.report import diagram, write_diagram
    >>> svg = diagram(specdsl.check("examples/resnet50.yaml"), "svg")      # bytes of an SVG file
    >>> write_diagram(specdsl.check("examples/lenet5.yaml"), "lenet5.png")
    >>> files, note = study_plots(study, "plots/")                          # HTML and PNG of Optuna's plots
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
from ._plots import PLOTS, objective_names, study_plots

__all__ = [
    "DIRECTIONS",
    "FORMATS",
    "PLOTS",
    "describe",
    "diagram",
    "diagram_dot",
    "diagram_format",
    "objective_names",
    "study_plots",
    "svg_later",
    "write_diagram",
]
