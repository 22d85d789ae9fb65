"""A corpus of crafted, hostile or unlucky inputs against the ward (issue 12).

Each :class:`Case` builds a fresh ward (two patients, one with a tocilizumab dose), then
tries one input — a crafted patient file for import (with a valid hash chain and
checksum where the attack needs them), a service call, a case file or a data directory
— and reports what happened: ``refused`` (nothing changed), ``held`` (held for a
nurse's review, nothing changed) or ``accepted``. After every case the ward must still
open and derive every displayable patient (board, timers, budget and handover), and the
files must be unchanged unless the input was accepted.

Run as a script to print the figures: ``python tests/store/crafted_corpus.py``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bedside.clinical.escalations import derive_due
from bedside.clinical.integrity import derivation_problem
from bedside.clinical.record import GENESIS_HASH, chain_genesis, event_hash, new_event_id
from bedside.common.clock import FakeClock
from bedside.common.errors import BedsideError, StorageError
from bedside.reports.handover import build_handover
from bedside.store.journal import encode_line, journal_genesis, parse_journal
from bedside.store.storage import DataDir, encode_envelope
from bedside.tools.verify import verify_dir
from bedside.ward.service import Ward, open_ward
from bedside.ward.transfer import ImportHeld, import_file

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
REPO = Path(__file__).resolve().parents[2]

Outcome = str  # "refused" | "held" | "accepted"


# --------------------------------------------------------------------------- ward fixtures


@dataclass
class Ctx:
    """One case's world: the local ward A (writable), a sending ward B, a scratch dir."""

    tmp: Path
    clock: FakeClock
    a: Ward
    b: Ward

    def close(self) -> None:
        self.a.close()
        self.b.close()


def _patient(ward: Ward, pid: str, mrn: str, name: str, **kw: Any) -> str:
    fields: dict[str, Any] = {
        "patient_id": pid,
        "mrn": mrn,
        "name": name,
        "date_of_birth": "1961-01-01",
        "sex": "female",
        "weight_kg": 70.0,
        "weight_measured_at": ward.clock.now(),
        "product": "ide-cel",
        "dose_history_complete": True,
        "infusion_at": ward.clock.now() - 48 * H,
    }
    fields.update(kw)
    return ward.create_patient(recorded_by="AB", **fields)


def make_ctx(tmp: Path) -> Ctx:
    clock = FakeClock(T0)
    a = open_ward(tmp / "a", clock)
    b = open_ward(tmp / "b", clock)
    for ward in (a, b):
        _patient(ward, "p1", "MRN-1", "Ada Lovelace")
        ward.assess_crs("p1", {"temperature_c": 38.6, "hypotension": False}, recorded_by="AB")
        ward.give_tocilizumab("p1", given_by="AB", checked_by="CD")
    _patient(a, "p2", "MRN-2", "Mary Somerville", date_of_birth="1950-02-02")
    clock.advance(H)
    return Ctx(tmp, clock, a, b)


def exported(ward: Ward, pid: str) -> dict[str, Any]:
    """The patient file of ``pid`` (as exported) as a dict (checksum removed), for crafting."""
    doc = json.loads(ward.store.envelope_bytes(pid))
    doc.pop("_sha256", None)
    return doc


def sealed(doc: dict[str, Any], *, genesis: str | None = None) -> bytes:
    """Recompute every event's chain link, the head and the checksum (a 'valid' forgery).

    The chain starts at the bound genesis of the patient the file names (what a forger who
    knows the format does), or at ``genesis`` (64 zeros: an older-format file).
    """
    doc = copy.deepcopy(doc)
    prev = genesis if genesis is not None else chain_genesis(doc["patient"]["patient_id"])
    for ev in doc["events"]:
        ev["prev_hash"] = prev
        ev["hash"] = event_hash(ev, prev)
        prev = ev["hash"]
    doc["head"] = {"count": len(doc["events"]), "hash": prev}
    return encode_envelope(doc)


