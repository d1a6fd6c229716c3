"""Pictures of a model: from a plan, an architecture diagram (more to come: from an Optuna study, its plots; from a
trained model, its feature maps and saliency maps).

Nothing heavy is imported here: the diagram needs Graphviz's ``dot`` program and no framework.

    >>> from specdsl.report import diagram, write_diagram
    >>> svg = diagram(specdsl.check("examples/resnet50.yaml"), "svg")      # bytes of an SVG file
    >>> write_diagram(specdsl.check("examples/lenet5.yaml"), "lenet5.png")
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

__all__ = [
    "DIRECTIONS",
    "FORMATS",
    "describe",
    "diagram",
    "diagram_dot",
    "diagram_format",
    "svg_later",
    "write_diagram",
]
