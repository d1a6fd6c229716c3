"""specdsl/_compat/_pydantic.py against the installed pydantic: each private name it takes is there and takes
the arguments it passes, and a model it completes from a core schema made before is the model pydantic
completes.

Each failure names pydantic's version. Until _pydantic.py follows such an upgrade, the validators' cache falls
back to pydantic's own build: correct, and slower.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import warnings

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, field_validator

from specdsl._compat import _pydantic

PYDANTIC, CORE = _pydantic.versions()
WHO = f"pydantic {PYDANTIC} (pydantic-core {CORE})"
FOLLOW = "specdsl/_compat/_pydantic.py must follow it"

# each private callable -> the parameters _pydantic.py passes it
PARAMETERS = {
    "create_schema_validator": [
        "schema",
        "schema_type",
        "schema_type_module",
        "schema_type_name",
        "schema_kind",
        "config",
        "plugin_settings",
    ],
    "generate_pydantic_signature": ["init", "fields", "validate_by_name", "extra"],
    "set_deprecated_descriptors": ["cls"],
    "LazyClassAttribute": ["name", "get_value"],
    "ConfigWrapper": ["config", "check"],
}


def private(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        pytest.fail(f"{WHO} has no `{module}.{name}` ({e}); {FOLLOW}.")


def test_the_private_names_are_the_ones_checked_here():
    assert sorted(name for _, name in _pydantic.PRIVATE_API) == sorted(PARAMETERS)


@pytest.mark.parametrize("module, name", _pydantic.PRIVATE_API, ids=[n for _, n in _pydantic.PRIVATE_API])
def test_each_private_name_takes_the_arguments_given_it(module, name):
    found = private(module, name)
    params = inspect.signature(found).parameters
    missing = [p for p in PARAMETERS[name] if p not in params]
    assert not missing, f"{WHO}: `{module}.{name}` no longer takes {', '.join(missing)}; {FOLLOW}."


def test_a_config_wrapper_gives_what_complete_model_reads():
    wrapper = private("pydantic._internal._config", "ConfigWrapper")(ConfigDict(extra="forbid"), check=False)
    for attribute in ("plugin_settings", "validate_by_name", "extra"):
        assert hasattr(wrapper, attribute), f"{WHO}: ConfigWrapper has no `{attribute}`; {FOLLOW}."
    assert wrapper.core_config(title="T")["title"] == "T", (
        f"{WHO}: ConfigWrapper.core_config changed; {FOLLOW}."
    )


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    depth: int = Field(default=1, ge=1)


def probe_class() -> type[BaseModel]:
    """A deferred model with what the spec models use: bounds, a validator, a nested model, a default factory,
    a computed field and a deprecated one. (A new class at each call.)"""

    class Probe(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)
        units: int = Field(ge=1, alias="n")
        name: str = "x"
        inner: Inner = Field(default_factory=Inner)
        old: int | None = Field(default=None, deprecated="use units")

        @field_validator("name")
        @classmethod
        def _lower(cls, value: str) -> str:
            return value.lower()

        @computed_field
        @property
        def twice(self) -> int:
            return 2 * self.units

    return Probe


def completed(complete) -> tuple[type[BaseModel], dict[str, type]]:
    """A new probe class completed by ``complete``, and the class attributes that completing it replaced."""
    cls = probe_class()
    before = dict(vars(cls))
    complete(cls)
    return cls, {k: type(v) for k, v in vars(cls).items() if before.get(k, None) is not v}


def test_a_model_completed_from_a_schema_made_before_is_the_model_pydantic_completes():
    theirs, replaced_by_pydantic = completed(lambda cls: cls.model_rebuild())
    # the schema and config as the validators' cache gives them back: pickled by name, so that the class in
    # them is the class being completed
    made = (theirs.__pydantic_core_schema__, _pydantic.core_config(theirs))

    def from_schema(cls):
        _pydantic.complete_model(cls, *copy.deepcopy(made, memo={id(theirs): cls}))

    ours, replaced_by_us = completed(from_schema)
    assert replaced_by_us == replaced_by_pydantic, (
        f"{WHO} completes a model class by replacing {sorted(replaced_by_pydantic)}, "
        f"complete_model {sorted(replaced_by_us)}; {FOLLOW}."
    )
    assert ours.__pydantic_complete__
    for data in ({"n": 3, "name": "AbC"}, {"units": 2, "inner": {"depth": 4}}):
        a, b = theirs.model_validate(data), ours.model_validate(data)
        assert type(b) is ours, f"{WHO}: a model completed by complete_model makes {type(b)}; {FOLLOW}."
        assert b.model_dump() == a.model_dump() and b.model_dump_json() == a.model_dump_json()
    for bad in ({"n": 0}, {"n": 1, "extra": 1}, {"n": 1, "inner": {"depth": 0}}, {}):
        with pytest.raises(ValidationError) as a:
            theirs.model_validate(bad)
        with pytest.raises(ValidationError) as b:
            ours.model_validate(bad)
        assert b.value.errors(include_url=False) == a.value.errors(include_url=False)
    assert str(inspect.signature(ours)) == str(inspect.signature(theirs))
    assert ours.model_json_schema() == theirs.model_json_schema()
    with pytest.raises(ValidationError):  # frozen
        ours(n=1).units = 2
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert ours(n=1).old is None
    assert [str(w.message) for w in seen] == ["use units"], (
        f"{WHO}: deprecated fields no longer warn; {FOLLOW}."
    )
