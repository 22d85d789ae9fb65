"""Fast tests of the packaging scripts (no PyInstaller build here: CI runs build.py for that).

* ``build_scripts/bedside.spec`` runs against stub PyInstaller classes, for Linux, Windows
  and macOS: onedir, resources bundled, UPX off, exclusions, the Windows console twin,
  the macOS bundle, the prune report;
* ``build.py``: Qt prune rules on real-looking file names of the three platforms, the
  library cascade of :func:`prune_toc`, the stderr whitelist, the size budget, the
  ``validate`` summary, the icon writers;
* ``bench.py``: parsing of the other benchmark scripts' output;
* ``ui.app.main`` routes every command of the core's registry, with its PDF writer (the frozen
  entry points).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "build_scripts"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build() -> Iterator[ModuleType]:
    """``build_scripts/build.py`` as a module."""
    yield _load("bedside_build_under_test", SCRIPTS / "build.py")
    sys.modules.pop("bedside_build_under_test", None)


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """``build_scripts/bench.py`` as a module."""
    yield _load("bedside_bench_under_test", SCRIPTS / "bench.py")
    sys.modules.pop("bedside_bench_under_test", None)


# --------------------------------------------------------------------------- the spec


class _Recorder:
    """Stands in for a PyInstaller spec class: records its arguments."""

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]

    def __init__(self, kind: str, *args: Any, **kwargs: Any) -> None:
        self.kind, self.args, self.kwargs = kind, args, kwargs
        _Recorder.calls.append((kind, args, kwargs))


def _run_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str, keep: str = ""
) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Execute bedside.spec as PyInstaller would, with stub classes, on ``platform``."""
    lib = tmp_path / "libQt6OpenGL.so.6"
    lib.write_bytes(b"x" * 100)
    plugin = tmp_path / "libqeglfs.so"
    plugin.write_bytes(b"x" * 10)
    qm = tmp_path / "qt_de.qm"
    qm.write_bytes(b"x" * 7)

    class Analysis(_Recorder):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__("Analysis", *args, **kwargs)
            self.pure, self.scripts = [], []
            self.binaries = [
                ("PySide6/Qt/plugins/platforms/libqeglfs.so", str(plugin), "BINARY"),
                ("PySide6/Qt/lib/libQt6OpenGL.so.6", str(lib), "BINARY"),
            ]
            self.datas = [("PySide6/Qt/translations/qt_de.qm", str(qm), "DATA")]

    def stub(kind: str) -> type:
        return type(
            kind,
            (_Recorder,),
            {"__init__": lambda self, *a, **k: _Recorder.__init__(self, kind, *a, **k)},
        )

    bindepend = types.ModuleType("PyInstaller.depend.bindepend")
    imports = {str(plugin): {("libQt6OpenGL.so.6", str(lib))}}
    bindepend.get_imports = lambda src: imports.get(src, set())  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "PyInstaller", types.ModuleType("PyInstaller"))
    monkeypatch.setitem(sys.modules, "PyInstaller.depend", types.ModuleType("PyInstaller.depend"))
    monkeypatch.setitem(sys.modules, "PyInstaller.depend.bindepend", bindepend)
    monkeypatch.setenv("BEDSIDE_PYI_KEEP", keep)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(sys, "path", list(sys.path))
    _Recorder.calls = []
    namespace = {
        "SPECPATH": str(SCRIPTS),
        "workpath": str(tmp_path / "work"),
        "Analysis": Analysis,
        "PYZ": stub("PYZ"),
        "EXE": stub("EXE"),
        "COLLECT": stub("COLLECT"),
        "BUNDLE": stub("BUNDLE"),
        "__name__": "__main__",
    }
    spec = SCRIPTS / "bedside.spec"
    exec(compile(spec.read_text("utf-8"), str(spec), "exec"), namespace)
    return _Recorder.calls


def _one(calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]], kind: str) -> Any:
    found = [c for c in calls if c[0] == kind]
    assert len(found) == 1, f"{kind}: {len(found)} calls"
    return found[0]


