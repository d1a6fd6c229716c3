"""User text in generated source and exported files is data: for any model name and description (any Unicode,
lone surrogates included, as a JSON spec carries them), the torch and the Keras source compile, define the same
statements, docstrings and comments as for a plain name, run nothing when imported (checked with an audit hook)
and keep the text exactly in ``MODEL_NAME`` and ``DESCRIPTION``. Layer names must be identifiers: any other text
is refused with one located error; any identifier (keywords, ``__x``, names the generated file uses) compiles and
keeps its weights' names. Exported files land in the folder asked for, named from the name's safe stem."""

from __future__ import annotations

import ast
import io
import json
import keyword
import re
import subprocess
import sys
import textwrap
import tokenize
import zipfile

import pytest
import yaml
from hypothesis import assume, example, given
from hypothesis import strategies as st
from user_text import INJECTION, PAYLOADS, UNSAFE, examples, run_module, user_text

import specdsl
from specdsl import SpecError
from specdsl._text import file_stem, identifier, literal
from specdsl.spec import NAME_PATTERN, from_tree, load_text

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from specdsl.backends import _keras as K  # noqa: E402
from specdsl.backends import _torch as T  # noqa: E402

LAYERS = [{"dense": {"units": 3, "activation": "relu"}}, {"dense": 2}]


def _spec(name, description, layers=LAYERS) -> dict:
    return {"name": name, "description": description, "input": [4], "layers": layers}


def _statements(tree: ast.Module, model_class: str | None) -> list[tuple]:
    """What a module defines at its top level: statement kinds with their names (the model class as <model>)."""
    out = []
    for node in tree.body:
        name = getattr(node, "name", None)
        if isinstance(node, ast.Assign):
            name = [t.id for t in node.targets]
        out.append((type(node).__name__, "<model>" if model_class and name == model_class else name))
    return out


def _texts(code: str, model_class: str | None) -> tuple[list[str], list[str]]:
    """Every docstring and every comment of a module (the model class's name, which starts the torch module's
    docstring, as <model>)."""
    tree = ast.parse(code)
    docs = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                if model_class and isinstance(node, ast.Module) and doc.startswith(model_class + ":"):
                    doc = "<model>" + doc[len(model_class) :]
                docs.append(doc)
    comments = [
        t.string for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type == tokenize.COMMENT
    ]
    return docs, comments


def _check_source(backend, name: str, description: str) -> None:
    plan = specdsl.check(_spec(name, description))
    reference = specdsl.check(_spec("reference_model", "the reference"))
    code, plain = backend.source(plan), backend.source(reference)
    cls = T.class_name(plan) if backend is T else None
    plain_cls = T.class_name(reference) if backend is T else None
    # the user's text added no statement, docstring or comment: the module is the plain one but for the constants
    assert _statements(ast.parse(code), cls) == _statements(ast.parse(plain), plain_cls)
    assert _texts(code, cls) == _texts(plain, plain_cls)
    assert code.isascii() or all(ch.isprintable() or ch in "\n" for ch in code)
    namespace, events = run_module(code)
    assert events == ["exec"]  # the exec of the module itself, and nothing it does
    assert namespace["MODEL_NAME"] == (name or "model")
    assert namespace["DESCRIPTION"] == description
    assert namespace["SPEC_FILE"] == "<dict>"


@examples(60)
@given(name=user_text(surrogates=True), description=user_text(surrogates=True))
@example(name=INJECTION, description='"""\\')
@example(name="none", description="")
def test_torch_source_keeps_any_name_and_description_as_data(name, description):
    _check_source(T, name, description)


@examples(60)
@given(name=user_text(surrogates=True), description=user_text(surrogates=True))
@example(name=INJECTION, description="x'''\n\\")
def test_keras_source_keeps_any_name_and_description_as_data(name, description):
    _check_source(K, name, description)


@given(st.text(st.characters(exclude_categories=()), max_size=60) | st.sampled_from(PAYLOADS))
def test_literal_is_exact_and_printable(text):
    source = literal(text)
    assert ast.literal_eval(source) == text
    assert all(ch.isprintable() for ch in source)
    assert source[0] == '"' or '"' in text


@given(st.text(max_size=30), st.frozensets(st.from_regex(NAME_PATTERN, fullmatch=True), max_size=5))
def test_identifier_is_a_free_identifier_and_keeps_what_already_is_one(name, taken):
    out = identifier(name, taken)
    assert out.isidentifier() and out.isascii() and out not in taken
    assert not keyword.iskeyword(out)
    assert not (out.startswith("__") and not out.endswith("__"))
    if (
        re.fullmatch(NAME_PATTERN, name)
        and not keyword.iskeyword(name)
        and name not in taken
        and not (name.startswith("__") and not name.endswith("__"))
    ):
        assert out == name


# ------------------------------------------------------------------------------------------------------------
# layer names


