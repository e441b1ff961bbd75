"""The exception tree: one root, and the drawing in screener_base/errors.py equal to the code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import screener_base.errors as errors_module
from screener_base.errors import ScreenerError

PACKAGES = ("screener_base", "chains", "sanctions_lists", "screener")
# One drawn line: tree glyphs, the class name, its module.
DRAWN = re.compile(r"^[\s│├└─]*(\w+)\s+([\w.]+)", re.M)


def _project_exceptions() -> dict[type[BaseException], str]:
    found: dict[type[BaseException], str] = {}
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if ".migrations" in info.name:
                continue  # Alembic's env.py runs a migration when imported
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                    found[value] = info.name
    return found


def _drawn() -> dict[str, tuple[str, int]]:
    """class name -> (module, depth in the drawing)."""
    doc = errors_module.__doc__ or ""
    tree = doc.split("::", 1)[1]
    out = {}
    for line in tree.splitlines():
        match = DRAWN.match(line)
        if match:
            depth = (len(line) - len(line.lstrip(" │├└─"))) // 4
            out[match.group(1)] = (match.group(2), depth)
    return out


def test_every_project_exception_is_under_the_root() -> None:
    outside = sorted(f"{m}.{c.__name__}" for c, m in _project_exceptions().items() if not issubclass(c, ScreenerError))
    assert outside == [], f"derive these from a ScreenerError subclass: {outside}"


def test_the_drawing_in_errors_py_is_the_tree_in_the_code() -> None:
    classes = _project_exceptions()
    drawn = _drawn()
    assert {c.__name__ for c in classes} == set(drawn), "redraw the tree in screener_base/errors.py"
    for cls, module in classes.items():
        assert drawn[cls.__name__][0] == module, f"{cls.__name__} is defined in {module}"
        parent = cls.__mro__[1]
        if cls is not ScreenerError:
            assert drawn[cls.__name__][1] == drawn[parent.__name__][1] + 1, f"{cls.__name__} is drawn under {parent}"
