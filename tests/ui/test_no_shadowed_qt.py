"""No class in ``ui/`` shadows a member of its Qt base by accident (issue 14 item 6).

``self.event = ...`` on a dialog hides ``QWidget.event`` (Qt calls it for every event),
``self.move = ...`` hides ``QWidget.move``, ``self.scroll = ...`` hides
``QWidget.scroll``: it works until Qt or a caller reaches for the real member. The test
reads every class of ``ui/`` from source (methods, class attributes and every
``self.NAME = ...`` in its methods), imports it, and compares each name with ``dir()``
of the Qt class it derives from:

* an instance or class *attribute* named like a Qt member always fails;
* a *method* named like a Qt member must be a Qt method overridden on purpose and be
  listed in :data:`INTENDED_OVERRIDES` (virtual event handlers, ``sizeHint``, ``data``
  of a model...) or, for a non-virtual one replaced with the same meaning, in
  :data:`DELIBERATE_REPLACEMENTS` with its reason. Anything else is an accidental
  shadow: rename it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject

UI = Path(__file__).resolve().parents[2] / "ui"

# Qt virtuals our classes override deliberately, with the meaning Qt gives them. Keep it to
# what ui/ really overrides (a test fails on a stale entry): adding one is a conscious act.
INTENDED_OVERRIDES: frozenset[str] = frozenset(
    {
        # event handlers
        "closeEvent",
        "eventFilter",
        "focusNextPrevChild",
        "keyPressEvent",
        "paintEvent",
        "resizeEvent",
        "showEvent",
        "setVisible",
        "reject",
        # size negotiation
        "sizeHint",
        "minimumSizeHint",
        # item models, proxy models and delegates
        "rowCount",
        "columnCount",
        "data",
        "headerData",
        "flags",
        "filterAcceptsRow",
        "paint",
    }
)


# Non-virtual Qt methods replaced on purpose in one class, with the same meaning, and why.
DELIBERATE_REPLACEMENTS: dict[tuple[str, str], str] = {
    ("ui.forms.ElidedLabel", "setText"): "keeps the full text and shows what fits",
    ("ui.forms.ElidedLabel", "text"): "the full text; shown_text() gives the shortened one",
}


def _ui_modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(UI.rglob("*.py")):
        rel = path.relative_to(UI.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] == "__main__":
            continue
        yield ".".join(parts), path


def _defined_names(node: ast.ClassDef) -> tuple[set[str], set[str]]:
    """(methods, attributes) defined in the class body or as ``self.X`` in its methods."""
    methods: set[str] = set()
    attrs: set[str] = set()
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            decorators = {ast.unparse(d) for d in item.decorator_list}
            if decorators & {"property", "cached_property", "functools.cached_property"}:
                attrs.add(item.name)
            else:
                methods.add(item.name)
            for sub in ast.walk(item):
                targets: list[ast.expr] = []
                if isinstance(sub, ast.Assign):
                    targets = list(sub.targets)
                elif isinstance(sub, ast.AnnAssign | ast.AugAssign):
                    targets = [sub.target]
                for t in targets:
                    for leaf in ast.walk(t):
                        if (
                            isinstance(leaf, ast.Attribute)
                            and isinstance(leaf.value, ast.Name)
                            and leaf.value.id == "self"
                        ):
                            attrs.add(leaf.attr)
        elif isinstance(item, ast.Assign):
            for t in item.targets:
                if isinstance(t, ast.Name):
                    attrs.add(t.id)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            attrs.add(item.target.id)
    return methods, attrs - methods


def _qt_base(cls: type) -> type | None:
    for base in cls.__mro__[1:]:
        if base.__module__.startswith(("PySide6.", "shiboken6")) and issubclass(base, QObject):
            return base
    return None


def shadows(used: set[str] | None = None) -> list[str]:
    """Every accidental shadow of a Qt member in ``ui/`` as ``module.Class.name (kind)``.

    ``used`` collects the allow-listed overrides actually met.
    """
    found: list[str] = []
    for modname, path in _ui_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = importlib.import_module(modname)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            cls = getattr(module, node.name, None)
            if not inspect.isclass(cls) or cls.__module__ != modname:
                continue  # nested or conditional class: not reachable by name
            qt = _qt_base(cls)
            if qt is None:
                continue
            qt_names = set(dir(qt))
            methods, attrs = _defined_names(node)
            for name in sorted(attrs & qt_names):
                if name.startswith("__"):
                    continue
                found.append(f"{modname}.{node.name}.{name} (attribute hides {qt.__name__})")
            for name in sorted(methods & qt_names):
                if name.startswith("__"):
                    continue
                if name in INTENDED_OVERRIDES:
                    if used is not None:
                        used.add(name)
                    continue
                if (f"{modname}.{node.name}", name) in DELIBERATE_REPLACEMENTS:
                    if used is not None:
                        used.add(f"{modname}.{node.name}.{name}")
                    continue
                found.append(f"{modname}.{node.name}.{name}() (method hides {qt.__name__})")
    return found


def test_walker_sees_ui_classes() -> None:
    """The walk reaches the dialogs and tabs (a broken walk would pass vacuously)."""
    from ui.dialogs import CorrectionDialog, FormDialog

    assert _qt_base(CorrectionDialog) is not None
    tree = ast.parse((UI / "dialogs.py").read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "FormDialog")
    _methods, attrs = _defined_names(node)
    assert {"controller", "form", "pid"} <= attrs
    assert FormDialog.__mro__[1].__name__ == "QDialog"


def test_detects_a_shadow(tmp_path: Path) -> None:
    """A class that sets ``self.move`` is reported (the check can fail)."""
    src = "class T:\n    def __init__(self):\n        self.move = 1\n    def show(self): ...\n"
    node = ast.parse(src).body[0]
    assert isinstance(node, ast.ClassDef)
    from PySide6.QtWidgets import QWidget

    methods, attrs = _defined_names(node)
    assert "move" in attrs & set(dir(QWidget))
    assert "show" in methods & set(dir(QWidget))
    assert "show" not in INTENDED_OVERRIDES


@pytest.mark.gui
def test_no_ui_class_shadows_a_qt_member() -> None:
    used: set[str] = set()
    found = shadows(used)
    assert found == [], "rename these (they hide a Qt member):\n" + "\n".join(found)
    allowed = set(INTENDED_OVERRIDES) | {f"{c}.{n}" for c, n in DELIBERATE_REPLACEMENTS}
    assert allowed - used == set(), "stale allow-list entries: remove them"
