"""Build the one-folder Bedside bundle with PyInstaller, check its size, and prove it works.

One command, from the repository root, in the environment that has Bedside's dependencies
and PyInstaller (``pip install -e '.[build]'``)::

    python build_scripts/build.py              # build dist/bedside/, then the frozen checks
    python build_scripts/build.py --skip-build # only the checks, on an existing dist/bedside/
    python build_scripts/build.py --measure-excludes   # one build per exclusion group (slow)

Steps:

1. Check that PySide6 and PyInstaller come from the active environment (the Qt for
   Python docs warn that a PySide6 elsewhere on ``sys.path`` is silently used instead).
2. ``python -m PyInstaller --noconfirm --clean build_scripts/bedside.spec``. The spec
   takes :data:`PYTHON_EXCLUDES` and prunes the Qt pieces Bedside does not use with
   :func:`prune_toc` and :data:`QT_PRUNE_RULES` (``--exclude-module`` alone cannot drop
   Qt shared libraries: they come in through linked-library analysis). A library is only
   dropped when no kept binary links it. The spec writes what each rule saved to
   ``build/bedside/prune-report.json``.
3. Report the bundle size and fail above :data:`SIZE_BUDGET_MIB` (Linux).
4. Run the frozen executable offscreen with ``HOME``/XDG directories in a temporary
   directory: ``--version``; ``--smoke-test`` on an empty data directory; ``demo`` then
   ``--smoke-test`` on that demo ward (every patient tab rendered); ``verify`` (also of a
   ward written from source); ``export`` and ``import``; ``handover`` to PDF (printed in
   the same process through the application's PDF writer); and ``validate`` on the shipped cases,
   which must print ``N passed, 0 failed``. Any
   non-zero exit, or any stderr line outside :data:`STDERR_WHITELIST`, fails the build.

Exit status 0 when everything passed, 1 otherwise. Environment: ``BEDSIDE_PYI_DEBUG=1``
builds with the bootloader's debug output and a console; ``BEDSIDE_PYI_KEEP=a,b`` keeps
the named exclusion groups / prune rules (``prune`` keeps every Qt piece) for measuring.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "build_scripts" / "bedside.spec"
DIST = ROOT / "dist"
WORK = ROOT / "build"
APP_NAME = "bedside"
BUNDLE = DIST / APP_NAME

MIB = 1024 * 1024
SIZE_BUDGET_MIB: dict[str, float] = {"linux": 150.0}
"""Bundle size budget per platform (``du``-style MiB, symlinks not counted)."""

CHECK_TIMEOUT_S = 120.0

# --------------------------------------------------------------------------- what to leave out

USED_QT_MODULES: tuple[str, ...] = ("QtCore", "QtGui", "QtWidgets", "QtNetwork", "QtPrintSupport")
"""PySide6 modules Bedside imports (QtNetwork: QLocalServer/QLocalSocket, single instance;
QtPrintSupport: the print dialog of the handover)."""

OPTIONAL_QT_MODULES: tuple[str, ...] = ()
"""Imported when present (none: the alarm plays through the platform's own player)."""

PYTHON_EXCLUDES: dict[str, tuple[str, ...]] = {
    # pydantic's hook collects every pydantic submodule: pydantic.mypy drags in mypy,
    # pydantic.v1's hypothesis plugin drags in hypothesis, and an optional ``rich`` import
    # drags in rich -> IPython -> jedi, numpy, trio, pytest... Bedside uses none of them.
    "pydantic-extras": ("pydantic.mypy", "pydantic.v1"),
    "rich-ipython": (
        "rich",
        "IPython",
        "jedi",
        "parso",
        "pygments",
        "prompt_toolkit",
        "stack_data",
        "executing",
        "traitlets",
        "matplotlib_inline",
        "trio",
        "cffi",
    ),
    "test-tools": (
        "pytest",
        "_pytest",
        "pytestqt",
        "hypothesis",
        "pluggy",
        "py",
        "fhir",
        "fhir_core",
    ),
    "numpy": ("numpy",),
    "type-checkers": ("mypy", "mypyc", "ast_serialize"),
    "packaging-tools": ("setuptools", "pkg_resources", "distutils", "pip", "wheel"),
    "stdlib-unused": (
        "tkinter",
        "_tkinter",
        "turtle",
        "sqlite3",
        "_sqlite3",
        "readline",
        "curses",
        "lib2to3",
        "pydoc_data",
        "ensurepip",
        "idlelib",
        "test",
    ),
    "other-qt-bindings": ("PyQt5", "PyQt6", "PySide2", "shiboken2", "sip"),
    # Offline application, no TLS (pulled in by logging.handlers -> http.client). _hashlib
    # stays: OpenSSL's SHA-256 is ~3x faster than CPython's own on the hash chain of a
    # whole-ward load (30k events: 17 ms against 50 ms), so libcrypto stays too.
    "ssl": ("ssl", "_ssl"),
}
"""Python modules kept out of the bundle, by group (``BEDSIDE_PYI_KEEP`` names a group).
The unused PySide6 modules are computed at build time by :func:`unused_pyside6_modules`
(group ``pyside6-unused``)."""


@dataclass(frozen=True)
class PruneRule:
    """Leave out the bundled files whose destination path matches ``pattern``.

    With ``unless_linked``, a matching file stays when a kept binary links it.
    """

    key: str
    pattern: str
    why: str
    unless_linked: bool = False

    def matches(self, dest: str) -> bool:
        """True when ``dest`` (a path inside the bundle) falls under this rule."""
        return re.search(self.pattern, dest.replace("\\", "/"), re.IGNORECASE) is not None


_LIB = r"(lib)?"
_EXT = r"\.(so|dll|dylib)$"

QT_PRUNE_RULES: tuple[PruneRule, ...] = (
    PruneRule(
        "qt-translations",
        r"(^|/)translations/[^/]+\.qm$",
        "Bedside is English-only and installs no QTranslator",
    ),
    PruneRule(
        "platforms-unused",
        rf"/plugins/platforms/{_LIB}q(eglfs|linuxfb|minimal|minimalegl|vkkhrdisplay|vnc|direct2d)"
        + _EXT,
        "kiosk/embedded/remote platforms; Bedside runs on xcb, wayland, windows, cocoa "
        "(offscreen for tests)",
    ),
    PruneRule(
        "egl-device-integrations",
        r"/plugins/egldeviceintegrations/",
        "only used by the eglfs platform",
    ),
    PruneRule(
        "generic-input",
        r"/plugins/generic/",
        "evdev/tuio input plugins, for eglfs/linuxfb kiosks",
    ),
    PruneRule(
        "imageformats-unused",
        rf"/plugins/imageformats/{_LIB}q(?!svg)[^/]+$",
        "Bedside's images are SVG icons (PNG is built into QtGui)",
    ),
    PruneRule(
        "networkinformation",
        r"/plugins/networkinformation/",
        "offline application: no network reachability",
    ),
    PruneRule("tls", r"/plugins/tls/", "no TLS: QtNetwork is only used for QLocalServer"),
    PruneRule(
        "platformtheme-gtk3",
        rf"/plugins/platformthemes/{_LIB}qgtk3" + _EXT,
        "links the build host's GTK stack (cairo, pango, atk...); Qt's own dialogs are used",
    ),
    PruneRule(
        "wayland-graphics",
        r"/plugins/wayland-graphics-integration-(client|server)/",
        "OpenGL buffer integrations; widgets draw with shared memory",
    ),
    PruneRule(
        "wayland-shells-unused",
        rf"/plugins/wayland-shell-integration/{_LIB}(fullscreen-shell-v1|ivi-shell|wl-shell-plugin"
        r"|qt-shell)" + _EXT,
        "desktop compositors use xdg-shell (kept)",
    ),
    PruneRule(
        "openssl",
        r"(^|/)lib(ssl|crypto)[-.\dx]*\.(so|dll|dylib)[.\d]*$",
        "collected for Qt's TLS plugin and Python's ssl (both left out); libcrypto stays "
        "while hashlib links it",
        unless_linked=True,
    ),
)
"""Qt files left out of the bundle, in order; a library a removed plugin linked goes too
when no kept binary links it (ICU, QtDBus, QtNetwork stay: they are linked)."""

REQUIRED_FILES_LINUX: tuple[str, ...] = (
    "_internal/PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "_internal/PySide6/Qt/plugins/platforms/libqxcb.so",
    "_internal/PySide6/Qt/plugins/platforms/libqwayland.so",
    "_internal/PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so",
    "_internal/PySide6/Qt/plugins/iconengines/libqsvgicon.so",
    "_internal/PySide6/Qt/plugins/imageformats/libqsvg.so",
    "_internal/PySide6/Qt/plugins/platforminputcontexts/libcomposeplatforminputcontextplugin.so",
    "_internal/PySide6/Qt/plugins/printsupport/libcupsprintersupport.so",
    "_internal/resources/protocols/default.json",
    "_internal/resources/styles/app.qss",
    "_internal/resources/sounds/due.wav",
    "_internal/resources/sounds/critical.wav",
)
"""Files the Linux bundle must contain after pruning (beyond every ``resources/`` file)."""

STDERR_WHITELIST: tuple[str, ...] = (
    # A workstation without a sound device (the frozen checks' environment may have none):
    # the alarm falls back to the system beep and the window says so (ui/alarm.py).
    r"^WARNING ui\.alarm: no sound device for alarms \(.*\); using the system beep$",
    # The offscreen platform cannot do these; harmless (same list as pytest's qt_log_ignore).
    r"^WARNING qt: This plugin does not support "
    r"(propagateSizeHints\(\)|raise\(\)|grabbing the keyboard)$",
)
"""Regular expressions for the only stderr lines the frozen checks accept."""


# --------------------------------------------------------------------------- pure helpers


def keep_set(env: dict[str, str] | None = None) -> set[str]:
    """Group and rule keys named in ``BEDSIDE_PYI_KEEP`` (kept in the bundle)."""
    raw = (env if env is not None else os.environ).get("BEDSIDE_PYI_KEEP", "")
    return {k.strip() for k in raw.split(",") if k.strip()}


def python_excludes(keep: set[str], pyside6_unused: Sequence[str] = ()) -> list[str]:
    """Module names for ``Analysis(excludes=...)``, minus the groups in ``keep``."""
    out: list[str] = []
    for group, modules in PYTHON_EXCLUDES.items():
        if group not in keep:
            out.extend(modules)
    if "pyside6-unused" not in keep:
        out.extend(pyside6_unused)
    return out


def unused_pyside6_modules(available: Iterable[str]) -> list[str]:
    """``PySide6.X`` for every available module Bedside does not use."""
    used = set(USED_QT_MODULES) | set(OPTIONAL_QT_MODULES)
    return [f"PySide6.{m}" for m in sorted(available) if m not in used]


def active_prune_rules(keep: set[str]) -> list[PruneRule]:
    """The Qt prune rules in effect (``prune`` in ``keep`` switches all off)."""
    if "prune" in keep:
        return []
    return [r for r in QT_PRUNE_RULES if r.key not in keep]


Entry = tuple[str, str, str]
"""A PyInstaller TOC entry: (destination in the bundle, source path, typecode)."""

_ORPHANABLE = {"BINARY"}


def _base(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1].lower()


def _symlink_target(entry: Entry) -> str:
    dest, target, _ = entry
    return os.path.normpath(os.path.join(os.path.dirname(dest), target)).replace("\\", "/")


def prune_toc(
    binaries: Sequence[Entry],
    datas: Sequence[Entry],
    rules: Sequence[PruneRule],
    imports_of: Callable[[str], Iterable[str]],
    size_of: Callable[[str], int] = os.path.getsize,
) -> tuple[list[Entry], list[Entry], list[dict[str, object]]]:
    """Apply ``rules`` in order; return the kept binaries, kept datas and a report.

    After each rule, a ``BINARY`` entry (a shared library, never a Python extension or
    the Python library's symlink) that a removed binary linked is removed as well when no
    kept binary links it any more, and a ``SYMLINK`` entry pointing at a removed file
    goes with it. Each report row: rule ``key``, ``why``, ``files`` (removed paths) and
    ``bytes`` (sum of their sizes, symlinks counted as 0).

    Args:
        binaries: ``Analysis.binaries``.
        datas: ``Analysis.datas``.
        rules: The rules, applied in order (savings are attributed in that order).
        imports_of: Source path -> names of the libraries it links (``DT_NEEDED`` on
            Linux); only their base names are compared with the bundle's file names.
        size_of: Source path -> size in bytes.
    """
    entries = [*binaries, *datas]
    by_dest = {e[0].replace("\\", "/"): e for e in entries}
    linkable = [e for e in binaries if e[2] in {"BINARY", "EXTENSION", "EXECUTABLE"}]
    needs: dict[str, set[str]] = {}
    for e in linkable:
        needs[e[0].replace("\\", "/")] = {_base(n) for n in imports_of(e[1])}
    by_base: dict[str, list[str]] = {}
    for e in binaries:
        if e[2] in _ORPHANABLE:
            by_base.setdefault(_base(e[0]), []).append(e[0].replace("\\", "/"))
    removed: set[str] = set()
    report: list[dict[str, object]] = []
    for rule in rules:
        now = {d for d in by_dest if d not in removed and rule.matches(d)}
        if rule.unless_linked:
            linked = set()
            for dest, libs in needs.items():
                if dest not in removed and dest not in now:
                    linked |= libs
            now = {d for d in now if _base(d) not in linked}
        frontier = {d for d in now if d in needs}
        while frontier:
            removed_all = removed | now
            still_needed = set()
            for dest, libs in needs.items():
                if dest not in removed_all:
                    still_needed |= libs
            orphans = set()
            for dest in frontier:
                for lib in needs[dest]:
                    if lib in still_needed:
                        continue
                    for cand in by_base.get(lib, []):
                        if cand not in removed_all:
                            orphans.add(cand)
            now |= orphans
            frontier = orphans
        for dest, e in by_dest.items():
            if e[2] == "SYMLINK" and dest not in removed and _symlink_target(e) in now | removed:
                now.add(dest)
        removed |= now
        nbytes = sum(size_of(by_dest[d][1]) for d in now if by_dest[d][2] != "SYMLINK")
        report.append({"key": rule.key, "why": rule.why, "files": sorted(now), "bytes": nbytes})

    def kept(toc: Sequence[Entry]) -> list[Entry]:
        return [e for e in toc if e[0].replace("\\", "/") not in removed]

    return kept(binaries), kept(datas), report


def unexpected_stderr(text: str, whitelist: Sequence[str] = STDERR_WHITELIST) -> list[str]:
    """The non-blank stderr lines that match no whitelist pattern."""
    pats = [re.compile(p) for p in whitelist]
    return [
        line
        for line in text.splitlines()
        if line.strip() and not any(p.search(line.rstrip()) for p in pats)
    ]


def size_verdict(total_bytes: int, budget_mib: float | None) -> tuple[bool, str]:
    """(within budget, message) for a bundle of ``total_bytes``."""
    size = total_bytes / MIB
    if budget_mib is None:
        return True, f"bundle {size:.1f} MiB (no budget on this platform)"
    if total_bytes > budget_mib * MIB:
        return False, f"bundle {size:.1f} MiB is OVER the {budget_mib:g} MiB budget"
    return True, f"bundle {size:.1f} MiB, within the {budget_mib:g} MiB budget"


def parse_validate(stdout: str) -> tuple[int, int] | None:
    """(passed, failed) from the output of ``validate``, or None."""
    m = re.search(r"^(\d+) passed, (\d+) failed\s*$", stdout, re.MULTILINE)
    return (int(m.group(1)), int(m.group(2))) if m else None


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (symlinks not followed nor counted)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def size_breakdown(bundle: Path) -> list[tuple[str, int]]:
    """Bytes per notable part of a one-folder bundle, largest first."""
    internal = bundle / "_internal"
    parts: dict[str, int] = {}
    groups = [
        ("Qt libraries: ICU", re.compile(r"PySide6/Qt/lib/libicu|/icu\w*\d+\.dll$", re.I)),
        ("Qt libraries", re.compile(r"PySide6/(Qt/lib|Qt6\w+\.dll)", re.I)),
        ("Qt plugins", re.compile(r"PySide6/(Qt/)?plugins/")),
        ("Qt translations", re.compile(r"PySide6/(Qt/)?translations/")),
        ("PySide6 + shiboken6 bindings", re.compile(r"^(PySide6|shiboken6)/")),
        ("Python (libpython, stdlib, extensions)", re.compile(r"python3|^base_library\.zip$")),
        ("Bedside resources", re.compile(r"^resources/")),
    ]
    for dirpath, _dirs, files in os.walk(bundle):
        for f in files:
            p = Path(dirpath) / f
            if p.is_symlink():
                continue
            rel = p.relative_to(internal).as_posix() if internal in p.parents else f"../{f}"
            name = next((g for g, rx in groups if rx.search(rel)), None)
            if name is None:
                name = "executable(s)" if rel.startswith("../") else "other shared libraries"
            parts[name] = parts.get(name, 0) + p.stat().st_size
    return sorted(parts.items(), key=lambda kv: -kv[1])


# --------------------------------------------------------------------------- icons


def write_ico(pngs: dict[int, bytes], out: Path) -> None:
    """A Windows .ico holding PNG images keyed by edge size (1..256)."""
    sizes = sorted(pngs)
    header = bytearray(b"\0\0\1\0" + len(sizes).to_bytes(2, "little"))
    offset = 6 + 16 * len(sizes)
    body = bytearray()
    for s in sizes:
        data = pngs[s]
        dim = 0 if s >= 256 else s
        header += bytes([dim, dim, 0, 0]) + (1).to_bytes(2, "little") + (32).to_bytes(2, "little")
        header += len(data).to_bytes(4, "little") + (offset + len(body)).to_bytes(4, "little")
        body += data
    out.write_bytes(bytes(header + body))


ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09"}


def write_icns(pngs: dict[int, bytes], out: Path) -> None:
    """A macOS .icns holding PNG images keyed by edge size (16..512)."""
    body = bytearray()
    for s in sorted(pngs):
        if s in ICNS_TYPES:
            body += ICNS_TYPES[s] + (8 + len(pngs[s])).to_bytes(4, "big") + pngs[s]
    out.write_bytes(b"icns" + (8 + len(body)).to_bytes(4, "big") + bytes(body))


_RENDER_SVG = """
import os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer
app = QGuiApplication([])
renderer = QSvgRenderer(sys.argv[1])
if not renderer.isValid():
    sys.exit("invalid SVG")
for size in map(int, sys.argv[3:]):
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    renderer.render(p)
    p.end()
    img.save(os.path.join(sys.argv[2], f"{size}.png"), "PNG")
"""


def make_icon(svg: Path, out: Path, sizes: Sequence[int] = (16, 32, 48, 64, 128, 256)) -> Path:
    """Render ``svg`` with Qt (in a subprocess) into ``out`` (.ico or .icns); return ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-c", _RENDER_SVG, str(svg), tmp, *map(str, sizes)],
            check=True,
            timeout=CHECK_TIMEOUT_S,
        )
        pngs = {s: (Path(tmp) / f"{s}.png").read_bytes() for s in sizes}
    if out.suffix.lower() == ".icns":
        write_icns(pngs, out)
    else:
        write_ico(pngs, out)
    return out


# --------------------------------------------------------------------------- build steps


def check_environment() -> list[str]:
    """Problems with the build environment (empty when PySide6/PyInstaller are the env's)."""
    problems = []
    prefix = Path(sys.prefix).resolve()
    for name in ("PySide6", "shiboken6", "PyInstaller"):
        try:
            mod = __import__(name)
        except ImportError:
            problems.append(f"{name} is not installed in {prefix} (pip install -e '.[build]')")
            continue
        where = Path(mod.__file__ or "").resolve()
        if prefix not in where.parents:
            problems.append(f"{name} comes from {where.parent}, outside the active env {prefix}")
    return problems


PYINSTALLER_NOISE: tuple[str, ...] = (
    # pydantic's hook names every pydantic.v1 module, which the spec excludes on purpose.
    r'WARNING: Hidden import "pydantic\.v1[.\w]*" not found',
    # ctypes.util lookups of Windows DLLs in modules that only use them on Windows.
    r"WARNING: Library (ntdll|shell32|ole32|user32|kernel32) required via ctypes not found",
    # GTK is not on the build host; the GTK platform theme is pruned (QT_PRUNE_RULES).
    r"WARNING: Library not found: could not resolve 'lib(gtk|gdk)-3\.so\.0', dependency of "
    r"'[^']*libqgtk3\.so'",
)
"""PyInstaller warnings that are expected for this spec (not echoed)."""


def run_pyinstaller(env: dict[str, str] | None = None, *, distpath: Path = DIST) -> int:
    """Run PyInstaller on the spec, echoing its output minus the expected noise."""
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(distpath),
        "--workpath",
        str(WORK),
        str(SPEC),
    ]
    print("$ " + " ".join(cmd), flush=True)
    noise = [re.compile(p) for p in PYINSTALLER_NOISE]
    hidden = 0
    with subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if any(p.search(line) for p in noise):
                hidden += 1
            else:
                print(line, end="", flush=True)
    if hidden:
        print(f"({hidden} expected PyInstaller warnings not shown: PYINSTALLER_NOISE)")
    return proc.returncode


def executable(bundle: Path = BUNDLE) -> Path:
    """The executable the checks run: on Windows the console twin ``bedside-cli.exe``
    (the windowed ``bedside.exe`` has no stdout to read)."""
    if sys.platform == "win32":
        return bundle / f"{APP_NAME}-cli.exe"
    return bundle / APP_NAME


def isolated_env(home: Path) -> dict[str, str]:
    """The environment of frozen runs: offscreen, user directories under ``home``."""
    env = dict(os.environ)
    env.pop("BEDSIDE_DATA_DIR", None)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["HOME"] = env["USERPROFILE"] = str(home)
    for var in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        env[var] = str(home / var.lower())
    env["LOCALAPPDATA"] = env["APPDATA"] = str(home / "appdata")
    # Qt warns on stderr (and switches to C.UTF-8) under a non-UTF-8 locale, as in bare CI
    # containers; give it the UTF-8 locale every desktop has.
    current = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    if "utf-8" not in current.lower() and "utf8" not in current.lower():
        env["LC_ALL"] = "C.UTF-8"
    return env


@dataclass
class CheckResult:
    """The outcome of one frozen run."""

    name: str
    ok: bool
    detail: str
    seconds: float


def run_frozen(
    name: str,
    args: list[str],
    env: dict[str, str],
    *,
    expect: str | None = None,
    exe: Path | None = None,
) -> tuple[CheckResult, str]:
    """Run the frozen executable; ok when exit 0, stderr whitelisted, stdout matches."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [str(exe or executable()), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CheckResult(name, False, f"could not run: {exc}", time.monotonic() - t0), ""
    took = time.monotonic() - t0
    bad = unexpected_stderr(proc.stderr)
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        return CheckResult(name, False, f"exit {proc.returncode}: {tail}", took), proc.stdout
    if bad:
        return CheckResult(name, False, "unexpected stderr: " + " | ".join(bad[:5]), took), ""
    if expect is not None and not re.search(expect, proc.stdout, re.MULTILINE):
        return CheckResult(name, False, f"output did not match {expect!r}: {last}", took), ""
    return CheckResult(name, True, last, took), proc.stdout


def frozen_checks(exe: Path | None = None) -> list[CheckResult]:
    """The frozen smoke test, demo ward, verify, handover PDF and validate runs."""
    results: list[CheckResult] = []
    with tempfile.TemporaryDirectory(prefix="bedside-frozen-") as tmp_s:
        tmp = Path(tmp_s)
        env = isolated_env(tmp / "home")
        empty, ward, pdf, src = tmp / "empty", tmp / "ward", tmp / "handover.pdf", tmp / "src"
        exported = tmp / "exported"
        # A ward written by the interpreter must verify in the frozen application.
        subprocess.run(
            [sys.executable, "-m", "bedside", "demo", "--data-dir", str(src)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=CHECK_TIMEOUT_S,
            check=True,
        )
        plan: list[tuple[str, list[str], str | None]] = [
            ("--version", ["--version"], r"^bedside \S+"),
            (
                "smoke test (empty data dir)",
                ["--smoke-test", "--data-dir", str(empty), "--no-error-dialog"],
                r"^smoke test: ok",
            ),
            ("demo ward", ["demo", "--data-dir", str(ward)], r"wrote [1-9]\d* patient"),
            (
                "smoke test (demo ward)",
                ["--smoke-test", "--data-dir", str(ward), "--no-error-dialog"],
                r"^smoke test: ok \(\d+ screens rendered, [1-9]\d* patients\)",
            ),
            ("verify", ["verify", "--data-dir", str(ward)], None),
            (
                "export (json)",
                ["export", "--data-dir", str(ward), "--format", "json", "--out", str(exported)],
                r"^exported [1-9]\d* file",
            ),
            (
                "import",
                ["import", str(exported / "demo-01.json"), "--data-dir", str(tmp / "imported")],
                r"added",
            ),
            ("verify (ward written from source)", ["verify", "--data-dir", str(src)], None),
            (
                "handover PDF",
                ["handover", "--data-dir", str(ward), "--out", str(pdf)],
                r"^handover of [1-9]\d* patient",
            ),
            ("validate", ["validate"], r"^[1-9]\d* passed, 0 failed$"),
        ]
        for name, args, expect in plan:
            res, out = run_frozen(name, args, env, expect=expect, exe=exe)
            pdf_ok = pdf.is_file() and pdf.read_bytes().startswith(b"%PDF")
            if res.ok and name.startswith("handover") and not pdf_ok:
                res = CheckResult(name, False, "no PDF written", res.seconds)
            if res.ok and name == "validate":
                counts = parse_validate(out)
                res.detail = f"{counts[0]} passed, {counts[1]} failed" if counts else res.detail
            results.append(res)
        results.append(alarm_check(env, exe))
    return results


def alarm_check(env: dict[str, str], exe: Path | None = None) -> CheckResult:
    """``--alarm-test`` in the bundle: played (0), or no device (3) saying why.

    With ``BEDSIDE_REQUIRE_SOUND=1`` (``.ci/run``, which starts a PulseAudio null sink)
    only "played" passes: the bundle's player must reach the real output.
    """
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [str(exe or executable()), "--alarm-test"],
            env=env,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CheckResult("alarm test", False, f"could not run: {exc}", time.monotonic() - t0)
    took = time.monotonic() - t0
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    required = env.get("BEDSIDE_REQUIRE_SOUND", "") == "1"
    played = proc.returncode == 0 and last.startswith("Alarm sound played")
    silent = proc.returncode == 3 and last.startswith("No alarm sound:")
    bad = unexpected_stderr(proc.stderr)
    ok = not bad and (played or (silent and not required))
    detail = last if not bad else "unexpected stderr: " + " | ".join(bad[:5])
    return CheckResult("alarm test", ok, f"exit {proc.returncode}: {detail}", took)


def missing_files(bundle: Path = BUNDLE) -> list[str]:
    """Files the bundle must have but does not (every resource; Linux Qt plugins)."""
    missing = [
        f"_internal/resources/{p.relative_to(ROOT / 'resources').as_posix()}"
        for p in (ROOT / "resources").rglob("*")
        if p.is_file()
        and not (bundle / "_internal" / "resources" / p.relative_to(ROOT / "resources")).is_file()
    ]
    if sys.platform.startswith("linux"):
        missing += [f for f in REQUIRED_FILES_LINUX if not (bundle / f).exists()]
    return missing


def budget_for_platform() -> float | None:
    """The size budget of this platform (MiB), or None."""
    return next((b for p, b in SIZE_BUDGET_MIB.items() if sys.platform.startswith(p)), None)


def print_prune_report(path: Path) -> None:
    """Print what each Qt prune rule saved (from the spec's report)."""
    if not path.is_file():
        print(f"(no prune report at {path})")
        return
    data = json.loads(path.read_text("utf-8"))
    print("\nQt pieces left out (build/bedside/prune-report.json):")
    print(f"  {'rule':26} {'files':>5} {'MiB':>7}  why")
    total = 0
    for row in data["rules"]:
        total += row["bytes"]
        print(f"  {row['key']:26} {len(row['files']):5} {row['bytes'] / MIB:7.2f}  {row['why']}")
    print(f"  {'total':26} {'':5} {total / MIB:7.2f}")
    for row in data.get("kept", []):
        print(f"  kept: {row['what']} ({row['bytes'] / MIB:.1f} MiB): {row['why']}")


def report_size(bundle: Path = BUNDLE) -> tuple[bool, int]:
    """Print the size breakdown and the budget verdict; return (ok, bytes)."""
    total = tree_size(bundle)
    print(f"\nBundle {bundle.relative_to(ROOT) if ROOT in bundle.parents else bundle}:")
    for name, nbytes in size_breakdown(bundle):
        print(f"  {name:40} {nbytes / MIB:7.1f} MiB")
    ok, msg = size_verdict(total, budget_for_platform())
    print(("  " if ok else "FAIL: ") + msg)
    return ok, total


def measure_excludes() -> int:
    """One build per step, each leaving out one more group; print what each saved."""
    groups = [*PYTHON_EXCLUDES, "pyside6-unused"]
    steps: list[tuple[str, set[str]]] = [("nothing left out", {*groups, "prune", "strip"})]
    for i, g in enumerate(groups):
        steps.append((f"+ exclude {g}", {*groups[i + 1 :], "prune", "strip"}))
    steps.append(("+ Qt pruning (all rules)", {"strip"}))
    steps.append(("+ strip symbols (Linux)", set()))
    dist = WORK / "measure-dist"
    sizes: list[tuple[str, int]] = []
    for label, keep in steps:
        env = dict(os.environ, BEDSIDE_PYI_KEEP=",".join(sorted(keep)) or "none")
        if run_pyinstaller(env, distpath=dist) != 0:
            print(f"FAIL: build '{label}' failed")
            return 1
        sizes.append((label, tree_size(dist / APP_NAME)))
        print(f"{label}: {sizes[-1][1] / MIB:.1f} MiB", flush=True)
    print("\n| step | bundle MiB | saved MiB |\n|---|---:|---:|")
    prev = None
    for label, nbytes in sizes:
        saved = "" if prev is None else f"{(prev - nbytes) / MIB:.1f}"
        print(f"| {label} | {nbytes / MIB:.1f} | {saved} |")
        prev = nbytes
    print_prune_report(WORK / APP_NAME / "prune-report.json")
    shutil.rmtree(dist, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Build, measure and check; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-build", action="store_true", help="check the existing bundle")
    parser.add_argument("--budget-mib", type=float, help="override the size budget")
    parser.add_argument(
        "--measure-excludes", action="store_true", help="one build per exclusion group (slow)"
    )
    ns = parser.parse_args(argv)
    if ns.budget_mib is not None:
        SIZE_BUDGET_MIB.clear()
        SIZE_BUDGET_MIB[sys.platform] = ns.budget_mib
    problems = check_environment()
    if problems:
        for p in problems:
            print(f"FAIL: {p}")
        return 1
    if ns.measure_excludes:
        return measure_excludes()
    t0 = time.monotonic()
    if not ns.skip_build:
        if run_pyinstaller() != 0:
            print("FAIL: PyInstaller failed")
            return 1
        print(f"PyInstaller: {time.monotonic() - t0:.0f} s")
    if not executable().is_file():
        print(f"FAIL: {executable()} does not exist")
        return 1
    failed = False
    print_prune_report(WORK / APP_NAME / "prune-report.json")
    size_ok, _ = report_size()
    failed |= not size_ok
    missing = missing_files()
    if missing:
        failed = True
        print("FAIL: missing from the bundle: " + ", ".join(missing))
    print("\nFrozen checks (QT_QPA_PLATFORM=offscreen):")
    for res in frozen_checks():
        failed |= not res.ok
        print(f"  {'ok  ' if res.ok else 'FAIL'} {res.name:34} {res.seconds:5.1f} s  {res.detail}")
    print(f"\n{'FAILED' if failed else 'OK'} in {time.monotonic() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