def test_spec_linux_onedir_with_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _run_spec(tmp_path, monkeypatch, "linux")
    _, args, kw = _one(calls, "Analysis")
    assert args[0] == [str(ROOT / "ui" / "__main__.py")]
    assert kw["datas"] == [(str(ROOT / "resources"), "resources")]
    assert kw["pathex"] == [str(ROOT)]
    from bedside.tools.commands import COMMANDS

    for needed in (
        "bedside.ward.transfer",
        "bedside.reports.export",
        "bedside.tools.verify",
        "ui.printing",
    ):
        assert needed in kw["hiddenimports"]
    assert {c.module for c in COMMANDS} <= set(kw["hiddenimports"])  # the one registry
    excludes = set(kw["excludes"])
    assert {"tkinter", "PyQt5", "PyQt6", "PySide2", "PySide6.QtQml", "IPython"} <= excludes
    assert not {"PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets"} & excludes
    assert "PySide6.QtNetwork" not in excludes  # single instance uses QLocalServer
    _, _, exe = _one(calls, "EXE")
    assert exe["name"] == "bedside"
    assert exe["upx"] is False
    assert exe["exclude_binaries"] is True  # onedir
    assert exe["strip"] is bool(shutil.which("strip"))  # Linux only, when binutils is there
    _, coll_args, coll = _one(calls, "COLLECT")
    assert coll["name"] == "bedside"
    assert coll["upx"] is False
    binaries, datas = coll_args[1], coll_args[2]
    assert binaries == [] and datas == []  # eglfs, its OpenGL library and the .qm pruned
    assert not [c for c in calls if c[0] == "BUNDLE"]
    report = json.loads((tmp_path / "work" / "prune-report.json").read_text("utf-8"))
    rows = {r["key"]: r for r in report["rules"]}
    assert rows["platforms-unused"]["bytes"] == 110  # the plugin and the library it linked
    assert rows["qt-translations"]["bytes"] == 7


def test_spec_keep_switches_pruning_and_strip_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _run_spec(tmp_path, monkeypatch, "linux", keep="prune,strip,rich-ipython")
    _, args, _ = _one(calls, "COLLECT")
    assert len(args[1]) == 2 and len(args[2]) == 1
    assert _one(calls, "EXE")[2]["strip"] is False
    assert "IPython" not in _one(calls, "Analysis")[2]["excludes"]


def test_spec_windows_gui_plus_console_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _run_spec(tmp_path, monkeypatch, "win32")
    exes = {c[2]["name"]: c[2] for c in calls if c[0] == "EXE"}
    assert exes["bedside"]["console"] is False
    assert exes["bedside-cli"]["console"] is True
    assert all(e["strip"] is False and e["upx"] is False for e in exes.values())
    icon = exes["bedside"]["icon"]
    assert icon and icon.endswith(".ico") and Path(icon).read_bytes()[:4] == b"\0\0\1\0"
    _, coll_args, _ = _one(calls, "COLLECT")
    assert len([a for a in coll_args if isinstance(a, _Recorder)]) == 2


def test_spec_macos_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _run_spec(tmp_path, monkeypatch, "darwin")
    assert _one(calls, "EXE")[2]["console"] is False
    _, _, bundle = _one(calls, "BUNDLE")
    assert bundle["name"] == "Bedside.app"
    assert bundle["info_plist"]["NSHighResolutionCapable"] is True
    assert bundle["icon"].endswith(".icns")
    assert Path(bundle["icon"]).read_bytes()[:4] == b"icns"


def test_runtime_hook_is_plain_python() -> None:
    compile((SCRIPTS / "pyi_rth_bedside.py").read_text("utf-8"), "pyi_rth_bedside.py", "exec")


def test_ci_script_syntax() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPTS / "ci_build.sh")], check=False).returncode == 0
    assert os.access(SCRIPTS / "ci_build.sh", os.X_OK)


# --------------------------------------------------------------------------- prune rules

