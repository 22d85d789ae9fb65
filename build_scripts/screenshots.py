"""Render every screen of the demo ward offscreen to PNG, to look at them as a nurse would.

    python build_scripts/screenshots.py --data-dir DIR --out DIR [--scale 1.5]
    python build_scripts/screenshots.py --data-dir DIR --out DIR --screen 1920x1080 --scale 2
    python build_scripts/screenshots.py --data-dir DIR --out DIR --ward-sizes

``--screen WxH`` renders on a simulated screen of that many physical pixels (the window
takes the whole available screen, as maximised, and dialogs size themselves for it);
``--ward-sizes`` renders every screen at 1366×768 (100 %) and 1920×1080 at 150 % and
200 % (logical 1366×768, 1280×720, 960×540), each in its own sub-directory of ``--out``.
Window geometry is remembered in a temporary config directory, never the user's.
    python build_scripts/screenshots.py --data-dir DIR --out DIR --theme night

If DIR holds no patients the demo ward is written into it first. The ward in DIR is
opened read-write (the screenshots themselves change nothing); the states that need a
change (a dose at a hard limit, a stale weight) are made on a scratch copy in a
temporary directory, never in DIR.

Screens: the ward board with the timers panel, the empty ward, each tab of several
patients, the dose dialog at a soft limit, at the hard limit and with a stale weight,
the vitals, add-patient, correction and acknowledge dialogs, and the timers panel with
an overdue item.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    """Write the PNGs; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scale", type=float, default=1.0, help="QT_SCALE_FACTOR (e.g. 1.5)")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--screen", help="simulated screen in physical pixels, e.g. 1366x768")
    parser.add_argument(
        "--ward-sizes", action="store_true", help="1366x768 @1, 1920x1080 @1.5 and @2"
    )
    parser.add_argument(
        "--theme", choices=("day", "night"), default="day", help="View > Night colours"
    )
    ns = parser.parse_args(argv)
    if ns.ward_sizes:
        return _ward_sizes(ns)
    config_home = Path(tempfile.mkdtemp(prefix="bedside-shots-config-"))
    os.environ["XDG_CONFIG_HOME"] = str(config_home)  # never the user's window settings
    if ns.screen:
        width, height = (int(v) for v in ns.screen.lower().split("x"))
        screen = {"name": "ward", "x": 0, "y": 0, "width": width, "height": height}
        screen.update({"logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1})
        conf = config_home / "offscreen.json"
        conf.write_text(json.dumps({"screens": [screen]}))
        if os.environ.get("QT_QPA_PLATFORM", "offscreen").startswith("offscreen"):
            os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={conf}"
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if ns.scale != 1.0:
        os.environ["QT_SCALE_FACTOR"] = f"{ns.scale:g}"

    from PySide6.QtWidgets import QWidget

    from bedside.common.clock import FakeClock, SystemClock
    from bedside.store.storage import DataDir
    from bedside.tools.demo import write_demo_ward
    from ui import dialogs
    from ui.app import build_session, create_application

    app = create_application("bedside-screenshots")
    from ui import theme

    theme.apply(ns.theme, app)
    ns.out.mkdir(parents=True, exist_ok=True)
    clock = SystemClock()
    if not DataDir(ns.data_dir, clock=clock).patient_ids():
        write_demo_ward(ns.data_dir, clock)
    written: list[str] = []
    suffix = ("" if ns.scale == 1.0 else f"@{ns.scale:g}x") + (
        "-night" if ns.theme == "night" else ""
    )

    def place(window: QWidget) -> None:
        if ns.screen:
            from ui.screens import available_geometry

            avail = available_geometry(window)
            window.setGeometry(avail)  # as a maximised window
        else:
            window.resize(ns.width, ns.height)

    def save(widget: QWidget, name: str) -> None:
        app.processEvents()
        path = ns.out / f"{name}{suffix}.png"
        widget.grab().save(str(path))
        written.append(path.name)

    def show_dialog(dlg: QWidget, name: str, size: tuple[int, int] | None = None) -> None:
        if size and not ns.screen:
            dlg.resize(*size)
        dlg.show()
        app.processEvents()
        save(dlg, name)
        dlg.close()

    # ------------------------------------------------------------------ the demo ward
    session = build_session(ns.data_dir, clock, show_error_dialogs=False, listen=False)
    window = session.window
    place(window)
    window.initials_edit.setText("RN")
    window.show()
    session.ticker.tick()
    save(window, "01-ward-board")
    save(window.timers, "02-timers-panel")

    patients = session.controller.patient_ids()
    chosen = [
        p
        for p in ("demo-03", "demo-02", "demo-04", "demo-07", "demo-01", "demo-05")
        if p in patients
    ]
    chosen = chosen or patients[:4]
    for pid in chosen:
        ws = window.open_patient(pid)
        for key in ws.tab_keys():
            ws.show_tab(key)
            session.ticker.tick()
            save(window, f"10-{pid}-{key}")

    first = chosen[0]
    window.open_patient(first, "crs")
    show_dialog(
        dialogs.VitalsDialog(session.controller, first, "RN", window),
        "20-vitals-dialog",
        (640, 760),
    )
    show_dialog(
        dialogs.AddPatientDialog(session.controller, "RN", window),
        "21-add-patient-dialog",
        (680, 760),
    )
    show_dialog(
        dialogs.MedicationDialog(session.controller, first, "RN", window),
        "22-medication-dialog",
        (660, 680),
    )
    soft = next((p for p in chosen if not session.controller.budget(p).check.allowed), first)
    show_dialog(
        dialogs.DoseDialog(session.controller, soft, "RN", window),
        "30-dose-dialog-soft-limit",
        (780, 900),
    )
    rows = session.controller.due_rows()
    overdue = [r for r in rows if r.item.state == "overdue"] or rows
    if overdue:
        show_dialog(
            dialogs.AlertDialog(session.controller, overdue[0], "RN", window),
            "40-acknowledge-dialog",
            (640, 420),
        )
        window.timers.select_key(overdue[0].item.key)
        save(window.timers, "41-timers-panel-selected-overdue")
    events = session.controller.record(first).events
    show_dialog(
        dialogs.CorrectionDialog(
            session.controller, first, events[-1], "RN", window, action="amend"
        ),
        "42-correction-dialog",
        (740, 700),
    )
    window.show_board()
    session.close()

    # ------------------------------------------------------------------ scratch copies
    scratch = Path(tempfile.mkdtemp(prefix="bedside-shots-"))
    try:
        copy = scratch / "ward"
        shutil.copytree(ns.data_dir, copy, ignore=shutil.ignore_patterns("bedside.lock*"))
        s2 = build_session(copy, clock, show_error_dialogs=False, listen=False)
        c2 = s2.controller
        # Hard limit: give doses until the course total is reached, then open the dialog.
        target = next(
            (p for p in c2.patient_ids() if (c2.budget(p) or None) and c2.budget(p).total >= 3),
            None,
        )
        if target is not None:
            try:
                plan = c2.plan_tocilizumab(target)
                override = None
                if plan.needs_override:
                    override = {"reason": "screenshot scratch copy", "second_nurse": "CN"}
                if not plan.hard_block:
                    c2.give_tocilizumab(target, given_by="RN", checked_by="JT", override=override)
            except Exception as exc:  # noqa: BLE001 - screenshots are best effort
                print(f"note: could not prepare the hard-limit state: {exc}")
            place(s2.window)
            s2.window.show()
            s2.ticker.tick()
            s2.window.open_patient(target, "crs")
            save(s2.window, f"31-{target}-crs-course-complete")
            show_dialog(
                dialogs.DoseDialog(c2, target, "RN", s2.window),
                "32-dose-dialog-hard-limit",
                (780, 900),
            )
        s2.close()
        # Stale weight: the same ward three days later.
        later = FakeClock(clock.now() + timedelta(days=3, hours=1))
        s3 = build_session(
            copy,
            later,
            show_error_dialogs=False,
            listen=False,
            monotonic=lambda: later.now().timestamp(),
        )
        place(s3.window)
        s3.window.show()
        s3.ticker.tick()
        save(s3.window, "03-ward-board-three-days-later")
        pid = s3.controller.patient_ids()[0]
        show_dialog(
            dialogs.DoseDialog(s3.controller, pid, "RN", s3.window),
            "33-dose-dialog-weight-too-old",
            (780, 700),
        )
        s3.close()
        # Empty ward.
        empty = scratch / "empty"
        s4 = build_session(empty, clock, show_error_dialogs=False, listen=False)
        place(s4.window)
        s4.window.show()
        s4.ticker.tick()
        save(s4.window, "00-empty-ward")
        s4.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"wrote {len(written)} screenshots to {ns.out}:")
    for name in written:
        print(f"  {name}")
    return 0


WARD_SIZES = (("1366x768", 1.0), ("1920x1080", 1.5), ("1920x1080", 2.0))
"""The ward PC and a laptop at 150 % and 200 % (logical 1366×768, 1280×720, 960×540)."""


def _ward_sizes(ns: argparse.Namespace) -> int:
    """Run this script once per ward size (a scale factor needs a fresh process)."""
    code = 0
    for screen, scale in WARD_SIZES:
        out = ns.out / f"{screen}@{scale:g}x"
        args = [sys.executable, __file__, "--data-dir", str(ns.data_dir), "--out", str(out)]
        args += ["--screen", screen, "--scale", f"{scale:g}"]
        env = {k: v for k, v in os.environ.items() if k != "QT_SCALE_FACTOR"}
        code = code or subprocess.run(args, env=env, check=False).returncode
    return code


if __name__ == "__main__":
    sys.exit(main())
