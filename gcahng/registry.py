"""A name -> class registry, so that components are chosen by name from configs and the CLI.

    NODE_TO_NODE = Registry("node-to-node layer")

    @NODE_TO_NODE.register("attention")
    class NodeAttention(...): ...

    layer_cls = NODE_TO_NODE.get("attention")

Users register their own classes from their own code with the same decorator.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from gcahng.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (usually classes or factory functions) of one role."""

    def __init__(self, role: str) -> None:
        self.role = role
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
            self._items[name] = obj
            return obj

        return add

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