KEPT = [
    "PySide6/Qt/plugins/platforms/libqxcb.so",
    "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "PySide6/plugins/platforms/qwindows.dll",
    "PySide6/Qt/plugins/platforms/libqcocoa.dylib",
    "PySide6/Qt/plugins/imageformats/libqsvg.so",
    "PySide6/plugins/imageformats/qsvg.dll",
    "PySide6/Qt/plugins/iconengines/libqsvgicon.so",
    "PySide6/plugins/styles/qmodernwindowsstyle.dll",
    "PySide6/Qt/plugins/styles/libqmacstyle.dylib",
    "PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so",
    "PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so",
    "PySide6/Qt/plugins/wayland-decoration-client/libbradient.so",
    "PySide6/Qt/plugins/platforminputcontexts/libcomposeplatforminputcontextplugin.so",
    "PySide6/Qt/lib/libQt6Core.so.6",
    "PySide6/Qt/lib/libicudata.so.73",
    "PySide6/Qt/lib/libQt6Network.so.6",
    "libpython3.11.so.1.0",
    "python3.11/lib-dynload/_ssl_helper.so",
]
PRUNED = [
    "PySide6/Qt/translations/qtbase_de.qm",
    "PySide6/translations/qt_fr.qm",
    "PySide6/Qt/plugins/platforms/libqeglfs.so",
    "PySide6/Qt/plugins/platforms/libqvnc.so",
    "PySide6/plugins/platforms/qdirect2d.dll",
    "PySide6/Qt/plugins/imageformats/libqjpeg.so",
    "PySide6/plugins/imageformats/qwebp.dll",
    "PySide6/Qt/plugins/imageformats/libqtiff.dylib",
    "PySide6/Qt/plugins/tls/libqopensslbackend.so",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    "PySide6/Qt/plugins/wayland-shell-integration/libivi-shell.so",
    "libssl.so.3",
    "libcrypto.so.3",
    "PySide6/libcrypto-3-x64.dll",
    "PySide6/Qt/lib/libssl.3.dylib",
]


@pytest.mark.parametrize("dest", KEPT)
def test_rules_keep_what_bedside_needs(build: ModuleType, dest: str) -> None:
    assert [r.key for r in build.QT_PRUNE_RULES if r.matches(dest)] == []


@pytest.mark.parametrize("dest", PRUNED)
def test_rules_prune_what_bedside_does_not_use(build: ModuleType, dest: str) -> None:
    assert [r.key for r in build.QT_PRUNE_RULES if r.matches(dest)]


def test_rules_never_touch_resources(build: ModuleType) -> None:
    for path in (ROOT / "resources").rglob("*"):
        dest = "resources/" + path.relative_to(ROOT / "resources").as_posix()
        assert not [r.key for r in build.QT_PRUNE_RULES if r.matches(dest)], dest


QT_LIB = "PySide6/Qt/lib"
EGLFS_LIB = "libQt6EglFSDeviceIntegration.so.6"


def _toc(build: ModuleType) -> tuple[list[Any], list[Any], dict[str, set[str]]]:
    binaries = [
        ("PySide6/Qt/plugins/platforms/libqeglfs.so", "eglfs", "BINARY"),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", "xcb", "BINARY"),
        ("PySide6/Qt/lib/libQt6EglFSDeviceIntegration.so.6", "eglfsdev", "BINARY"),
        ("PySide6/Qt/lib/libQt6OpenGL.so.6", "opengl", "BINARY"),
        ("PySide6/Qt/lib/libQt6Gui.so.6", "gui", "BINARY"),
        ("PySide6/QtOpenGL.abi3.so", "pyopengl", "EXTENSION"),
        ("libQt6EglFSDeviceIntegration.so.6", f"{QT_LIB}/{EGLFS_LIB}", "SYMLINK"),
        ("libQt6Gui.so.6", "PySide6/Qt/lib/libQt6Gui.so.6", "SYMLINK"),
        ("libssl.so.3", "ssl", "BINARY"),
    ]  # fmt: skip
    datas = [("PySide6/Qt/translations/qt_de.qm", "qm", "DATA"), ("resources/x.json", "x", "DATA")]
    needs = {
        "eglfs": {"libQt6EglFSDeviceIntegration.so.6", "libQt6OpenGL.so.6", "libQt6Gui.so.6"},
        "eglfsdev": {"libQt6OpenGL.so.6", "libQt6Gui.so.6"},
        "xcb": {"libQt6Gui.so.6"},
        "pyopengl": {"libQt6OpenGL.so.6"},
    }
    return binaries, datas, needs


