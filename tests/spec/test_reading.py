"""Reading spec files: only regular files, at most MAX_FILE_BYTES of them, UTF-8 only, one YAML document, at most
MAX_VALUES values; every refusal one located message."""

from __future__ import annotations

import codecs
import os
import socket

import pytest
import yaml

import specdsl
from specdsl import SpecError
from specdsl.spec import (
    MAX_FILE_BYTES,
    MAX_VALUES,
    _yaml,  # the loader itself, for its tags
    load_file,
    load_text,
    read_bytes,
    read_text,
)

SPEC = "input: [4]\nlayers: [flatten]\n"


def message(path) -> str:
    with pytest.raises(SpecError) as e:
        load_file(path)
    return str(e.value)


def test_devices_are_refused_before_anything_is_read(tmp_path):
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    assert (
        message("/dev/zero")
        == "/dev/zero: is not a regular file (a character device); specs are plain files."
    )
    assert (
        message("/dev/urandom")
        == "/dev/urandom: is not a regular file (a character device); specs are plain files."
    )
    assert message(link) == f"{link}: is not a regular file (a character device); specs are plain files."


def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert message(fifo) == f"{fifo}: is not a regular file (a named pipe); specs are plain files."


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "sock.yaml"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        assert message(path) == f"{path}: is not a regular file (a socket); specs are plain files."


def test_links_that_loop_or_lead_nowhere(tmp_path):
    a, b, dangling = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "gone.yaml"
    a.symlink_to(b)
    b.symlink_to(a)
    dangling.symlink_to(tmp_path / "missing.yaml")
    assert message(a) == f"{a}: is a symbolic link that loops (too many levels of symbolic links)."
    assert message(dangling) == f"{dangling}: is a symbolic link to a file that does not exist."
    assert message(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: no such file."
    assert message(tmp_path) == f"{tmp_path}: is a folder, not a spec file."
    assert message(tmp_path / "a.yaml" / "x.yaml") == (
        f"{tmp_path / 'a.yaml' / 'x.yaml'}: is a symbolic link that loops (too many levels of symbolic links)."
    )


def test_an_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "open", denied)
    assert message(path) == f"{path}: cannot be read (permission denied)."


def test_at_most_the_bound_is_read_whatever_the_size_says(tmp_path):
    # /proc files say they are empty and hold more
    assert read_bytes("/proc/self/status", limit=1 << 20).startswith(b"Name:")
    with pytest.raises(SpecError) as e:
        read_bytes("/proc/self/status", limit=10)
    assert str(e.value) == (
        "/proc/self/status: holds more than 10 bytes; specs are limited to 10 bytes. "
        "Is this really a spec? Use blocks and repeat to keep specs short."
    )
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written
    assert message(big) == (
        f"{big}: is 8,388,609 bytes; specs are limited to 8,388,608 bytes. "
        "Is this really a spec? Use blocks and repeat to keep specs short."
    )


@pytest.mark.parametrize(
    "codec, bom, name",
    [
        ("utf-16-le", codecs.BOM_UTF16_LE, "UTF-16"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "UTF-16"),
        ("utf-32-le", codecs.BOM_UTF32_LE, "UTF-32"),
        ("utf-32-be", codecs.BOM_UTF32_BE, "UTF-32"),
        ("utf-16-le", b"", "UTF-16"),
        ("utf-16-be", b"", "UTF-16"),
        ("utf-32-le", b"", "UTF-32"),
        ("utf-32-be", b"", "UTF-32"),
    ],
)
def test_utf16_and_utf32_are_named(tmp_path, codec, bom, name):
    path = tmp_path / "wide.yaml"
    path.write_bytes(bom + "name: café\n".encode(codec) + SPEC.encode(codec))
    assert message(path) == f"{path}:1:1: is {name} text, not UTF-8. Save it as UTF-8."


def test_binary_and_other_encodings(tmp_path):
    png = tmp_path / "image.yaml"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00")
    assert message(png) == f"{png}:1:1: is a binary file (it contains NUL bytes), not YAML or JSON text."
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"input: [4]\nname: caf\xe9\nlayers: [flatten]\n")
    assert (
        message(latin) == f"{latin}:2:10: is not UTF-8 text (byte 0xe9 at offset 20). Save the file as UTF-8."
    )
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(codecs.BOM_UTF8 + SPEC.encode())
    assert load_file(bom) == {"input": [4], "layers": ["flatten"]}
    assert read_text(bom) == "\ufeff" + SPEC


@pytest.mark.parametrize(
    "text, where, n",
    [
        ("a: 1\n---\nb: 2\n", "2:1", 2),
        ("---\na: 1\n---\nb: 2\n--- c\n", "3:1", 3),
        ("# comment\n%YAML 1.1\n---\na: 1\n---\n", "5:1", 2),
        ("a: |\n  ---\n---\nb: 2\n", "3:1", 2),
    ],
)
def test_several_documents(text, where, n):
    with pytest.raises(SpecError) as e:
        load_text(text, "f.yaml")
    assert (
        str(e.value)
        == f"f.yaml:{where}: holds {n} YAML documents; a spec is one document. Put each spec in a file of its own."
    )


def test_more_values_than_a_spec_may_hold_stop_while_composing():
    text = "input: [4]\nlayers: [flatten]\ndescription: [" + ", ".join(["7"] * MAX_VALUES) + "]\n"
    with pytest.raises(SpecError) as e:
        load_text(text, "f.yaml")
    # the mapping, input, its list, 4, layers, its list, flatten, description, its list: 9 values before the items,
    # so the 200,001st value is item 199,992
    col = len("description: [") + 3 * 199_991 + 1
    assert str(e.value) == (
        f"f.yaml:3:{col}: has more than 200,000 values. Is this really a spec? Use blocks and "
        "repeat to keep specs short."
    )


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "00",
        "0123",
        "0999",
        "7",
        "1_000",
        "12345678901234567890",
        "-1",
        "+1",
        "1e3",
        "1.5",
        ".inf",
        "yes",
        "On",
        "~",
        "null",
        "1:30",
        "2001-12-14",
        "٣",
        "x",
        "",
    ],
)
def test_remembered_tags_are_pyyaml_tags(value):
    loader = _yaml._Loader("x")
    tag = loader.resolve(yaml.ScalarNode, value, (True, False))
    assert tag == yaml.resolver.Resolver.resolve(loader, yaml.ScalarNode, value, (True, False))
    assert loader.resolve(yaml.ScalarNode, value, (True, False)) == tag


def test_a_file_that_is_not_a_mapping_is_never_quoted(tmp_path):
    def message(path) -> str:
        with pytest.raises(SpecError) as e:
            specdsl.load(path)
        return str(e.value)

    token = tmp_path / "token.yaml"
    token.write_text("s3cr3t-token-value\n")
    assert (
        message(token)
        == f"{token}:1:1: holds a string, not a mapping; a spec is a mapping with `input:` and `layers:`."
    )
    listing = tmp_path / "list.yaml"
    listing.write_text("- s3cr3t\n")
    assert (
        message(listing)
        == f"{listing}:1:1: holds a list, not a mapping; a spec is a mapping with `input:` and `layers:`."
    )
