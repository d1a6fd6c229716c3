"""The ``specdsl`` command line. validate / summary / schema never import torch, keras, optuna or mlflow."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path

import typer

from ..errors import SpecdslError
from ._output import err, out
from ._validate import run_validate

app = typer.Typer(
    name="specdsl",
    help="Declarative CNN specs: check them, summarize them, compile them to PyTorch or Keras 3, "
    "train and search them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Format(str, Enum):
    text = "text"
    json = "json"
    github = "github"


class SummaryFormat(str, Enum):
    table = "table"
    text = "text"
    json = "json"


def fail(e: SpecdslError) -> typer.Exit:
    """Print one clean message for a user error and give the exit code to raise."""
    err.print("error: " + e.format(), style="red", markup=False)
    return typer.Exit(e.exit_code)


# --------------------------------------------------------------------------------------------------------------


@app.command()
def validate(
    paths: list[Path] = typer.Argument(
        ..., help="Spec files or folders (searched for *.yaml, *.yml, *.json)."
    ),
    format: Format = typer.Option(
        Format.text, "--format", "-f", help="text, json, or github (CI annotations)."
    ),
    samples: int = typer.Option(200, help="Architectures sampled from each search space."),
    strict: bool = typer.Option(
        False, help="Fail a file that warns, naming each warning (a layer silences those it means: silence:)."
    ),
) -> None:
    """Check specs statically: shapes, parameter counts, references. Exit 0 if all are valid, 2 otherwise."""
    raise typer.Exit(run_validate(paths, format.value, samples=samples, strict=strict))


@app.command()
def summary(
    spec: Path = typer.Argument(..., help="A spec file."),
    format: SummaryFormat = typer.Option(
        SummaryFormat.table, "--format", "-f", help="table, text (plain) or json."
    ),
) -> None:
    """Print the model as a table like Keras' model.summary(), with FLOPs and activation memory."""
    from .. import check
    from ..plan import summary_rows, summary_text

    try:
        plan = check(spec)
    except SpecdslError as e:
        raise fail(e) from None
    if format is SummaryFormat.text:
        out.print(summary_text(plan), end="", markup=False)
    elif format is SummaryFormat.json:
        out.print_json({"name": plan.name, "layers": summary_rows(plan), "totals": plan.totals()})
    else:
        from ._render import summary_table

        summary_table(plan, out.rich)


@app.command()
def schema(
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to a file instead of standard output."
    ),
    kinds: bool = typer.Option(
        False, "--kinds", help="Print the reference of every layer kind (Markdown) instead."
    ),
) -> None:
    """Print the JSON Schema of the spec language (for editors: YAML language server, VS Code)."""
    from ..spec import json_schema, kinds_reference

    text = kinds_reference() if kinds else json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if output:
        output.write_text(text)
        err.print(f"wrote {output}", markup=False)
    else:
        sys.stdout.write(text)


class Backend(str, Enum):
    torch = "torch"
    keras = "keras"


class Layout(str, Enum):
    nchw = "nchw"
    nhwc = "nhwc"


