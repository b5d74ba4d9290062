"""Import the local plugins' tiny-checkpoint builders (tests/plugins/*/tiny.py).

The test folders are not packages (pytest runs with --import-mode=importlib),
so the builders are imported by path, once, under a fixed name; the tests and
the benchmarks in bench/ share them through this function.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def load_tiny(plugin: str) -> ModuleType:
    """``tests/plugins/<plugin>/tiny.py`` as module ``mmsdk_tests_tiny_<plugin>``."""
    name = f"mmsdk_tests_tiny_{plugin}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "plugins" / plugin / "tiny.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
