"""User text reaches the terminal escaped: for any model name, description, layer kind, layer name, block name and
file name, the output of `validate` (text, json, github), `summary` (table, text, json) and `compile` holds no
control character, bidirectional control or lone surrogate of it (line breaks are the commands' own), rich markup
in it stays text, GitHub workflow commands escape it by GitHub's rules, and long text is cut in messages. The
progress displays of `train` and `search` escape it too."""

from __future__ import annotations

import io
import json
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from user_text import INJECTION, examples, invoke, no_color, unsafe, user_text

from specdsl._text import QUOTE_LIMIT, github_data, github_property, markup, shown, terminal
from specdsl.errors import MESSAGE_LIMIT, SpecError


def _write(folder: Path, file: str, doc: dict) -> Path:
    """A spec file, every character outside ASCII escaped (YAML reads a raw NEL or U+2028 as a line break)."""
    path = folder / file
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _plain_output(monkeypatch):
    no_color(monkeypatch)


@examples(25)
@given(name=user_text(), description=user_text(), kind=user_text(), layer=user_text(), block=user_text())
@example(name=INJECTION, description="\x1b[2J", kind="d\x1b[2Jense\x07", layer="a\x1bb", block="b\u202e")
@example(name="[/]", description="[red]", kind="[link=x]dense", layer="[/]", block="[b]")
def test_no_raw_control_character_of_user_text_reaches_the_output(name, description, kind, layer, block):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        good = _write(
            folder,
            "good.yaml",
            {"name": name, "description": description, "input": [4], "layers": [{"dense": 3}, {"dense": 2}]},
        )
        bad = [
            _write(folder, "kind.yaml", {"name": description, "input": [4], "layers": [{kind: 2}]}),
            _write(folder, "layer.yaml", {"input": [4], "layers": [{"dense": {"units": 2, "name": layer}}]}),
            _write(
                folder,
                "block.yaml",
                {"input": [4], "blocks": {block: {"layers": ["flatten"]}}, "layers": [{block: None}]},
            ),
        ]
        files = [str(good), *map(str, bad)]
        outputs = {}
        for format in ("text", "json", "github"):
            outputs[f"validate {format}"] = invoke(["validate", "--format", format, *files])
        for format in ("table", "text", "json"):
            outputs[f"summary {format}"] = invoke(["summary", "--format", format, str(good)])
            outputs[f"summary {format} of a bad file"] = invoke(["summary", "--format", format, str(bad[0])])
        outputs["compile"] = invoke(["compile", str(good), "-o", str(folder / "out.py")])
        outputs["compile of a bad file"] = invoke(["compile", str(bad[0])])
        for what, (_, text) in outputs.items():
            assert unsafe(text) == [], what
        # the JSON forms keep the text exactly
        doc = json.loads(outputs["validate json"][1])
        assert doc["files"][0]["name"] == (name or "good")
        assert json.loads(outputs["summary json"][1])["name"] == (name or "good")
        # every GitHub annotation is one line, its file property escaped
        for line in outputs["validate github"][1].splitlines():
            assert re.fullmatch(r"::(error|warning) file=[^,:\r\n]*(,line=\d+,col=\d+)?::[^\r\n]*", line), (
                line
            )


def test_a_file_name_with_escapes_is_shown_escaped(tmp_path):
    path = _write(tmp_path, "a\x1b]0;x\x07.yaml", {"input": [4], "layers": ["nope"]})
    code, text = invoke(["validate", str(tmp_path)])
    assert code == 2
    assert unsafe(text) == []
    assert f"error: {tmp_path}/a\\x1b]0;x\\x07.yaml:4:3: layers[0]: unknown layer kind `nope`" in text
    code, text = invoke(["validate", "--format", "github", str(path)])
    assert text.startswith(f"::error file={tmp_path}/a\\x1b]0;x\\x07.yaml,line=4,col=3::")


def test_a_long_kind_is_cut_in_the_message():
    with pytest.raises(SpecError) as e:
        __import__("specdsl").check({"input": [4], "layers": [{"x" * 10_000: 2}]})
    message = e.value.format()
    assert message.startswith(
        f"<dict>: layers[0]: unknown layer kind `{'x' * (QUOTE_LIMIT - 1)}\u2026`; Layer kinds: "
    )
    assert len(message) < MESSAGE_LIMIT


