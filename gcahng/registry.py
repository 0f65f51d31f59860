"""A name -> class registry, so that components are chosen by name from configs and the CLI.

    NODE_TO_NODE = Registry("node-to-node layer", check=check_layer_class)

    @NODE_TO_NODE.register("attention")
    class NodeAttention(...): ...

    layer_cls = NODE_TO_NODE.get("attention")

Users register their own classes from their own code with the same decorator; tests (and
short-lived experiments) register for a ``with`` block only::

    with NODE_TO_NODE.registered("my_layer", MyLayer):
        ...
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from gcahng.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (usually classes or factory functions) of one role.

    Args:
        role: what the objects are, for messages ("node-to-node layer").
        check: called with every object being registered; raises :class:`InputError` when the
            object does not fulfil the role's contract (see :func:`check_module_class`).
    """

    def __init__(self, role: str, *, check: Callable[[T], None] | None = None) -> None:
        self.role = role
        self._check = check
        self._items: dict[str, T] = {}

    def register(self, name: str, *, overwrite: bool = False) -> Callable[[T], T]:
        """Decorator adding an object under ``name``; re-registering needs ``overwrite=True``."""
        if not name or not isinstance(name, str):
            raise InputError(f"{self.role} name must be a non-empty string, got {name!r}")

        def add(obj: T) -> T:
            if name in self._items and not overwrite and self._items[name] is not obj:
                raise InputError(
                    f"{self.role} {name!r} is already registered; pass overwrite=True to replace it"
                )
            if self._check is not None:
                self._check(obj)
            self._items[name] = obj
            return obj

        return add

    @contextmanager
    def registered(self, name: str, obj: T, *, overwrite: bool = False) -> Iterator[T]:
        """Register ``obj`` as ``name`` for a ``with`` block; afterwards the registry is as before
        (a replaced object, with ``overwrite=True``, comes back)."""
        with self.restored_on_exit():
            yield self.register(name, overwrite=overwrite)(obj)

    @contextmanager
    def restored_on_exit(self) -> Iterator[None]:
        """Undo every registration made inside the ``with`` block (for example by importing a
        plugin module), also when the block raises."""
        saved = dict(self._items)
        try:
            yield
        finally:
            self._items.clear()
            self._items.update(saved)

    def get(self, name: str) -> T:
        """The object registered as ``name``; an unknown name lists the registered ones."""
        try:
            return self._items[name]
        except KeyError:
            raise InputError(
                f"unknown {self.role} {name!r}; registered: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.role!r}: {', '.join(self.names())})"


def check_module_class(
    obj: object, role: str, base: type, *, call: str, args: tuple = (), kwargs: dict | None = None,
    methods: tuple[str, ...] = (),
) -> None:
    """Raise :class:`InputError` unless ``obj`` is a subclass of ``base`` (usually ``nn.Module``)
    that defines ``methods`` and whose constructor can be called with ``args`` and ``kwargs``
    (sample values; ``call`` spells the call for the message, e.g. ``"dim, *, heads, dropout"``).

    Only the signature is checked; nothing is constructed.
    """
    name = getattr(obj, "__qualname__", repr(obj))
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise InputError(f"a {role} must be a subclass of {base.__module__}.{base.__qualname__}, got {name}")
    missing = [m for m in methods if not callable(getattr(obj, m, None))]
    if missing:
        raise InputError(f"{role} {name} lacks the method(s) {', '.join(missing)}")
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # a signature Python cannot read (a C extension): trust the class
        return
    try:
        signature.bind(*args, **(kwargs or {}))
    except TypeError as e:
        raise InputError(f"{role} {name} must be constructible as {name}({call}): {e}") from None