def test_prune_toc_cascades_to_libraries_only_removed_plugins_linked(build: ModuleType) -> None:
    binaries, datas, needs = _toc(build)
    rules = [r for r in build.QT_PRUNE_RULES if r.key == "platforms-unused"]
    kept_b, kept_d, report = build.prune_toc(
        binaries, datas, rules, lambda src: needs.get(src, set()), size_of=lambda src: 10
    )
    kept = {e[0] for e in kept_b}
    assert "PySide6/Qt/plugins/platforms/libqeglfs.so" not in kept
    assert "PySide6/Qt/lib/libQt6EglFSDeviceIntegration.so.6" not in kept  # only eglfs linked it
    assert "libQt6EglFSDeviceIntegration.so.6" not in kept  # its symlink goes too
    assert "PySide6/Qt/lib/libQt6OpenGL.so.6" in kept  # the QtOpenGL binding still links it
    assert "PySide6/Qt/lib/libQt6Gui.so.6" in kept and "libQt6Gui.so.6" in kept
    assert kept_d == datas
    assert report[0]["bytes"] == 20  # plugin + library; the symlink counts 0
    assert len(report[0]["files"]) == 3


def test_prune_toc_never_orphans_python_extensions(build: ModuleType) -> None:
    binaries, datas, needs = _toc(build)
    binaries = [e for e in binaries if e[1] != "pyopengl"]
    binaries.append(("PySide6/QtGui.abi3.so", "pygui", "EXTENSION"))
    needs["eglfs"].add("QtGui.abi3.so")
    rules = [r for r in build.QT_PRUNE_RULES if r.key == "platforms-unused"]
    kept_b, _, _ = build.prune_toc(
        binaries, datas, rules, lambda s: needs.get(s, set()), lambda s: 1
    )
    kept = {e[0] for e in kept_b}
    assert "PySide6/QtGui.abi3.so" in kept
    assert "PySide6/Qt/lib/libQt6OpenGL.so.6" not in kept  # now nothing kept links it


def test_prune_toc_unless_linked_keeps_a_linked_library(build: ModuleType) -> None:
    binaries, datas, needs = _toc(build)
    rules = [r for r in build.QT_PRUNE_RULES if r.key == "openssl"]
    kept_b, _, report = build.prune_toc(
        binaries, datas, rules, lambda s: needs.get(s, set()), lambda s: 5
    )
    assert "libssl.so.3" not in {e[0] for e in kept_b}
    assert report[0]["bytes"] == 5
    needs["xcb"].add("libssl.so.3")
    kept_b, _, report = build.prune_toc(
        binaries, datas, rules, lambda s: needs.get(s, set()), lambda s: 5
    )
    assert "libssl.so.3" in {e[0] for e in kept_b}
    assert report[0]["bytes"] == 0


def test_prune_toc_translations(build: ModuleType) -> None:
    binaries, datas, needs = _toc(build)
    rules = build.active_prune_rules(set())
    _, kept_d, report = build.prune_toc(
        binaries, datas, rules, lambda s: needs.get(s, set()), lambda s: 3
    )
    assert kept_d == [("resources/x.json", "x", "DATA")]
    assert {r["key"]: r["bytes"] for r in report}["qt-translations"] == 3


def test_active_rules_and_excludes(build: ModuleType) -> None:
    assert build.active_prune_rules({"prune"}) == []
    assert "tls" not in [r.key for r in build.active_prune_rules({"tls"})]
    unused = build.unused_pyside6_modules(["QtCore", "QtGui", "QtQml", "QtNetwork", "QtMultimedia"])
    assert unused == ["PySide6.QtMultimedia", "PySide6.QtQml"]
    assert "PySide6.QtQml" in build.python_excludes(set(), unused)
    assert "PySide6.QtQml" not in build.python_excludes({"pyside6-unused"}, unused)
    assert "numpy" not in build.python_excludes({"numpy"})
    assert build.keep_set({"BEDSIDE_PYI_KEEP": " numpy, prune ,"}) == {"numpy", "prune"}