@examples(40)
@given(user_text())
def test_a_layer_name_that_is_no_identifier_is_one_located_error(text):
    assume(not re.fullmatch(NAME_PATTERN, text) and "$" not in text)  # `$x` is a parameter reference
    source = yaml.safe_dump(_spec("m", "", [{"dense": {"units": 2, "name": text}}]), allow_unicode=True)
    with pytest.raises(SpecError) as e:
        from_tree(load_text(source, "spec.yaml"), "spec.yaml")
    assert e.value.exit_code == 2
    loc = e.value.loc
    assert loc.line > 0 and loc.col > 0
    assert e.value.format().startswith(f"spec.yaml:{loc.line}:{loc.col}: layers[0] (dense): `")
    assert "\n" not in e.value.format() and not UNSAFE.search(e.value.format())


NAMES = st.one_of(
    st.from_regex(NAME_PATTERN, fullmatch=True).filter(lambda n: len(n) <= 128),
    st.sampled_from(
        [
            "class",
            "None",
            "self",
            "torch",
            "nn",
            "F",
            "math",
            "keras",
            "os",
            "build_model",
            "MODEL_NAME",
            "SPEC_FILE",
            "DESCRIPTION",
            "__x",
            "__init__",
            "forward",
            "Dense",
            "super",
            "_",
            "__",
        ]
    ),
)


@examples(30)
@given(st.lists(NAMES, min_size=2, max_size=2, unique=True))
@example(["__x", "class"])
def test_any_identifier_as_layer_names_compiles_and_keeps_its_weights_names(names):
    assume("input" not in names)
    plan = specdsl.check(
        _spec("m", "", [{"dense": {"units": 3, "name": names[0]}}, {"dense": {"units": 2, "name": names[1]}}])
    )
    namespace, events = run_module(T.source(plan))
    assert events == ["exec"]
    generated = namespace[T.class_name(plan)]()
    assert list(generated.state_dict()) == list(T.build(plan).state_dict())
    namespace, events = run_module(K.source(plan))
    assert events == ["exec"]
    assert [layer.name for layer in namespace["build_model"]().layers] == ["input", *names]


# ------------------------------------------------------------------------------------------------------------
# importing in a fresh interpreter, and the exported files


PROBE = textwrap.dedent(
    """
    import importlib, json, sys
    import torch  # what the generated file imports, imported before the hook: its own doings are its own
    events = []
    def hook(event, args):
        if event in ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.fork"):
            events.append(event)
    sys.addaudithook(hook)
    sys.path.insert(0, sys.argv[1])
    module = importlib.import_module("generated_torch")
    print(json.dumps({"events": events, "name": module.MODEL_NAME}))
    """
)


def test_the_injection_name_imports_as_a_string_in_a_fresh_interpreter(tmp_path):
    """The issue's case as a user meets it: `compile --backend torch` of the name, then `import` of the file."""
    spec = tmp_path / "inject.yaml"
    spec.write_text(f"name: {json.dumps(INJECTION)}\ninput: [4]\nlayers: [dense: 2]\n")
    T.export(specdsl.check(spec), tmp_path / "generated_torch.py", "source")
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"events": [], "name": INJECTION}
    assert not (tmp_path / "specdsl-pwned").exists()


@given(user_text(surrogates=True))
@example("../../../tmp/escape")
@example("/etc/passwd")
@example("..")
def test_a_file_name_from_a_name_stays_in_its_folder(name):
    stem = file_stem(name)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}", stem)
    assert stem == file_stem(stem)


@pytest.mark.parametrize("name", ["../../escape", "/tmp/escape", INJECTION])
def test_exports_into_a_folder_are_named_by_the_safe_stem(name, tmp_path):
    plan = specdsl.check(_spec(name, ""))
    folder = tmp_path / "out"
    folder.mkdir()
    assert T.export(plan, folder, "source") == folder / f"{file_stem(name)}.py"
    assert K.export(plan, folder, "source") == folder / f"{file_stem(name)}.py"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [f"{file_stem(name)}.py"]


def test_exported_files_hold_no_user_text(tmp_path):
    """ONNX, TorchScript, torch.export and .keras files name the model and its layers by identifiers only."""
    plan = specdsl.check(_spec(INJECTION, "a description\x1b[2J"))
    raw = [INJECTION.encode(), b"description\x1b", b'"""; import']
    written = [
        T.export(plan, tmp_path, "torchscript", verify=False),
        T.export(plan, tmp_path, "export", verify=False),
        K.export(plan, tmp_path, "keras"),
    ]
    try:
        import onnx  # noqa: F401

        written.append(T.export(plan, tmp_path, "onnx", verify=False, dynamo=False))
    except ImportError:
        pass
    assert all(p.parent == tmp_path and p.name.startswith(file_stem(INJECTION)) for p in written)
    for path in written:
        blobs = [path.read_bytes()]
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                blobs += [z.read(member) for member in z.namelist()]
        assert not any(text in blob for text in raw for blob in blobs), path.name