@app.command(name="compile")
def compile_(
    spec: Path | None = typer.Argument(
        None, help="A spec file (with --run: optional, the run's spec by default)."
    ),
    backend: Backend = typer.Option(Backend.torch, "--backend", "-b", help="torch or keras."),
    format: str = typer.Option(
        "source",
        "--format",
        "-f",
        help="source (standalone Python); torch: onnx, torchscript, export; keras: keras, weights.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Where to write (source: default stdout)."
    ),
    weights: Path | None = typer.Option(
        None,
        "--weights",
        "-w",
        help="Export these weights (a specdsl .npz checkpoint, or a Keras .keras/.h5 file) instead of fresh ones.",
    ),
    run: str | None = typer.Option(
        None,
        "--run",
        help="Export the weights of the model this MLflow run of `specdsl train` logged (its spec by default).",
    ),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI (with --run)."),
    layout: Layout | None = typer.Option(
        None,
        "--layout",
        help="The exported file's input: nchw (torch's) or nhwc (channels last, as Keras models take it; "
        "torch exports move the channels inside the file). Default: the backend's own.",
    ),
) -> None:
    """Compile a spec to standalone PyTorch or Keras 3 source, or export a model file (ONNX, .keras, ...),
    freshly initialized or with trained weights: a checkpoint's (--weights) or an MLflow run's (--run)."""
    from .. import check
    from ..backends import get_backend
    from ..errors import BackendError, SpecError

    try:
        if weights is not None and run is not None:
            raise SpecError(
                "compile takes the trained weights from --weights CHECKPOINT or --run RUN_ID, not both.",
                hint="Drop one of them.",
            )
        if spec is None and run is None:
            raise SpecError(
                "compile needs a spec file, or --run RUN_ID (whose logged spec it compiles).",
                hint="specdsl compile model.yaml --format onnx -o model.onnx",
            )
        checked = check(spec) if run is None else None  # a bad spec is refused before a framework is imported
        be = get_backend(backend.value)
        if format not in be.FORMATS:
            raise BackendError(f"the {backend.value} backend writes {', '.join(be.FORMATS)}, not `{format}`.")
        if (weights is not None or run is not None) and format == "source":
            given = "--weights" if weights is not None else "--run"
            raise BackendError(
                f"generated source builds a freshly initialized model, so it takes no {given}; export a "
                f"model file with the weights (--format {be.FORMATS[1]} -o PATH), or load them into the "
                "source's model with specdsl.weights.load_into."
            )
        if layout is Layout.nchw and backend is Backend.keras:
            raise BackendError(
                "the Keras backend's models take channels-last (nhwc) input, not nchw.",
                hint="For an NCHW model file, export the torch backend's: --backend torch --format onnx.",
            )
        if layout is Layout.nhwc and backend is Backend.torch and format == "source":
            raise BackendError(
                "generated source builds the torch model, which takes NCHW input; --layout nhwc is for exported "
                f"files ({', '.join(be.FORMATS[1:])}).",
                hint="Give --format onnx (or torchscript, export) with --layout nhwc, or --backend keras.",
            )
        if format != "source" and output is None:
            raise BackendError(f"`--format {format}` writes a file: give it with -o PATH.")
        model = None
        if run is not None:
            from ..report import run_model

            plan, model = run_model(run, spec, backend=backend.value, tracking_uri=tracking_uri)
        else:
            assert checked is not None  # checked above: there is no --run
            plan = checked
        if format == "source":
            pretrained = [bb for bb in plan.spec.backbones if bb.weights is not None]
            if pretrained:  # the source is the architecture; say so rather than drop the weights unsaid
                err.print(
                    f"note: the generated source builds {plan.name} freshly initialized; its backbone's weights "
                    f"({', '.join(str(bb.weights) for bb in pretrained)}) are loaded by specdsl.build or a "
                    "compiled model file (--format "
                    f"{be.FORMATS[1]} -o PATH), or into the source's model with specdsl.weights.load_backbones.",
                    markup=False,
                )
            text = be.source(plan)
            if output is None:
                sys.stdout.write(text)
                return
            output.write_text(text, encoding="utf-8")
            path = output
        else:
            assert output is not None
            if weights is not None:
                from ..weights import load_into

                model = load_into(be.build(plan), plan, weights)
            elif model is None and any(bb.weights is not None for bb in plan.spec.backbones):
                from ..weights import load_backbones

                model = load_backbones(be.build(plan), plan)
            path = be.export(plan, output, format, model=model, layout=layout.value if layout else None)
    except SpecdslError as e:
        raise fail(e) from None
    trained = (
        f", weights from {weights}"
        if weights is not None
        else f", weights of MLflow run {run}"
        if run is not None
        else ""
    )
    shape = f", input {layout.value}" if layout is not None else ""
    err.print(
        f"wrote {path} ({plan.name}: {plan.params:,} params, {backend.value}, {format}{shape}{trained})",
        markup=False,
    )


@app.command()
def train(
    spec: Path = typer.Argument(..., help="A spec file with `train:` and `data:` sections."),
    data: Path | None = typer.Option(None, "--data", help="Dataset folder (overrides data.path)."),
    epochs: int | None = typer.Option(None, "--epochs", "-e", min=1),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1),
    backend: Backend | None = typer.Option(None, "--backend", "-b"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Use at most this many training examples."),
    seed: int | None = typer.Option(None, "--seed"),
    device: str | None = typer.Option(
        None,
        "--device",
        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps (overrides train.device).",
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Folder for the best checkpoint."),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI (default: MLflow's local store)."
    ),
    experiment: str | None = typer.Option(None, "--experiment"),
    track: bool = typer.Option(True, "--track/--no-track", help="Record the run in MLflow."),
) -> None:
    """Train a spec once, with a progress bar, tracked in MLflow."""
    from ._train import run_train

    try:
        code = run_train(
            spec,
            data=data,
            epochs=epochs,
            batch_size=batch_size,
            backend=backend.value if backend else None,
            limit=limit,
            seed=seed,
            device=device,
            output=output,
            tracking_uri=tracking_uri,
            experiment=experiment,
            track=track,
            console=out.rich,
        )
    except SpecdslError as e:
        raise fail(e) from None
    raise typer.Exit(code)


