"""What ``specdsl import SOURCE`` reads: a model file (never run), or a Python object a user's module makes (run).

SOURCE is a file (``.keras``, ``.h5``, ``.onnx``) or ``module:attribute`` (``mymodels:build``, or
``path/to/file.py:Net``). A file is read as data: ``.keras`` and ``.h5`` with Keras' safe mode (a Python lambda
in the file is refused), ``.onnx`` with ``onnx.load``. ``module:attribute`` imports the user's module and calls
the attribute (a function returning a Keras model or a torch module, or a torch module class, made with no
arguments): that runs the user's code, as running their script would.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

from .._text import shown
from ..errors import BackendMissingError, SourceError

FILE_KINDS = {".keras": "keras", ".h5": "keras", ".hdf5": "keras", ".onnx": "onnx"}


def _fail(source: str, message: str, hint: str | None = None) -> SourceError:
    return SourceError(message, path=shown(source, 200), hint=hint)


def is_reference(source: str) -> bool:
    """``module:attribute`` rather than a file (a file of that name wins)."""
    if os.path.exists(source) or ":" not in source:
        return False
    module, _, attr = source.rpartition(":")
    return bool(module) and attr.isidentifier()


def load_model(source: str) -> tuple[str, Any]:
    """(``"keras"`` | ``"onnx"`` | ``"torch"``, the model object or the ONNX file's path)."""
    if is_reference(source):
        return _from_reference(source)
    path = Path(source)
    if not path.exists():
        raise _fail(
            source,
            "no such file.",
            "Give a .keras, .h5 or .onnx file, or module:function (a function returning a Keras model or a torch "
            "module) or module:Class (a torch module class).",
        )
    if path.is_dir():
        raise _fail(source, "is a folder; give a model file (.keras, .h5, .onnx).")
    kind = FILE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise _fail(
            source,
            f"`{shown(path.suffix or path.name)}` files are not a model specdsl imports; it reads .keras, .h5 and "
            ".onnx files, and module:function / module:Class.",
        )
    if kind == "onnx":
        return "onnx", path
    return "keras", _keras_file(path, source)


def _keras_file(path: Path, source: str) -> Any:
    with open(path, "rb") as f:
        head = f.read(8)
    if path.suffix.lower() == ".keras":
        if not head.startswith(b"PK") or "config.json" not in _zip_names(path):
            raise _fail(source, "is not a Keras .keras model (a zip file holding config.json).")
    else:
        if not head.startswith(b"\x89HDF"):
            raise _fail(source, "is not an HDF5 file.")
        _need("h5py", "Reading .h5 models", "keras")
        import h5py

        with h5py.File(path, "r") as f:
            whole = "model_config" in f.attrs
        if not whole:
            raise _fail(
                source,
                "holds weights only, not a whole model (it has no model_config).",
                "Import the model itself (model.save('model.keras')); weights load into a spec with "
                "specdsl.weights.load_into.",
            )
    _need("keras", "Importing a Keras model", "keras")
    import keras

    from ..backends import get_backend

    get_backend(
        "keras"
    )  # imports the Keras backend, which registers specdsl's own layers, so their files load
    from .._compat._keras import safe_mode

    try:
        with safe_mode():
            return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (
        Exception
    ) as e:  # Keras raises ValueError, TypeError, KeyError, OSError... for a file it cannot read
        text = _first_line(e)
        if "lambda" in text.lower():
            raise _fail(
                source,
                "holds a Lambda layer with Python code; importing a file never runs the code in it.",
                "Replace the Lambda with built-in layers, or import the model from your code with module:function.",
            ) from None
        raise _fail(source, f"Keras cannot load it: {text}") from None


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except zipfile.BadZipFile:
        return []


def _need(package: str, purpose: str, extra: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise BackendMissingError(package, purpose, extra=extra)


def _from_reference(source: str) -> tuple[str, Any]:
    """Import the module, take the attribute, call it: the user's own code runs here."""
    module_name, _, attr = source.rpartition(":")
    module = _import(module_name, source)
    if not hasattr(module, attr):
        names = [n for n in dir(module) if not n.startswith("_")]
        near = difflib.get_close_matches(attr, names, n=1)
        raise _fail(
            source,
            f"module `{shown(module_name)}` has no `{shown(attr)}`.",
            f"Did you mean `{near[0]}`?" if near else None,
        )
    obj = getattr(module, attr)
    if kind_of(obj) is None and callable(obj):
        try:
            obj = obj()  # a function making the model, or a model class made with no arguments
        except Exception as e:
            raise _fail(
                source,
                f"calling `{shown(attr)}()` raised {type(e).__name__}: {_first_line(e)}",
                "It must make the model with no arguments.",
            ) from None
    kind = kind_of(obj)
    if kind is None:
        raise _fail(
            source,
            f"`{shown(attr)}` gives a {type(obj).__name__}, not a Keras model or a torch module.",
            "Point at a function returning a Keras model or a torch nn.Module, or at an nn.Module class.",
        )
    return kind, obj


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return shown(text.splitlines()[0] if text else type(e).__name__, 300)


def _import(module_name: str, source: str) -> Any:
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise _fail(source, f"no such file `{shown(module_name)}`.")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules.setdefault(path.stem, module)
            spec.loader.exec_module(module)
            return module
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # as `python -c "import mymodels"` finds a module here
        return importlib.import_module(module_name)
    except SourceError:
        raise
    except ModuleNotFoundError as e:
        raise _fail(
            source,
            f"cannot import module `{shown(module_name)}`: {shown(str(e), 200)}.",
            "Run from the folder holding it, or give its file: path/to/file.py:name.",
        ) from None
    except Exception as e:
        raise _fail(
            source, f"importing `{shown(module_name)}` raised {type(e).__name__}: {_first_line(e)}"
        ) from None


def kind_of(obj: Any) -> str | None:
    """``keras`` for a Keras model, ``torch`` for an nn.Module, else None (a class is neither: it is made first)."""
    if "keras" in sys.modules:
        import keras

        if isinstance(obj, keras.Model):
            return "keras"
    if "torch" in sys.modules:
        from torch import nn

        if isinstance(obj, nn.Module):
            return "torch"
    return None
