"""Pydantic's private API, behind one door: giving a model class its validator from a core schema made before.

``specdsl.spec`` keeps the core schemas of its models between processes (its validators' cache).
Completing a deferred model from such a schema is what pydantic's ``complete_model_class`` does once it has
generated one, and for that pydantic offers no public function: it takes ``ConfigWrapper`` (a model's
``model_config`` as the core config), ``set_deprecated_descriptors``, ``generate_pydantic_signature``,
``LazyClassAttribute`` and ``create_schema_validator`` from its internals (:data:`PRIVATE_API`; pydantic 2.11
and later).

Nothing else in specdsl imports ``pydantic._internal``. ``tests/compat/test_pydantic_compat.py`` fails, naming
pydantic's version, when an upgrade changes any of it; until this module follows, every failure here makes the
caller fall back to pydantic's own build.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

PRIVATE_API = (
    ("pydantic._internal._config", "ConfigWrapper"),
    ("pydantic._internal._model_construction", "set_deprecated_descriptors"),
    ("pydantic._internal._signature", "generate_pydantic_signature"),
    ("pydantic._internal._utils", "LazyClassAttribute"),
    ("pydantic.plugin._schema_validator", "create_schema_validator"),
)
"""(module, name) of each private name this module uses."""


def versions() -> tuple[str, str]:
    """(pydantic's version, pydantic-core's version)."""
    import pydantic
    import pydantic_core

    return pydantic.VERSION, pydantic_core.__version__


def core_config(cls: Any) -> Any:
    """The core config pydantic makes of ``cls.model_config``, to build the validator of ``cls`` with."""
    from pydantic._internal._config import ConfigWrapper

    return ConfigWrapper(cls.model_config, check=False).core_config(title=cls.__name__)


def complete_model(cls: Any, schema: Any, config: Any) -> None:
    """Give the model class ``cls`` its validator, serializer and signature from its core ``schema`` and core
    ``config`` (as :func:`core_config` made it): what pydantic's ``complete_model_class`` does after it has
    generated the schema."""
    from pydantic._internal._config import ConfigWrapper
    from pydantic._internal._model_construction import set_deprecated_descriptors
    from pydantic._internal._signature import generate_pydantic_signature
    from pydantic._internal._utils import LazyClassAttribute
    from pydantic_core import SchemaSerializer, SchemaValidator

    wrapper = ConfigWrapper(cls.model_config, check=False)
    validator: Any
    cls.__pydantic_computed_fields__ = {
        k: v.info for k, v in cls.__pydantic_decorators__.computed_fields.items()
    }
    set_deprecated_descriptors(cls)
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") in ("__all__", "1", "true"):
        # what create_schema_validator does then, without importing its plugin loader (importlib.metadata)
        validator = SchemaValidator(schema, config)
    else:
        from pydantic.plugin._schema_validator import create_schema_validator

        validator = create_schema_validator(
            schema, cls, cls.__module__, cls.__qualname__, "BaseModel", config, wrapper.plugin_settings
        )
    serializer = SchemaSerializer(schema, config)
    cls.__pydantic_core_schema__ = schema
    cls.__pydantic_validator__ = validator
    cls.__pydantic_serializer__ = serializer
    cls.__signature__ = LazyClassAttribute(
        "__signature__",
        partial(
            generate_pydantic_signature,
            init=cls.__init__,
            fields=cls.__pydantic_fields__,
            validate_by_name=wrapper.validate_by_name,
            extra=wrapper.extra,
        ),
    )
    cls.__pydantic_complete__ = True
    cls.__pydantic_on_complete__()