@app.command()
def search(
    space: Path = typer.Argument(..., help="A search space: a spec whose values may be distributions."),
    trials: int | None = typer.Option(None, "--trials", "-n", min=1),
    timeout: str | None = typer.Option(
        None, "--timeout", help="Wall-clock budget: seconds, or 90s, 15m, 2h."
    ),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL (default: a local SQLite file)."
    ),
    study_name: str | None = typer.Option(None, "--study-name"),
    resume: bool = typer.Option(
        True, "--resume/--new", help="Continue the study of the same name (default) or start anew."
    ),
    workers: str = typer.Option(
        "auto",
        "--workers",
        "-w",
        help="Worker processes on this machine: worker i on GPU i mod G, or its share of the CPU cores; auto "
        "(the default): $SPECDSL_WORKERS, else one a GPU, one on MPS, one a CPU core up to 4.",
    ),
    device: str | None = typer.Option(
        None,
        "--device",
        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps (overrides every trial's train.device).",
    ),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri"),
    experiment: str | None = typer.Option(None, "--experiment"),
    epochs: int | None = typer.Option(
        None, "--epochs", "-e", min=1, help="Override train.epochs for every trial."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Use at most this many examples per split."
    ),
    seed: int | None = typer.Option(None, "--seed"),
    fit_epochs: bool = typer.Option(
        True,
        "--fit-epochs/--spec-epochs",
        help="With a timeout: time the first epoch and train every trial the epochs that fit the budget "
        "(default), or the spec's train.epochs.",
    ),
) -> None:
    """Search architectures and hyperparameters with Optuna; every trial is a nested MLflow run."""
    from ..search import SearchOptions
    from ._search import run_search_command

    options = SearchOptions(
        trials=trials,
        timeout=timeout,
        storage=storage,
        study_name=study_name,
        resume=resume,
        workers=workers,
        device=device,
        tracking_uri=tracking_uri,
        experiment=experiment,
        epochs=epochs,
        limit=limit,
        seed=seed,
        fit_epochs=fit_epochs,
    )
    try:
        code = run_search_command(space, options, console=out.rich)
    except SpecdslError as e:
        raise fail(e) from None
    raise typer.Exit(code)


@app.command()
def best(
    study: str = typer.Argument(..., help="Study name (the search space's file name by default)."),
    storage: str | None = typer.Option(None, "--storage"),
    trial: int | None = typer.Option(None, "--trial", help="Freeze this trial instead of the best."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the spec here (default: stdout)."),
) -> None:
    """Freeze the best trial of a study into a concrete spec that compile and train reproduce."""
    from ._search import run_best_command

    try:
        code = run_best_command(study, storage=storage, trial=trial, output=output, console=out.rich)
    except SpecdslError as e:
        raise fail(e) from None
    raise typer.Exit(code)


@app.command(name="import")
def import_(
    source: str = typer.Argument(
        ..., help="model.keras | model.h5 | model.onnx | module:function | module:Class"
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="The spec to write (default: stdout)."),
    weights: Path | None = typer.Option(
        None,
        "--weights",
        help="Also write the source's weights here (.npz), for the spec's torch and Keras models.",
    ),
    flat: bool = typer.Option(False, "--flat", help="One line per layer: no blocks, no repeat."),
    input_shape: str | None = typer.Option(
        None,
        "--input-shape",
        help="A torch module's input, torch's layout without the batch axis: 3,224,224.",
    ),
) -> None:
    """Write an existing model as a spec (and its weights as a checkpoint): a .keras or .h5 file, read as data
    with Keras' safe mode (never run); an ONNX file; or module:function / module:Class, a function returning a
    Keras model or a torch module, or a torch module class that torch.fx traces. module:... imports and RUNS YOUR
    CODE, as running your script would. The spec plans to exactly the source's parameter counts and output
    shapes, with blocks and repeat where the structure repeats (--flat: one line per layer)."""
    from ._import import run_import

    try:
        code = run_import(source, output, weights, flat, input_shape)
    except SpecdslError as e:
        raise fail(e) from None
    raise typer.Exit(code)


def _add_picture_commands() -> None:
    from ._diagram import diagram
    from ._evaluate import evaluate
    from ._explain import explain
    from ._predict import predict

    app.command()(diagram)
    app.command()(explain)
    app.command()(predict)
    app.command()(evaluate)


_add_picture_commands()


def _add_data_commands() -> None:
    from ._data import app as data_app

    app.add_typer(data_app, name="data", help="List and prepare the known datasets.")


def main() -> None:
    """The typer application (``specdsl.cli.main`` comes here for everything but a plain ``validate``)."""
    # The data commands import numpy and the dataset registry: register them only when they can be asked for.
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    if not args or args[0] == "data":
        _add_data_commands()
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)


if __name__ == "__main__":
    main()