# --------------------------------------------------------------------------- checks


def test_stderr_whitelist(build: ModuleType) -> None:
    ok = (
        "WARNING ui.alarm: no sound device for alarms (QtMultimedia is not installed "
        "(PySide6-Essentials)); using the system beep\n"
        "WARNING qt: This plugin does not support propagateSizeHints()\n"
        "\n"
        "WARNING qt: This plugin does not support raise()\n"
    )
    assert build.unexpected_stderr(ok) == []
    bad = (
        ok
        + 'qt.qpa.plugin: Could not load the Qt platform plugin "xcb"\n'
        + "Traceback (most recent call last):\n"
    )
    assert build.unexpected_stderr(bad) == [
        'qt.qpa.plugin: Could not load the Qt platform plugin "xcb"',
        "Traceback (most recent call last):",
    ]
    assert build.unexpected_stderr(
        "ERROR ui.app: WARNING ui.alarm: no sound device for alarms (x); using the system beep"
    )


def test_size_budget(build: ModuleType) -> None:
    mib = build.MIB
    assert build.size_verdict(150 * mib, 150.0)[0] is True
    ok, msg = build.size_verdict(150 * mib + 1, 150.0)
    assert ok is False and "OVER" in msg
    assert build.size_verdict(10**12, None)[0] is True
    assert (
        build.SIZE_BUDGET_MIB["linux"] <= 150e6 / mib + 1e-9
        or build.SIZE_BUDGET_MIB["linux"] == 150.0
    )


def test_tree_size_ignores_symlinks(build: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"y" * 24)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert build.tree_size(tmp_path) == 1024


def test_parse_validate(build: ModuleType) -> None:
    assert build.parse_validate("x\n572 passed, 0 failed\n") == (572, 0)
    assert build.parse_validate("570 passed, 2 failed") == (570, 2)
    assert build.parse_validate("no summary") is None


def test_icon_writers(build: ModuleType, tmp_path: Path) -> None:
    pngs = {16: b"\x89PNG-16", 256: b"\x89PNG-256"}
    build.write_ico(pngs, tmp_path / "a.ico")
    data = (tmp_path / "a.ico").read_bytes()
    assert data[:6] == b"\0\0\1\0\2\0"
    assert data[6] == 16 and data[22] == 0  # 256 is written as 0
    first_size = int.from_bytes(data[14:18], "little")
    first_off = int.from_bytes(data[18:22], "little")
    assert data[first_off : first_off + first_size] == b"\x89PNG-16"
    build.write_icns(pngs, tmp_path / "a.icns")
    data = (tmp_path / "a.icns").read_bytes()
    assert data[:4] == b"icns" and int.from_bytes(data[4:8], "big") == len(data)
    assert data[8:12] == b"icp4" and b"ic08" in data


def test_environment_check_accepts_this_env(build: ModuleType) -> None:
    pytest.importorskip("PyInstaller")
    assert build.check_environment() == []


# --------------------------------------------------------------------------- bench parsing

RECORD_OUT = """record: 1560 events, 721 KiB on disk; ward: 20 such patients
figure                                            value  reference   ratio  target
save p95 (validate+append 1 line+fsync), ms        26.7        7.6     3.5  < 5 ms
save p50, ms                                       17.1        5.6     3.1
whole-ward load (restart, journals unchanged), ms      829.1       75.1    11.0  < 300 ms
whole-ward load after every journal grew, ms       901.5       75.1    12.0  < 300 ms
whole-ward load, no cache (first open), ms        1500.0       75.1    20.0  (every line checked)
(medians of 5 loads each; reference: json.loads of every journal line)
"""

TIMERS_OUT = """python 3.11.7, 300 ticks per figure

demo ward (7 demo patients repeated to 20): 20 patients, 315 events, 68 due items per tick
  derive every due item       median   0.511 ms   p95   0.664 ms
  + alert states              median   0.596 ms   p95   0.755 ms
  derive, timelines rebuilt   median   1.437 ms   p95   1.744 ms  (all 20 records changed)
  reference json.dumps        median   1.374 ms   p95   1.557 ms
  derive / reference           0.37x   target < 5 ms per tick: under (p95)

heavy ward (600 events per record): 20 patients, 12000 events, 60 due items per tick
  derive every due item       median   0.520 ms   p95   0.667 ms
  reference json.dumps        median  66.824 ms   p95 113.569 ms
"""


