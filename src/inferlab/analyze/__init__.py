"""Model analysis: complexity (FLOPs, parameters, memory), per-layer profiles, the roofline, the graph view.

This package is also `inferlab.analyze(model, ...)`, the API's function: importing it makes it the `inferlab`
module's attribute `analyze` (the import system sets it), which would otherwise hide the function after its
first call. So the package is callable, and calls the function."""

from __future__ import annotations

import sys
import types
from typing import Any


class _Callable(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from inferlab.api.analysis import analyze

        return analyze(*args, **kwargs)


sys.modules[__name__].__class__ = _Callable
