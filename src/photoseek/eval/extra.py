"""Optional libraries of the `eval` extra, imported when first needed with a clear error if absent."""

from __future__ import annotations

import importlib
from types import ModuleType

from photoseek.errors import Unavailable


def require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(
            f"{module.split('.')[0]} is not installed. Install the evaluation extra: "
            "pip install 'photoseek[eval]'."
        ) from exc