def event(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """A raw event dict as another workstation would have written it."""
    base: dict[str, Any] = {
        "kind": kind,
        "id": new_event_id(),
        "effective_at": at.isoformat().replace("+00:00", "Z"),
        "recorded_at": at.isoformat().replace("+00:00", "Z"),
        "recorded_by": "XY",
        "origin": None,
        "prev_hash": "",
        "hash": "",
    }
    base.update(fields)
    return base


def write(ctx: Ctx, name: str, data: bytes) -> Path:
    path = ctx.tmp / name
    path.write_bytes(data)
    return path


def with_events(ctx: Ctx, pid: str, *events: dict[str, Any]) -> Path:
    """B's file of ``pid`` with extra events appended, resealed."""
    doc = exported(ctx.b, pid)
    doc["events"].extend(events)
    return write(ctx, f"{pid}-crafted.json", sealed(doc))


def local_dose_id(ctx: Ctx) -> str:
    return next(e.id for e in ctx.a.record("p1").events if getattr(e, "drug", "") == "tocilizumab")


# --------------------------------------------------------------------------- outcomes


def run_import(ctx: Ctx, path: Path, *, timeout_s: float = 20.0) -> Outcome:
    """Import ``path`` into A (on a thread: a blocking read would fail the case)."""
    result: list[Outcome] = []

    def go() -> None:
        try:
            import_file(ctx.a, path)
        except ImportHeld:
            result.append("held")
        except BedsideError:
            result.append("refused")
        else:
            result.append("accepted")

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return "BLOCKED"
    return result[0]


def attempt(fn: Callable[[], object]) -> Outcome:
    try:
        fn()
    except BedsideError:
        return "refused"
    return "accepted"


def snapshot(root: Path) -> dict[str, str]:
    """Hash of every stored record file: the journals (issue 15) and any old single file."""
    out: dict[str, str] = {}
    for path in [*sorted(root.glob("journals/*/*.jsonl")), *sorted(root.glob("patients/*.json"))]:
        out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def own_journal(ward: Ward, pid: str) -> Path:
    """The journal ``ward``'s workstation writes for ``pid``."""
    return ward.root / "journals" / pid / f"{ward.workstation}.jsonl"


def append_raw(ward: Ward, pid: str, ev: dict[str, Any]) -> None:
    """Append ``ev`` to the ward's own journal as a sound line, bypassing every check
    the service makes (what a crafted or buggy writer could leave on disk)."""
    path = own_journal(ward, pid)
    j = parse_journal(path.read_bytes(), str(ward.workstation), "crafted", pid)
    assert not j.problem and not j.torn
    body = {
        "t": "event",
        "event": ev,
        "seq": len(j.lines),
        "ws": ward.workstation,
        "user": "crafted",
        "at": ev["recorded_at"],
    }
    line, _ = encode_line(j.head, body)
    with path.open("ab") as f:
        f.write(line)


def rewrite_without(ward: Ward, pid: str, drop: Callable[[dict[str, Any]], bool]) -> None:
    """Rewrite the own journal without the events ``drop`` selects, every line's sequence
    number, checksum and chain link recomputed (a 'valid' forgery)."""
    path = own_journal(ward, pid)
    j = parse_journal(path.read_bytes(), str(ward.workstation), "crafted", pid)
    assert not j.problem
    head, out = journal_genesis(pid, str(ward.workstation)), []
    for body in j.lines:
        if body["t"] == "event" and drop(body["event"]):
            continue
        line, head = encode_line(head, {**body, "seq": len(out)})
        out.append(line)
    path.write_bytes(b"".join(out))


def ward_opens(root: Path, clock: FakeClock) -> tuple[int, int]:
    """Open the ward read-only and derive everything the board and handover need.

    Returns (patients displayed, patients set aside). Raises when the ward cannot open.
    """
    ward = open_ward(root, clock, read_only=True)
    now = clock.now()
    for record in ward.records.values():
        protocol = ward.protocol_for(record)
        assert derivation_problem(record, protocol, now) is None
        derive_due(record, protocol, now, zone=UTC)
        ward.budget(record.patient.patient_id, now)
    build_handover(ward, now)
    return len(ward.records), len(ward.failures)


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One crafted input: its class, what must happen, and how to try it."""

    name: str
    klass: str
    expect: Outcome
    run: Callable[[Ctx], Outcome]
    posix_only: bool = False
    sets_up_files: bool = False
    """The case writes local files itself before the input (so "unchanged" is not checked)."""


def _lot(n: int) -> Callable[[Ctx], Outcome]:
    return lambda c: attempt(
        lambda: c.a.chart("p1", "patient_update", recorded_by="AB", changes={"lot_number": "0" * n})
    )


def _vitals_at(delta: timedelta | None = None, when: datetime | None = None) -> Callable:
    def run(c: Ctx) -> Outcome:
        at = when if when is not None else c.clock.now() + (delta or timedelta(0))
        return attempt(lambda: c.a.chart("p1", "vitals", recorded_by="AB", effective_at=at))

    return run


def _import_events(*make: Callable[[Ctx], dict[str, Any]], pid: str = "p1") -> Callable:
    return lambda c: run_import(c, with_events(c, pid, *(m(c) for m in make)))


def _import_bytes(make: Callable[[Ctx], bytes]) -> Callable[[Ctx], Outcome]:
    return lambda c: run_import(c, write(c, "crafted.json", make(c)))


def _void_local_dose(c: Ctx) -> dict[str, Any]:
    return event(
        "correction",
        c.clock.now(),
        target_id=local_dose_id(c),
        action="void",
        reason="entered in error",
        amended=None,
    )


def _new_patient_file(c: Ctx, pid: str, **header: Any) -> bytes:
    doc = exported(c.b, "p1")
    doc["patient"].update({"patient_id": pid, **header})
    return sealed(doc)


def _fifo(c: Ctx) -> Outcome:
    path = c.tmp / "fifo.json"
    os.mkfifo(path)
    return run_import(c, path, timeout_s=10)


def _big_sparse(c: Ctx) -> Outcome:
    path = c.tmp / "big.json"
    with path.open("wb") as fh:
        fh.truncate(17 * 2**20)  # 17 MB of holes: refused by size before a byte is read
    return run_import(c, path)


def _many_events(c: Ctx) -> bytes:
    doc = exported(c.b, "p1")
    doc["events"] = [{"id": str(i)} for i in range(20_001)]
    doc["head"] = {"count": 20_001, "hash": "0" * 64}
    return encode_envelope(doc)


def _deep(c: Ctx) -> bytes:
    doc = exported(c.b, "p1")
    nest: Any = 1
    for _ in range(300):
        nest = [nest]
    doc["events"].append(event("crs_assessment", c.clock.now(), inputs={"x": nest}))
    return sealed(doc)


def _huge_inputs(c: Ctx) -> dict[str, Any]:
    return event(
        "crs_assessment",
        c.clock.now(),
        inputs={"note": "x" * 100_000},
        grade=0,
        drivers=[],
        explanation="crafted",
    )


def _grafted(c: Ctx) -> Outcome:
    doc = exported(c.b, "p1")
    p2 = exported(c.a, "p2")
    doc["events"].extend(copy.deepcopy(p2["events"]) or [])
    # p2 in A has no events yet: graft one of A's p1 events into a file for another id.
    doc["patient"].update({"patient_id": "p9", "mrn": "MRN-9", "name": "Someone Else"})
    doc["events"] = [copy.deepcopy(exported(c.a, "p1")["events"][0])]
    return run_import(c, write(c, "graft.json", sealed(doc)))


# ---- issue 12: chains bound to their patient (grafts)

FOREIGN = "different patient record"


def _reopen_refuses(c: Ctx, pid: str) -> Outcome:
    """Reopen ward A: ``pid`` must be set aside naming the graft, the rest of the ward
    working and ``verify`` failing; the grafted events are never shown as ``pid``'s."""
    root = c.tmp / "a"
    c.a.close()
    c.a = open_ward(root, c.clock)
    ok, lines = verify_dir(root)
    refused = (
        pid not in c.a.records
        and FOREIGN in c.a.failures.get(pid, "")
        and "p1" in c.a.records
        and not ok
        and FOREIGN in "\n".join(lines)
    )
    return "refused" if refused else "accepted"


def _journal_lines(ws: str, pid: str, bodies: list[dict[str, Any]], genesis: str) -> bytes:
    """A sound journal of ``ws`` whose chain starts at ``genesis``."""
    head, out = genesis, []
    for seq, body in enumerate(bodies):
        line, head = encode_line(head, {**body, "seq": seq, "ws": ws, "user": "x", "at": "t"})
        out.append(line)
    return b"".join(out)


def _peer_journal_of_p1(c: Ctx, ws: str, *, legacy: bool, header: bool) -> bytes:
    """B's events of p1 as the journal a workstation ``ws`` would write for p1."""
    doc = exported(c.b, "p1")
    bodies: list[dict[str, Any]] = [{"t": "header", "patient": doc["patient"]}] if header else []
    bodies += [{"t": "event", "event": e} for e in doc["events"]]
    genesis = GENESIS_HASH if legacy else journal_genesis("p1", ws)
    return _journal_lines(ws, "p1", bodies, genesis)


def _journal_graft(*, legacy: bool, header: bool) -> Callable[[Ctx], Outcome]:
    """Another ward's journal of p1 (chain intact) dropped into p2's folder as a peer's."""

    def run(c: Ctx) -> Outcome:
        ws = "4A-PC9"
        data = _peer_journal_of_p1(c, ws, legacy=legacy, header=header)
        (c.tmp / "a" / "journals" / "p2" / f"{ws}.jsonl").write_bytes(data)
        return _reopen_refuses(c, "p2")

    return run


def _own_journal_graft(c: Ctx) -> Outcome:
    """A's own journal of p1 copied over A's own journal of p2 (same workstation)."""
    src = own_journal(c.a, "p1").read_bytes()
    own_journal(c.a, "p2").write_bytes(src)
    return _reopen_refuses(c, "p2")


def _single_file_graft(c: Ctx) -> Outcome:
    """An old-style single file for a new id p9 holding p1's chain (intact, checksum
    recomputed): the ward sets it aside instead of migrating it."""
    doc = exported(c.a, "p1")
    doc["patient"].update({"patient_id": "p9", "mrn": "MRN-9", "name": "Someone Else"})
    patients = c.tmp / "a" / "patients"
    patients.mkdir(mode=0o700, exist_ok=True)
    (patients / "p9.json").write_bytes(encode_envelope(doc))
    return _reopen_refuses(c, "p9")


def _envelope_graft(pid: str, **header: Any) -> Callable[[Ctx], bytes]:
    """B's export of p1 relabelled as ``pid`` (chain intact, not re-sealed; checksum valid)."""

    def make(c: Ctx) -> bytes:
        doc = exported(c.b, "p1")
        doc["patient"].update({"patient_id": pid, **header})
        return encode_envelope(doc)

    return make


def _envelope_graft_message(c: Ctx) -> Outcome:
    path = write(c, "graft.json", _envelope_graft("p9", mrn="MRN-9", name="Someone Else")(c))
    try:
        import_file(c.a, path)
    except ImportHeld:
        return "held"
    except BedsideError as exc:
        text = str(exc)
        assert "These events belong to a different patient record".lower() in text.lower()
        assert "nothing was imported" in text
        return "refused"
    return "accepted"


def _resealed_graft(*, known_ids: bool) -> Callable[[Ctx], bytes]:
    """A p1 file re-sealed from the bound genesis of a new id p9 with a new identity.

    ``known_ids``: the events are ward A's own p1 events (their ids are charted here);
    otherwise B's (unknown here). Hashes carry no secret: a whole re-sealed chain verifies.
    """

    def make(c: Ctx) -> bytes:
        doc = exported(c.a if known_ids else c.b, "p1")
        doc["patient"].update({"patient_id": "p9", "mrn": "MRN-9", "name": "Someone Else"})
        return sealed(doc)

    return make


def _older_format_export(pid: str) -> Callable[[Ctx], bytes]:
    """B's export of p1 (plus a note) sealed from 64 zeros, as Bedside wrote it before."""

    def make(c: Ctx) -> bytes:
        doc = exported(c.b, "p1")
        doc["events"].append(event("note", c.clock.now(), text="written on B"))
        doc["patient"]["patient_id"] = pid
        if pid != "p1":
            doc["patient"].update({"mrn": "MRN-8", "name": "Older Format"})
        return sealed(doc, genesis=GENESIS_HASH)

    return make


def _weight_only_in_sender_header(c: Ctx) -> Outcome:
    # A's p4 has no weight; B's p4 header has one, and B's update changes only weight_kg:
    # valid over B's header, invalid over A's (a weight without its measurement time).
    _patient(c.a, "p4", "MRN-4", "Emmy Noether", weight_kg=None, weight_measured_at=None)
    _patient(c.b, "p4", "MRN-4", "Emmy Noether")
    doc = exported(c.b, "p4")
    doc["events"].append(event("patient_update", c.clock.now(), changes={"weight_kg": 80.0}))
    return run_import(c, write(c, "p4.json", sealed(doc)))


def _underivable_on_disk(c: Ctx) -> Outcome:
    """A stored journal line (valid chain and checksum) whose update breaks the header."""
    doc = exported(c.a, "p2")
    doc["events"].append(event("patient_update", c.clock.now(), changes={"weight_kg": 600.0}))
    append_raw(c.a, "p2", doc["events"][-1])
    c.a.close()
    reopened = open_ward(c.tmp / "a", c.clock)
    try:
        assert "p2" in reopened.failures and "cannot display" in reopened.failures["p2"]
        assert "p1" in reopened.records  # the rest of the ward works
    finally:
        reopened.close()
    c.a = open_ward(c.tmp / "a", c.clock)
    return "refused"  # set aside as "cannot display", never shown as a valid record


def _tampered_dose_removed(c: Ctx) -> Outcome:
    """A dose removed from the journal with every line's checksum and chain link
    recomputed: verify must fail (its backups give it away)."""
    c.a.chart("p1", "note", recorded_by="AB", text="later note")
    root = c.tmp / "a"
    c.clock.advance(H)
    c.a.chart("p1", "note", recorded_by="AB", text="later note 2")  # forces a newer backup
    assert c.a.store.backups("p1")
    c.a.close()
    rewrite_without(c.a, "p1", lambda e: e.get("drug") == "tocilizumab")
    ok, lines = verify_dir(root)
    c.a = open_ward(root, c.clock)
    text = "\n".join(lines)
    return "refused" if (not ok and "VANISHED" in text) else "accepted"


def _clock_back(damage: str) -> Callable[[Ctx], Outcome]:
    """The clock is set back 10 h while Bedside is closed and clock.json is missing or
    damaged: a second dose 0 h after the first must not pass as 'allowed'."""

    def run(c: Ctx) -> Outcome:
        root = c.tmp / "a"
        c.a.close()
        clock_file = root / "clock.json"
        if damage == "missing":
            clock_file.unlink(missing_ok=True)
        else:
            clock_file.write_text('{"format": "bedside-clock/1", "high_water": "garbage"}')
        c.clock.set(T0 - 9 * H)
        c.a = open_ward(root, c.clock)
        return attempt(lambda: c.a.give_tocilizumab("p1", given_by="AB", checked_by="CD"))

    return run


def _case_file_dup_expect(c: Ctx) -> Outcome:
    path = c.tmp / "cases.json"
    path.write_text(
        '{"format": "bedside-validation/1", "cases": [{"id": "x", "check": "crs", '
        '"input": {}, "expect": {"grade": 0}, "expect": {"grade": 1}}]}'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "bedside", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    return "refused" if proc.returncode == 2 and "duplicate key" in proc.stderr else "accepted"


def _data_dir(make: Callable[[Ctx], Path]) -> Callable[[Ctx], Outcome]:
    def run(c: Ctx) -> Outcome:
        root = make(c)
        try:
            DataDir(root, clock=c.clock)
        except StorageError:
            return "refused"
        return "accepted"

    return run


def _ward_dir(make: Callable[[Ctx], Path]) -> Callable[[Ctx], Outcome]:
    """Open ``make(c)`` as a ward folder the way the application does (journal store)."""

    def run(c: Ctx) -> Outcome:
        root = make(c)
        try:
            open_ward(root, c.clock, workstation="4A-PCX").close()
        except StorageError:
            return "refused"
        return "accepted"

    return run


def _symlinked(name: str) -> Callable[[Ctx], Path]:
    def make(c: Ctx) -> Path:
        root = c.tmp / "ward-l"
        (root / ("workstations" if name == "journals" else "journals")).mkdir(parents=True)
        target = c.tmp / "elsewhere-l"
        target.mkdir()
        link = root / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
        return root

    return make


def _joining_workstation(c: Ctx) -> Path:
    """A replicated ward folder as a new workstation first sees it (no patients/ yet)."""
    root = c.tmp / "ward-j"
    for sub in ("journals", "workstations"):
        (root / sub).mkdir(parents=True)
    return root


def _non_empty_dir(c: Ctx) -> Path:
    root = c.tmp / "documents"
    root.mkdir()
    (root / "letter.txt").write_text("not a ward")
    return root


def _symlinked_backups(c: Ctx) -> Path:
    root = c.tmp / "ward-s"
    (root / "patients").mkdir(parents=True)
    target = c.tmp / "elsewhere"
    target.mkdir()
    (root / "backups").symlink_to(target)
    return root


def _dup(mrn: str, name: str = "Someone New", dob: str = "1970-01-01") -> Callable:
    return lambda c: attempt(
        lambda: _patient(c.a, "p3", mrn, name, date_of_birth=dob, infusion_at=None)
    )


def _void(second: str | None, code: str | None) -> Callable[[Ctx], Outcome]:
    return lambda c: attempt(
        lambda: c.a.correct(
            "p1",
            local_dose_id(c),
            action="void",
            reason="charted on the wrong patient",
            recorded_by="AB",
            reason_code=code,
            second_nurse=second,
        )
    )


def _reimport_twice(c: Ctx) -> Outcome:
    path = with_events(c, "p1", event("vitals", c.clock.now() - H, heart_rate=88))
    first = run_import(c, path)
    before = snapshot(c.tmp / "a")
    second = run_import(c, path)
    assert snapshot(c.tmp / "a") == before
    return first if first == second else "inconsistent"


def _origin_on_every_event(c: Ctx) -> Outcome:
    path = write(c, "p7.json", _new_patient_file(c, "p7", mrn="MRN-7", name="Grace Hopper"))
    outcome = run_import(c, path)
    assert all(e.origin and e.origin.startswith("import:") for e in c.a.record("p7").events)
    return outcome


CASES: list[Case] = [
    # 1. Every write valid for the state it produces (service).
    Case("lot number 100 chars (scanned GS1)", "write validity", "accepted", _lot(100)),
    Case("lot number 300 chars", "write validity", "refused", _lot(300)),
    Case(
        "weight 600 kg update",
        "write validity",
        "refused",
        lambda c: attempt(
            lambda: c.a.chart(
                "p1",
                "patient_update",
                recorded_by="AB",
                changes={"weight_kg": 600.0, "weight_measured_at": c.clock.now().isoformat()},
            )
        ),
    ),
    Case(
        "vitals dated 9999-12-31",
        "write validity",
        "refused",
        _vitals_at(when=datetime(9999, 12, 31, tzinfo=UTC)),
    ),
    Case(
        "vitals dated 1999",
        "write validity",
        "refused",
        _vitals_at(when=datetime(1999, 12, 31, tzinfo=UTC)),
    ),
    Case("vitals 20 h in the future", "write validity", "refused", _vitals_at(20 * H)),
    Case("vitals 3 min ahead", "write validity", "accepted", _vitals_at(timedelta(minutes=3))),
    Case(
        "infusion recorded for 2090",
        "write validity",
        "refused",
        lambda c: attempt(
            lambda: c.a.chart(
                "p1",
                "patient_update",
                recorded_by="AB",
                changes={"infusion_at": "2090-01-01T00:00:00Z"},
            )
        ),
    ),
    Case(
        "new patient born in 2030",
        "write validity",
        "refused",
        lambda c: attempt(
            lambda: _patient(c.a, "p5", "MRN-5", "Future Child", date_of_birth="2030-01-01")
        ),
    ),
    Case(
        "imported new patient infused in 9999",
        "import validity",
        "refused",
        _import_bytes(
            lambda c: _new_patient_file(
                c, "p6", mrn="MRN-6", name="Late Infusion", infusion_at="9999-01-01T00:00:00Z"
            )
        ),
    ),
    # 2. Import reads before it checks.
    Case(
        "/dev/zero",
        "untrusted file",
        "refused",
        lambda c: run_import(c, Path("/dev/zero")),
        posix_only=True,
    ),
    Case("FIFO (never blocks)", "untrusted file", "refused", _fifo, posix_only=True),
    Case(
        "symlink to /dev/zero",
        "untrusted file",
        "refused",
        lambda c: (c.tmp / "z.json").symlink_to("/dev/zero") or run_import(c, c.tmp / "z.json"),
        posix_only=True,
    ),
    Case("17 MB file", "untrusted file", "refused", _big_sparse),
    Case("nesting 300 deep", "untrusted file", "refused", _import_bytes(_deep)),
    Case("20,001 events", "untrusted file", "refused", _import_bytes(_many_events)),
    Case(
        "duplicate key",
        "untrusted file",
        "refused",
        _import_bytes(lambda c: b'{"schema_version": 1, "schema_version": 1}'),
    ),
    Case(
        "checksum does not match",
        "untrusted file",
        "refused",
        _import_bytes(
            lambda c: sealed(exported(c.b, "p1")).replace(b'"Ada Lovelace"', b'"Ada Lovelacf"')
        ),
    ),
    Case(
        "truncated file",
        "untrusted file",
        "refused",
        _import_bytes(lambda c: sealed(exported(c.b, "p1"))[:-40]),
    ),
    Case("100 KB of free-form inputs", "untrusted file", "refused", _import_events(_huge_inputs)),
    # 3. Import content: validity, binding, identity.
    Case(
        "vitals dated 9999-12-31 (import)",
        "import validity",
        "refused",
        _import_events(lambda c: event("vitals", datetime(9999, 12, 31, tzinfo=UTC))),
    ),
    Case(
        "workstation 20 h fast (import)",
        "import validity",
        "refused",
        _import_events(lambda c: event("vitals", c.clock.now() + 20 * H, heart_rate=90)),
    ),
    Case(
        "snooze until 2099 (import)",
        "import validity",
        "refused",
        _import_events(
            lambda c: event(
                "alert",
                c.clock.now(),
                alert_key="vitals_next",
                alert_kind="vitals_next",
                due_at="2026-06-10T12:00:00Z",
                action="snoozed",
                snooze_until="2099-01-01T00:00:00Z",
                reason=None,
            )
        ),
    ),
    Case(
        "weight update valid only in the sender's header",
        "import validity",
        "refused",
        _weight_only_in_sender_header,
        sets_up_files=True,
    ),
    Case("events grafted from another patient", "import binding", "refused", _grafted),
    # Issue 12: grafts of another patient's chain (intact) under a new patient id.
    Case(
        "journal graft: another ward's p1 journal in p2's folder",
        "chain binding",
        "refused",
        _journal_graft(legacy=False, header=False),
        sets_up_files=True,
    ),
    Case(
        "journal graft: own p1 journal copied over p2's",
        "chain binding",
        "refused",
        _own_journal_graft,
        sets_up_files=True,
    ),
    Case(
        "journal graft: older-format journal whose header names p1",
        "chain binding",
        "refused",
        _journal_graft(legacy=True, header=True),
        sets_up_files=True,
    ),
    Case(
        "single-file graft: p1's chain in patients/p9.json",
        "chain binding",
        "refused",
        _single_file_graft,
        sets_up_files=True,
    ),
    Case(
        "export-envelope graft into a new id", "chain binding", "refused", _envelope_graft_message
    ),
    Case(
        "export-envelope graft into local p2 (p2's identity)",
        "chain binding",
        "refused",
        _import_bytes(
            _envelope_graft("p2", mrn="MRN-2", name="Mary Somerville", date_of_birth="1950-02-02")
        ),
    ),
    Case(
        "re-sealed graft under a new id (events charted here)",
        "chain binding",
        "refused",
        _import_bytes(_resealed_graft(known_ids=True)),
    ),
    Case(
        # The limit of a hash without a secret: a whole chain re-sealed under a new id and
        # identity, of events unknown here, is a valid new patient file. It is a new patient
        # (no graft onto an existing record), every event's origin names the import.
        "re-sealed chain of unknown events, new id and identity (limit)",
        "chain binding",
        "accepted",
        _import_bytes(_resealed_graft(known_ids=False)),
    ),
    Case(
        "older-format export (not bound), existing patient",
        "chain binding",
        "held",
        _import_bytes(_older_format_export("p1")),
    ),
    Case(
        "older-format export (not bound), new patient",
        "chain binding",
        "held",
        _import_bytes(_older_format_export("p8")),
    ),
    Case(
        "same id, other date of birth",
        "import binding",
        "refused",
        _import_bytes(
            lambda c: _new_patient_file(c, "p1", date_of_birth="1962-01-01", name="Ada Lovelace")
        ),
    ),
    Case(
        "Windows device name as id (CON)",
        "import binding",
        "refused",
        _import_bytes(lambda c: _new_patient_file(c, "CON", mrn="MRN-C", name="Con Person")),
    ),
    # 4. What would change the meaning of local events is held.
    Case("void of a local dose", "meaning change", "held", _import_events(_void_local_dose)),
    Case(
        "acknowledgement",
        "meaning change",
        "held",
        _import_events(
            lambda c: event(
                "alert",
                c.clock.now(),
                alert_key="vitals_next",
                alert_kind="vitals_next",
                due_at="2026-06-10T12:00:00Z",
                action="acknowledged",
                snooze_until=None,
                reason=None,
            )
        ),
    ),
    Case(
        "snooze within the cap",
        "meaning change",
        "held",
        _import_events(
            lambda c: event(
                "alert",
                c.clock.now(),
                alert_key="vitals_next",
                alert_kind="vitals_next",
                due_at="2026-06-10T12:00:00Z",
                action="snoozed",
                snooze_until=(c.clock.now() + timedelta(minutes=10)).isoformat(),
                reason=None,
            )
        ),
    ),
    Case(
        "history confirmation",
        "meaning change",
        "held",
        _import_events(
            lambda c: event(
                "history_confirmation", c.clock.now(), source="MAR checked", complete=True
            )
        ),
    ),
    Case(
        "header change (bed)",
        "meaning change",
        "held",
        _import_events(lambda c: event("patient_update", c.clock.now(), changes={"bed": "12"})),
    ),
    # 5. Plain new events are accepted, idempotently, with their origin.
    Case(
        "new vitals from another ward",
        "plain merge",
        "accepted",
        _import_events(lambda c: event("vitals", c.clock.now() - H, heart_rate=80)),
    ),
    Case("same file imported twice", "plain merge", "accepted", _reimport_twice),
    Case("new patient, origin on every event", "plain merge", "accepted", _origin_on_every_event),
    # 6. Duplicate patients (normalised MRN, name + date of birth).
    Case("MRN with a leading space", "duplicate patient", "refused", _dup(" MRN-1")),
    Case("MRN in lower case", "duplicate patient", "refused", _dup("mrn-1")),
    Case("MRN with a zero-width space", "duplicate patient", "refused", _dup("MRN\u200b-1")),
    Case("MRN with a Unicode hyphen", "duplicate patient", "refused", _dup("MRN\u20111")),
    Case("MRN in full-width forms", "duplicate patient", "refused", _dup("ＭＲＮ－１")),
    Case(
        "same name and date of birth",
        "duplicate patient",
        "refused",
        _dup("MRN-77", name="  ada   LOVELACE ", dob="1961-01-01"),
    ),
    Case(
        "duplicate MRN by import",
        "duplicate patient",
        "refused",
        _import_bytes(lambda c: _new_patient_file(c, "p8", mrn="mrn\u20131", name="Other")),
    ),
    # 7. Voiding a dose needs a second nurse and a reason from the list.
    Case("void a dose alone", "dose void", "refused", _void(None, "wrong_patient")),
    Case("void a dose without a listed reason", "dose void", "refused", _void("CD", None)),
    Case("void a dose with a second nurse", "dose void", "accepted", _void("CD", "wrong_patient")),
    # 8. Time: the clock guard is never off.
    Case("clock back 10 h, clock.json missing", "time", "refused", _clock_back("missing")),
    Case("clock back 10 h, clock.json corrupt", "time", "refused", _clock_back("corrupt")),
    # 9. Files at rest, data directories and case files.
    Case(
        "record underivable on disk",
        "isolation",
        "refused",
        _underivable_on_disk,
        sets_up_files=True,
    ),
    Case(
        "dose removed, chain recomputed",
        "tampering",
        "refused",
        _tampered_dose_removed,
        sets_up_files=True,
    ),
    Case("case file with expect twice", "strict case file", "refused", _case_file_dup_expect),
    Case("data dir ''", "data directory", "refused", _data_dir(lambda c: Path(""))),
    Case("data dir /", "data directory", "refused", _data_dir(lambda c: Path("/"))),
    Case("data dir = home", "data directory", "refused", _data_dir(lambda c: Path.home())),
    Case("non-empty non-Bedside dir", "data directory", "refused", _data_dir(_non_empty_dir)),
    Case("ward folder ''", "data directory", "refused", _ward_dir(lambda c: Path(""))),
    Case("ward folder /", "data directory", "refused", _ward_dir(lambda c: Path("/"))),
    Case("ward folder = home", "data directory", "refused", _ward_dir(lambda c: Path.home())),
    Case("non-empty non-ward folder", "data directory", "refused", _ward_dir(_non_empty_dir)),
    Case(
        "joining workstation's folder",
        "data directory",
        "accepted",
        _ward_dir(_joining_workstation),
    ),
    Case(
        "symlinked backups/",
        "data directory",
        "refused",
        _data_dir(_symlinked_backups),
        posix_only=True,
    ),
    *(
        Case(
            f"symlinked {name}",
            "data directory",
            "refused",
            _ward_dir(_symlinked(name)),
            posix_only=True,
        )
        for name in ("journals", "workstations", "locks", "backups", "backups/4A-PCX")
    ),
]


@dataclass
class Result:
    case: Case
    outcome: Outcome
    unchanged: bool
    displayed: int
    set_aside: int


def run_case(case: Case, tmp: Path) -> Result:
    """Run one case in ``tmp``; the ward must open afterwards (raises otherwise)."""
    ctx = make_ctx(tmp)
    try:
        before = snapshot(tmp / "a")
        outcome = case.run(ctx)
        after = snapshot(tmp / "a")
    finally:
        ctx.close()
    displayed, set_aside = ward_opens(tmp / "a", ctx.clock)
    return Result(case, outcome, before == after, displayed, set_aside)


def figures(results: list[Result]) -> dict[str, int]:
    """Inputs tried, refused, held, accepted, and how often the ward still opened."""
    return {
        "tried": len(results),
        "refused": sum(r.outcome == "refused" for r in results),
        "held": sum(r.outcome == "held" for r in results),
        "accepted": sum(r.outcome == "accepted" for r in results),
        "ward_opened": len(results),  # run_case raises when it does not
    }


if __name__ == "__main__":  # pragma: no cover - prints the figures for the report
    results = []
    for case in CASES:
        if case.posix_only and os.name != "posix":
            continue
        with tempfile.TemporaryDirectory() as d:
            r = run_case(case, Path(d))
        mark = "ok " if r.outcome == case.expect else "BAD"
        print(
            f"{mark} {case.klass:18} {case.name:45} {r.outcome:9} opens:{r.displayed}+{r.set_aside}"
        )
        results.append(r)
    print(figures(results))
