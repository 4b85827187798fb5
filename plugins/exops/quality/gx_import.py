"""Great Expectations, imported without what exops never runs.

GX 1.x imports every core expectation when it is imported. One of them (the KL divergence
expectation) imports ``scipy.stats`` at module level, about a second here, for a method
that runs only when that expectation is evaluated: none of exops' suites has one.
:func:`great_expectations` defers ``scipy.stats`` with the standard library's
:class:`importlib.util.LazyLoader` before importing GX: the module exists and loads on first
use (``stats.entropy(...)`` works, a second later). Bound on ``scipy`` too, so that
``from scipy import stats`` finds it without the import machinery, which would load it.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from types import ModuleType

log = logging.getLogger(__name__)

# imported by GX at its own import, used only by expectations exops does not use
DEFERRED = ("scipy.stats",)


def great_expectations() -> ModuleType:
    """``import great_expectations`` with :data:`DEFERRED` loading on first use."""
    if "great_expectations" not in sys.modules:
        for name in DEFERRED:
            defer(name)
    import great_expectations as gx

    return gx


def defer(name: str) -> bool:
    """Make ``name`` (a submodule, ``package.module``) load on its first attribute access;
    False when it is already imported or cannot be found (nothing changes then)."""
    if name in sys.modules:
        return False
    parent_name, _, child = name.rpartition(".")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        log.debug("%s is imported as usual: %s", name, exc)
        return False
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
        return False
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    if parent_name:
        setattr(sys.modules[parent_name], child, module)
    return True
