"""Package attributes imported on first access (PEP 562), so that importing a package stays cheap."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_module_attributes(
    module_name: str, mapping: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package ``module_name``: public name -> the module
    that defines it (``mapping``); a resolved name is cached in the package's namespace."""

    def __getattr__(name: str) -> Any:
        source = mapping.get(name)
        if source is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[module_name], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[module_name])) | set(mapping))

    return __getattr__, __dir__