def test_bench_parses_record_output(bench: ModuleType) -> None:
    rows = bench.parse_record(RECORD_OUT)
    assert rows["save p95"] == (26.7, 7.6, 3.5)
    assert rows["whole-ward load (restart, journals unchanged)"] == (829.1, 75.1, 11.0)
    assert rows["whole-ward load after every journal grew"] == (901.5, 75.1, 12.0)
    assert rows["whole-ward load, no cache (first open)"] == (1500.0, 75.1, 20.0)
    assert rows["_record"] == (1560.0, 721.0, 20.0)


def test_bench_parses_timers_output(bench: ModuleType) -> None:
    wards = bench.parse_timers(TIMERS_OUT)
    assert wards["demo"]["derive every due item"] == (0.511, 0.664)
    assert wards["demo"]["derive, timelines rebuilt"] == (1.437, 1.744)
    assert wards["heavy"]["reference json.dumps"] == (66.824, 113.569)
    assert wards["heavy"]["_size"] == (20.0, 12000.0)


def test_bench_first_paint_and_memory_units(bench: ModuleType) -> None:
    out = "x\nfirst-paint-monotonic=2486.559759 startup-ms=405.9\n"
    assert bench.first_paint_stamp(out) == pytest.approx(2486.559759)
    assert bench.first_paint_stamp("nothing") is None
    expected = 2048 if sys.platform == "darwin" else 2048 * 1024
    assert bench.maxrss_bytes(2048) == expected


def test_bench_table_renders(bench: ModuleType) -> None:
    text = bench.render([bench.Row("f", "1 ms", "2 ms", "0.50x", "< 5 ms", "met")])
    assert text.splitlines()[2] == "| f | 1 ms | 2 ms | 0.50x | < 5 ms | met |"


# --------------------------------------------------------------------------- frozen routing


def test_app_routes_core_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from ui.app import main

    assert main(["validate"]) == 0
    assert capsys.readouterr().out.strip().endswith("passed, 0 failed")


def test_app_routes_every_registry_command_with_its_pdf_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bedside.tools.cli
    from bedside.tools.commands import NAMES
    from ui import app

    assert app.CORE_COMMANDS == NAMES  # derived from the registry, not a second list
    seen: list[tuple[list[str], object]] = []

    def fake_cli(argv: list[str], *, pdf_writer: object = None) -> int:
        seen.append((argv, pdf_writer))
        return 7

    monkeypatch.setattr(bedside.tools.cli, "main", fake_cli)
    for name in sorted(NAMES):
        assert app.main([name, "--x"]) == 7
    assert [a for a, _ in seen] == [[n, "--x"] for n in sorted(NAMES)]
    assert {w for _, w in seen} == {app.print_pdf}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell script as a fake executable")
def test_run_frozen_gates_on_exit_stderr_and_output(build: ModuleType, tmp_path: Path) -> None:
    def fake(body: str) -> Path:
        exe = tmp_path / f"fake{len(list(tmp_path.iterdir()))}"
        exe.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
        exe.chmod(0o755)
        return exe

    env = dict(os.environ)
    whitelisted = "echo 'WARNING qt: This plugin does not support raise()' >&2"
    res, _ = build.run_frozen("ok", [], env, expect="^fine$", exe=fake(f"echo fine; {whitelisted}"))
    assert res.ok, res.detail
    res, _ = build.run_frozen("stderr", [], env, exe=fake("echo fine; echo 'boom' >&2"))
    assert not res.ok and "unexpected stderr: boom" in res.detail
    res, _ = build.run_frozen("exit", [], env, exe=fake("echo fine; exit 3"))
    assert not res.ok and res.detail.startswith("exit 3")
    res, _ = build.run_frozen("output", [], env, expect="^smoke test: ok", exe=fake("echo nope"))
    assert not res.ok and "did not match" in res.detail
