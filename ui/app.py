"""The composition root: ``bedside`` / ``python -m ui`` start here.

:func:`main` parses the command line, configures logging (never patient data), creates
the QApplication, resolves the data directory (:mod:`bedside.store.paths`), opens the ward —
which takes the one writer lock; a second launch on the same directory is refused with
the holder's pid and host and exit status 2 — installs the global exception hook and
builds the window over a :class:`~bedside.common.clock.SystemClock`.

Options: ``--data-dir DIR``, ``--demo`` (a temporary demo ward, bannered DEMO DATA),
``--smoke-test`` (build the window, render every screen, round-trip a save, exit 0),
``--quit-after-show`` (exit once the window has painted; start-up measurement),
``--no-error-dialog`` (errors go to stderr only), ``--alarm-test`` (play the critical
alarm once through the real output; exit 0, or 3 printing why there is no sound) and
``--version``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import logging.handlers
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bedside.tools.commands import NAMES as command_names

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_LOCKED = 2

CORE_COMMANDS: frozenset[str] = command_names
"""First arguments routed to ``bedside.tools.cli`` (so the frozen executable runs them): the
names of the core's command registry, :mod:`bedside.tools.commands`."""


def print_pdf(html_text: str, out: Path) -> int:
    """The PDF writer the application gives the core commands (``handover --out F.pdf``).

    Renders in this process through :func:`ui.printing.write_pdf_offscreen` (no window).
    """
    from ui.printing import write_pdf_offscreen

    return write_pdf_offscreen(html_text, out)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="bedside",
        description="Bedside: CAR T-cell therapy ward tool (BCMA: ide-cel, cilta-cel).",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="ward data directory (default: per-user data dir or BEDSIDE_DATA_DIR)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="open a temporary demo ward (fictional patients)"
    )
    parser.add_argument(
        "--smoke-test",
        action="store_true",
        help="build and render every screen, round-trip a save, exit",
    )
    parser.add_argument(
        "--quit-after-show", action="store_true", help="exit once the main window has painted"
    )
    parser.add_argument(
        "--no-error-dialog", action="store_true", help="report errors on stderr only, no dialogs"
    )
    parser.add_argument(
        "--alarm-test",
        action="store_true",
        help="play the critical alarm once and exit (status 3 and why, when there is no sound)",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser.parse_args(argv)


_LOGGING_CONFIGURED = "_bedside_configured"
"""Flag set on the root logger itself: once per process, even if this module loads twice."""


def configure_logging(log_dir: Path | None) -> None:
    """Warnings to stderr; everything from INFO to a rotating file (no patient data is logged)."""
    root = logging.getLogger()
    if getattr(root, _LOGGING_CONFIGURED, False):
        return
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(stderr)
    if log_dir is not None:
        try:
            _private_log_dir(log_dir)
            handler = _PrivateRotatingFileHandler(
                log_dir / "bedside.log", maxBytes=2_000_000, backupCount=5, encoding="utf-8"
            )
            handler.setFormatter(fmt)
            handler.addFilter(NoFieldValues())
            root.addHandler(handler)
        except OSError as exc:
            logger.warning("cannot write the log file (%s); logging to stderr only", exc.strerror)
    setattr(root, _LOGGING_CONFIGURED, True)


def _private_log_dir(path: Path) -> None:
    """Create the log folder 0700 (only a folder created here, or the log folder itself)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)
    if os.name == "posix" and not path.is_symlink():
        os.chmod(path, 0o700)  # Bedside's own log folder
        for log in path.glob("bedside.log*"):
            if log.is_file() and not log.is_symlink():
                os.chmod(log, 0o600)


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files are created 0600 whatever the umask."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if os.name == "posix":
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, self.mode, encoding=self.encoding, errors=self.errors)


class NoFieldValues(logging.Filter):
    """Keep tracebacks in the log file without the exception's message.

    Exception messages can quote field values (a pydantic error repeats its input); the
    file keeps the frames (code locations) and the exception type only.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace ``exc_info`` by its frames and type (never its message)."""
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            etype, _value, tb = record.exc_info
            frames = "".join(traceback.format_tb(tb))
            name = etype.__name__ if etype is not None else "Exception"
            record.exc_info = None
            record.exc_text = (
                f"Traceback (most recent call last):\n{frames}{name} (message omitted)"
            )
        return True


@dataclass
class Session:
    """Everything one open ward needs; :meth:`close` releases the lock."""

    controller: Any
    window: Any
    ticker: Any
    alarm: Any
    crash: Any = None
    server: Any = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    closed: bool = False

    def close(self) -> None:
        """Stop ticking, close the window, release the ward and run cleanups."""
        self.closed = True
        self.ticker.stop()
        if self.server is not None:
            self.server.close()
        self.window.close()
        self.controller.close()
        if self.crash is not None:
            self.crash.uninstall()
        for fn in self.cleanup:
            fn()
        self.cleanup.clear()


def create_application(argv0: str = "bedside") -> Any:
    """The QApplication (created once), with names, style and icon search paths."""
    from PySide6.QtCore import QCoreApplication, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from ui import resources

    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        QCoreApplication.setOrganizationName("bedside")
        QCoreApplication.setApplicationName("Bedside")
        app = QApplication([argv0])
        QGuiApplication.setDesktopFileName("bedside")
    resources.register_search_paths()
    assert isinstance(app, QApplication), "Bedside needs a widgets application"
    if not app.property("bedside_styled"):
        app.setStyleSheet(resources.stylesheet())
        app.setWindowIcon(resources.icon("app"))
        app.setProperty("bedside_styled", True)
    return app


def build_session(
    root: Path,
    clock: Any,
    *,
    demo: bool = False,
    show_error_dialogs: bool = True,
    timer_factory: Any = None,
    install_crash_hook: bool = True,
    listen: bool = True,
    demo_launcher: Callable[[], None] | None = None,
    alarm: Any = None,
    monotonic: Callable[[], float] | None = None,
) -> Session:
    """Open the ward in ``root`` and build the window (raises LockedError if held)."""
    from ui.alarm import Alarm
    from ui.controller import WardController
    from ui.crash import CrashHandler, redactor_for
    from ui.main_window import MainWindow
    from ui.ticker import Ticker, after_first_paint

    ward = open_ward_or_read_only(root, clock)
    try:
        controller = WardController(ward, clock, demo=demo, monotonic=monotonic)
        kwargs = {} if timer_factory is None else {"timer_factory": timer_factory}
        ticker = Ticker(clock, **kwargs)
        alarm = alarm if alarm is not None else Alarm()
        window = MainWindow(
            controller,
            ticker,
            alarm=alarm,
            demo_launcher=demo_launcher or launch_demo_process,
        )
        ticker.setParent(window)
        alarm.setParent(window)
        controller.setParent(window)
    except BaseException:
        ward.close()
        raise
    session = Session(controller=controller, window=window, ticker=ticker, alarm=alarm)
    if install_crash_hook:
        crash = CrashHandler(
            show_dialog=show_error_dialogs, redact=redactor_for(controller.redaction_terms)
        )
        crash.install()
        session.crash = crash
    if listen:
        # The raise-request socket (QtNetwork) is not needed for the first paint; the lock
        # that keeps a second copy out is already held.
        def start_listening() -> None:
            if session.closed:
                return
            from ui.single_instance import InstanceServer

            server = InstanceServer(root, window)
            if server.listen():
                server.raise_requested.connect(lambda: _bring_to_front(window))
            session.server = server

        after_first_paint(window, start_listening)
    return session


def open_ward_or_read_only(root: Path, clock: Any) -> Any:
    """Open the ward for writing; if the folder cannot be written (full disk, read-only
    mount, no permission) open it read-only with the reason, so the ward is still seen.

    Raises:
        LockedError: Another Bedside holds the ward (never opened twice).
        StorageError: The folder is refused outright, or cannot even be read.
    """
    from bedside.common.errors import LockedError, StorageError
    from bedside.store.storage import DataDirRefusedError
    from bedside.ward.service import open_ward

    try:
        return open_ward(root, clock)
    except (LockedError, DataDirRefusedError):
        raise
    except StorageError as exc:
        if not any((Path(root) / d).is_dir() for d in ("patients", "journals")):
            raise
        logger.error("the ward cannot be written; opening it read-only (%s)", type(exc).__name__)
        ward = open_ward(root, clock, read_only=True)
        ward.read_only_reason = str(exc)
        return ward


def _bring_to_front(window: Any) -> None:
    window.showNormal()
    window.raise_()
    window.activateWindow()


def launch_demo_process() -> None:
    """Open the demo ward in a separate Bedside process (never touching this ward)."""
    from PySide6.QtCore import QProcess

    if getattr(sys, "frozen", False):
        program, args = sys.executable, ["--demo"]
    else:
        program, args = sys.executable, ["-m", "ui", "--demo"]
    ok, _pid = QProcess.startDetached(program, args)
    if not ok:
        logger.warning("the demo ward could not be started")


def make_demo_dir(data_dir: Path | None, clock: Any) -> tuple[Path, Callable[[], None] | None]:
    """Write the demo ward (into ``data_dir`` or a new temporary directory)."""
    from bedside.tools.demo import write_demo_ward

    cleanup: Callable[[], None] | None = None
    if data_dir is None:
        root = Path(tempfile.mkdtemp(prefix="bedside-demo-"))

        def remove() -> None:
            shutil.rmtree(root, ignore_errors=True)

        cleanup = remove
    else:
        root = data_dir
    write_demo_ward(root, clock)
    return root, cleanup


def copy_for_smoke_test(root: Path) -> tuple[Path, Callable[[], None]]:
    """A private copy of the ward's patient files for ``--smoke-test`` (never the real ward).

    The smoke test opens a window, ticks the clock guard and writes audit events; on the
    copy, none of that reaches the nurses' records.
    """
    from bedside.common.errors import StorageError

    scratch = Path(tempfile.mkdtemp(prefix="bedside-smoke-ward-"))

    def cleanup() -> None:
        shutil.rmtree(scratch, ignore_errors=True)

    try:
        for folder in ("patients", "journals", "workstations"):  # old files, journals, heartbeats
            source = Path(root) / folder
            if source.is_dir():
                shutil.copytree(source, scratch / folder, symlinks=False)
        clock_file = Path(root) / "clock.json"
        if clock_file.is_file():
            shutil.copy2(clock_file, scratch / "clock.json")
    except OSError as exc:
        cleanup()
        raise StorageError(f"the ward could not be copied for the smoke test ({exc})") from exc
    return scratch, cleanup


def main(argv: list[str] | None = None) -> int:
    """Run Bedside; returns the process exit status."""
    try:
        return _main(argv)
    finally:
        _resume_gc()  # a safety net: normally resumed just after the first paint


def _pause_gc() -> None:
    """No cyclic-garbage passes until the first paint (start-up allocates much, frees little)."""
    gc.disable()


def _resume_gc() -> None:
    """Resume cyclic garbage collection; what start-up built is kept out of later passes."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _main(argv: list[str] | None) -> int:
    started = time.monotonic()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in CORE_COMMANDS:  # `bedside handover ...`, `python -m ui ...`
        from bedside.tools.cli import main as cli_main

        return cli_main(arguments, pdf_writer=print_pdf)
    args = parse_args(arguments)
    if args.version:
        from bedside import __version__
        from bedside.clinical.protocol import load_default_protocol

        print(f"bedside {__version__} (protocol {load_default_protocol().label})")  # noqa: T201
        return EXIT_OK
    if args.alarm_test:
        from ui.alarm import alarm_test

        return alarm_test()

    _pause_gc()
    from bedside.store.paths import log_dir, resolve_data_dir

    configure_logging(log_dir())

    # The Qt-free core before PySide6: shiboken inspects the source of every module imported
    # after it (its __feature__ hook), which costs ~0.1 ms per module for nothing.
    import bedside.ward.alerts
    import bedside.ward.service
    import bedside.ward.timesafety
    import bedside.ward.wardsync  # noqa: F401
    from bedside.common.clock import SystemClock
    from bedside.common.errors import BedsideError, LockedError
    from ui.crash import install_qt_message_handler

    app = create_application(sys.argv[0] if sys.argv else "bedside")
    if not args.smoke_test:
        from ui import theme

        theme.apply(theme.saved())  # View ▸ Night, remembered
    install_qt_message_handler()
    show_dialogs = not args.no_error_dialog and not args.smoke_test
    clock = SystemClock()
    from bedside.store.paths import sweep_handover_tmp

    sweep_handover_tmp(clock.now())
    cleanup: Callable[[], None] | None = None
    try:
        if args.demo:
            root, cleanup = make_demo_dir(args.data_dir, clock)
        else:
            root = resolve_data_dir(args.data_dir)
            if args.smoke_test:
                root, cleanup = copy_for_smoke_test(root)
        session = build_session(root, clock, demo=args.demo, show_error_dialogs=show_dialogs)
    except LockedError as exc:
        from ui.single_instance import ask_running_instance_to_raise, refusal_text

        raised = ask_running_instance_to_raise(resolve_data_dir(args.data_dir))
        text = refusal_text(str(exc), raised)
        sys.stderr.write(text + "\n")
        if show_dialogs:
            from ui import dialogs

            dialogs.show_locked(None, text)
        if cleanup is not None:
            cleanup()
        return EXIT_LOCKED
    except Exception as exc:
        # Bedside's own errors carry identifier-free messages; anything else is logged by
        # type with its frames only (the file handler strips exception messages).
        if isinstance(exc, BedsideError):
            logger.error("cannot open the ward: %s", exc)
        else:
            logger.error("cannot open the ward (%s)", type(exc).__name__, exc_info=exc)
        sys.stderr.write(f"bedside: cannot open the ward: {exc}\n")
        if show_dialogs:
            from ui import dialogs

            dialogs.show_error(None, "Cannot open the ward", str(exc))
        if cleanup is not None:
            cleanup()
        return EXIT_ERROR
    if cleanup is not None:
        session.cleanup.append(cleanup)
    window = session.window
    if args.smoke_test:
        try:
            code = smoke_test(session)
        finally:
            session.close()
        return code
    if args.quit_after_show:
        _quit_after_first_paint(app, window, started)
    from ui.ticker import after_first_paint, single_shot

    after_first_paint(window, _resume_gc)
    window.show()
    # The window was computed for "now" when it was built; the first tick comes 1 s later
    # (ticking now would only delay the first paint).
    session.ticker.start(tick_now=False)

    single_shot(300, window, warm_up)
    try:
        code = app.exec()
    finally:
        session.close()
    return int(code)


def _quit_after_first_paint(app: QApplication_T, window: Any, started: float) -> None:
    """Print the first-paint instant (monotonic) and quit once the window has painted."""
    from PySide6.QtCore import QEvent, QObject

    from ui.ticker import single_shot

    class _FirstPaint(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and not getattr(self, "done", False):
                self.done = True
                now = time.monotonic()
                sys.stdout.write(
                    f"first-paint-monotonic={now:.6f} startup-ms={(now - started) * 1000:.1f}\n"
                )
                sys.stdout.flush()
                single_shot(0, app, app.quit)
            return False

    flt = _FirstPaint(window)
    window.installEventFilter(flt)


QApplication_T = Any


def warm_up() -> None:
    """After the first paint: import what opening a patient needs, build QStyle's enums.

    Keeps the first "open patient" and the first banner change from stuttering, without
    slowing down the start-up itself.
    """
    from PySide6.QtWidgets import QApplication

    import ui.dialogs
    import ui.workspace

    QApplication.style().objectName()
    logger.debug("warm-up done (%s)", ui.dialogs.__name__)


def _smoke_print(session: Session) -> list[str]:
    """Print the handover through Qt's printing module (a PDF-file printer, no dialog)."""
    from PySide6.QtPrintSupport import QPrinter

    from bedside.reports.handover import build_handover, render_html
    from ui.printing import print_document

    ward = session.controller.ward
    with tempfile.TemporaryDirectory(prefix="bedside-smoke-print-") as tmp:
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
        printer.setOutputFileName(str(Path(tmp) / "printed.pdf"))
        try:
            doc = build_handover(ward, ward.clock.now())
            pages = print_document(render_html(doc, appendix=True), printer)
        except Exception as exc:  # noqa: BLE001 - reported as a smoke-test failure
            return [f"printing failed: {type(exc).__name__}: {exc}"]
        del printer
        if pages < 1 or not (Path(tmp) / "printed.pdf").is_file():
            return ["printing wrote nothing"]
    return []


def smoke_test(session: Session) -> int:
    """Render every screen offscreen, load every icon, round-trip a save; 0 when all pass."""
    from PySide6.QtWidgets import QApplication

    from bedside.common.clock import SystemClock
    from bedside.ward.service import open_ward
    from ui import resources

    problems: list[str] = []
    for name in resources.ICON_NAMES:
        if resources.icon(name).isNull():
            problems.append(f"icon {name} did not load")
    window = session.window
    window.show()
    session.ticker.tick()
    QApplication.processEvents()
    shots = 0
    if window.grab().isNull():
        problems.append("main window did not render")
    shots += 1
    for pid in session.controller.patient_ids()[:3]:
        ws = window.open_patient(pid)
        for key in ws.tab_keys():
            ws.show_tab(key)
            QApplication.processEvents()
            if window.grab().isNull():
                problems.append(f"tab {key} did not render")
            shots += 1
    window.show_board()
    problems += _smoke_print(session)
    # Save round trip in a scratch ward (never writes into the nurse's data directory).
    scratch = Path(tempfile.mkdtemp(prefix="bedside-smoke-"))
    try:
        ward = open_ward(scratch, SystemClock())
        try:
            pid = ward.create_patient(
                recorded_by="ST",
                patient_id="smoke",
                mrn="SMOKE-1",
                name="Smoke Test",
                date_of_birth="1970-01-01",
                sex="unknown",
                product="ide-cel",
            )
            ward.chart(pid, "note", recorded_by="ST", text="smoke test")
        finally:
            ward.close()
        again = open_ward(scratch, SystemClock(), read_only=True)
        if len(again.records["smoke"].events if "smoke" in again.records else []) != 1:
            problems.append("save round trip failed")
    except Exception as exc:  # noqa: BLE001 - report any failure as a smoke-test failure
        problems.append(f"save round trip failed: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for p in problems:
        sys.stderr.write(f"smoke test: {p}\n")
    sys.stdout.write(
        f"smoke test: {'FAILED' if problems else 'ok'} ({shots} screens rendered, "
        f"{len(session.controller.patient_ids())} patients)\n"
    )
    return EXIT_ERROR if problems else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
