"""The one registry pattern: a dict of named things filled by a decorator, refusing a name registered twice.

Layer kinds (``specdsl.spec.LAYERS``), shape rules (``specdsl.plan.RULES``), each backend's builders
(``BUILDERS``), the backends themselves (``specdsl.backends.BACKENDS``) and datasets (``specdsl.data.DATASETS``)
are each a :class:`Registry`, filled through a decorator named ``register_<what>``:

    >>> RULES = Registry("rule", within=LAYERS)
    >>> register_rule = RULES.register
    >>> @register_rule("conv2d")
    ... def _conv2d(layer, ins): ...

Standard library only: ``validate`` imports it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class NotRegistered(KeyError):
    """``registry[name]`` for a name that is not registered; the message names the nearest registered one."""

    def __str__(self) -> str:  # KeyError's own str() quotes its message as a repr
        return str(self.args[0])


class Registry(dict[str, T], Generic[T]):
    """A dict of registered things, by name, in the order they were registered.

    Args:
        what: what one entry is, for messages ("rule", "torch builder", "dataset").
        within: a registry whose names are the only ones this one takes (builders and rules exist only for
            registered layer kinds), or None.
        duplicate: the message for a name registered twice, a ``str.format`` template of ``what``, ``name``
            and ``existing`` (the entry already there).

    Reading and iterating are a plain dict's (as fast: planning reads ``RULES[kind]`` per node); a missing
    name raises :class:`NotRegistered`, a ``KeyError`` whose message suggests the nearest name.
    """

    def __init__(
        self,
        what: str,
        *,
        within: Registry | None = None,
        duplicate: str = "a {what} for `{name}` is already registered",
    ):
        super().__init__()
        self.what = what
        self.within = within
        self.duplicate = duplicate

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a ValueError if the name is taken or not in ``within``."""
        self.check(name)
        self[name] = entry
        return entry

    def check(self, name: str) -> None:
        """Raise the ValueError :meth:`add` would raise for ``name``, without registering anything."""
        if name in self:
            raise ValueError(self.duplicate.format(what=self.what, name=name, existing=self[name]))
        if self.within is not None and name not in self.within:
            raise ValueError(f"`{name}` is not a registered {self.within.what}")

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering the function or class it decorates under ``name`` (see :meth:`add`)."""

        def decorate(entry: T) -> T:
            return self.add(name, entry)

        return decorate

    def nearest(self, name: str) -> str | None:
        """The registered name closest to ``name`` (by difflib's ratio), or None when none is close."""
        close = difflib.get_close_matches(name, list(self), n=1)
        return close[0] if close else None

    def __missing__(self, name: str) -> T:
        near = self.nearest(name)
        hint = f" Did you mean `{near}`?" if near else ""
        raise NotRegistered(f"no {self.what} `{name}` is registered; registered: {', '.join(self)}.{hint}")

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self)})"