def test_a_message_long_with_user_text_keeps_its_start_and_end():
    e = SpecError("y" * 5000, hint="The way out.")
    text = e.format()
    assert len(text) == MESSAGE_LIMIT
    assert text.startswith("y" * 666 + " \u2026 y")
    assert text.endswith("y The way out.")


def test_the_sanitizers_give_exact_text():
    assert (
        terminal("a\x1b[2Jb\x07\n\r\t\x00\x9b\u202e\ud800 é 中")
        == "a\\x1b[2Jb\\x07\\n\\r\\t\\x00\\x9b\\u202e\\ud800 é 中"
    )
    assert terminal("one\ntwo\x1b", keep="\n") == "one\ntwo\\x1b"
    assert markup("[bold]x\x1b[/]") == "\\[bold]x\\x1b\\[/]"
    assert github_data("50% done\r\nnext::x") == "50%25 done\\r\\nnext::x"
    assert github_data("a%0Ab") == "a%250Ab"
    assert github_property("C:\\dir,x.yaml\n") == "C%3A\\dir%2Cx.yaml\\n"
    assert shown("abc") == "abc"
    assert shown("x" * 200) == "x" * 79 + "\u2026"


@given(user_text(surrogates=True))
def test_terminal_text_holds_no_unsafe_character_and_is_idempotent(text):
    assert unsafe(terminal(text)) == [] and "\n" not in terminal(text)
    assert terminal(terminal(text)) == terminal(text)
    assert unsafe(github_data(text)) == [] and not re.search("[\r\n]", github_property(text))
    assert "," not in github_property(text) and ":" not in github_property(text)


# ------------------------------------------------------------------------------------------------------------
# the progress displays of train and search


def _rendered(renderable) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue()


@examples(40)
@given(study=user_text(), value=user_text(), reason=user_text())
def test_the_search_progress_escapes_study_names_parameter_values_and_reasons(study, value, reason):
    from rich.console import Console

    from specdsl.search._progress import Progress, Row

    stream = io.StringIO()
    console = Console(file=stream, width=200, color_system=None, force_terminal=False)
    progress = Progress(
        console, study_name=study, metrics=["val_accuracy"], directions=["maximize"], budget=3, timeout=None
    )
    progress.finished(Row(number=0, state="COMPLETE", values=(0.5,), params={"act": value}, seconds=1.0))
    progress.finished(Row(number=1, state="PRUNED", params={"act": value}, reason=reason, rejected=True))
    progress.say(f"study {study}: {reason}")
    text = stream.getvalue() + _rendered(progress._render())
    assert unsafe(text) == []


def test_markup_in_a_parameter_value_shows_as_text_in_the_search_progress():
    from specdsl.search._progress import Progress, Row

    progress = Progress(
        None, study_name="[b]s", metrics=["val_accuracy"], directions=["maximize"], budget=3, timeout=None
    )
    progress.finished(
        Row(number=0, state="COMPLETE", values=(0.5,), params={"act": "[red]x[/]"}, seconds=1.0)
    )
    text = _rendered(progress._render())
    assert "[b]s: trials 1/3" in text and " [red]x[/] " in text


def test_the_train_result_table_and_progress_escape_what_they_show():
    from types import SimpleNamespace

    from rich.console import Console

    from specdsl.cli._train import result_table
    from specdsl.train._progress import ProgressCallback

    result = SimpleNamespace(
        best={"loss": 0.5, "accuracy": 0.9},
        best_epoch=0,
        history=[{}],
        test=None,
        monitor="val_\x1b]0;x\x07[/]loss",
    )
    text = _rendered(result_table(result))
    assert unsafe(text) == [] and "val_\\x1b]0;x\\x07[/]loss" in text
    stream = io.StringIO()
    callback = ProgressCallback(Console(file=stream, width=200, color_system=None, force_terminal=False))
    callback.on_train_begin({"epochs": 1, "steps_per_epoch": 1, "batch_size": 1, "n_train": 1})
    callback.on_epoch_begin(0)
    callback.on_batch_end(0, {"loss[/]": 0.5})
    callback.on_epoch_end(0, {"loss[/]": 0.5, "lr": 0.1})
    callback.close()
    assert "loss[/] 0.5000" in stream.getvalue()
