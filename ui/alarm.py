"""The audible alarm: the platform's own sound player behind one small interface.

Bedside ships PySide6-Essentials (no QtMultimedia, which would add tens of MiB to the
bundle), so it plays its WAV files with what every workstation already has:

* Windows: :mod:`winsound` (standard library, asynchronous ``PlaySound``).
* macOS: ``afplay``.
* Linux: ``paplay`` (PulseAudio or PipeWire's pulse server), else ``pw-play`` (PipeWire),
  else ``aplay`` (ALSA).

Each :class:`Player` says whether a sound device is there (:meth:`Player.probe`, in words
a nurse can act on), starts a sound without blocking (:meth:`Player.start`), stops it at
once (:meth:`Player.stop`) and can play one to the end (:meth:`Player.play_blocking`, for
``--alarm-test``). Two sounds (``resources/sounds/``): ``due`` and ``critical``.

When there is no device, :class:`Alarm` falls back to :meth:`QApplication.beep` and
:attr:`Alarm.available` is False; the main window then shows a permanent "no sound" warning
so nobody relies on hearing it. Every alarm emits :attr:`Alarm.sounded` (tests listen to it
instead of speakers). ``BEDSIDE_SOUND=off`` switches the real output off (the test suite).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol, TextIO

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication

from ui.resources import alarm_sound

logger = logging.getLogger(__name__)

EXIT_NO_SOUND = 3
"""``--alarm-test`` exit status when no sound can be played."""

NO_DEVICE_ADVICE = (
    "Alarms will only show on the screen. Check that speakers or headphones are plugged "
    "in and the volume is up, or call IT; then use Help ▸ Test alarm sound."
)
"""What a nurse should do when there is no sound (shown with the reason)."""


class Player(Protocol):
    """A way to play a WAV file on this workstation."""

    name: str

    def probe(self) -> str:
        """Empty when a sound device is there; otherwise why not, in plain words."""

    def start(self, path: Path) -> None:
        """Start playing ``path`` without waiting (replaces a sound still playing)."""

    def stop(self) -> None:
        """Stop the sound at once (nothing happens when none is playing)."""

    def play_blocking(self, path: Path, timeout: float) -> str:
        """Play ``path`` to the end; empty when it played, else why not."""


def _child_env() -> dict[str, str]:
    """The environment for a system player: without the frozen bundle's library path.

    PyInstaller points ``LD_LIBRARY_PATH`` at the bundle (saving the original as
    ``LD_LIBRARY_PATH_ORIG``); a system program must load the system's libraries.
    """
    env = dict(os.environ)
    if getattr(sys, "frozen", False):
        for var in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"):
            orig = env.pop(f"{var}_ORIG", None)
            if orig is not None:
                env[var] = orig
            else:
                env.pop(var, None)
    return env


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_child_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("sound check %s failed: %s", argv[0], type(exc).__name__)
        return None


class CommandPlayer:
    """A system program that plays a WAV file (``paplay``, ``pw-play``, ``aplay``, ``afplay``)."""

    def __init__(self, program: str, probe_argv: list[str] | None = None) -> None:
        self.name = Path(program).name
        self.program = program
        self.probe_argv = probe_argv
        self._proc: subprocess.Popen[bytes] | None = None

    def probe(self) -> str:
        """Empty when the player's sound server or card answers."""
        if self.probe_argv is None:
            return ""
        done = _run(self.probe_argv, timeout=3.0)
        if done is None or done.returncode != 0:
            return "the sound system of this computer does not answer"
        if self.name == "paplay" and not done.stdout.strip():
            return "no loudspeaker or headphone output is set up on this computer"
        if self.name == "aplay" and "card " not in done.stdout:
            return "no sound card was found on this computer"
        return ""

    def start(self, path: Path) -> None:
        """Start the program on ``path`` (stopping one still playing)."""
        self.stop()
        try:
            self._proc = subprocess.Popen(
                [self.program, str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_child_env(),
            )
        except OSError as exc:
            logger.warning("the alarm player could not start: %s", type(exc).__name__)
            self._proc = None

    def stop(self) -> None:
        """Terminate the playing program, if any."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                proc.kill()

    def play_blocking(self, path: Path, timeout: float) -> str:
        """Run the program to the end."""
        done = _run([self.program, str(path)], timeout)
        if done is None:
            return f"{self.name} did not finish playing the sound"
        if done.returncode != 0:
            return f"{self.name} could not play the sound (exit status {done.returncode})"
        return ""

    @property
    def playing(self) -> bool:
        """True while the program is still playing."""
        return self._proc is not None and self._proc.poll() is None


class WinSoundPlayer:
    """Windows: :mod:`winsound` (part of Python; nothing to install or bundle)."""

    name = "winsound"

    def probe(self) -> str:
        """Empty when Windows reports at least one wave output device."""
        if sys.platform != "win32":
            return ""  # no winmm to ask (ctypes.windll exists only on Windows)
        try:
            import ctypes

            count = int(ctypes.windll.winmm.waveOutGetNumDevs())
        except (OSError, AttributeError):
            return ""
        return "" if count > 0 else "Windows reports no loudspeaker or headphone output"

    # winsound exists (and is typed) only on Windows: each method says so to the type
    # checker with the platform test it understands; elsewhere it fails as the import would.

    def start(self, path: Path) -> None:
        """Play asynchronously (a new sound replaces the one playing)."""
        if sys.platform != "win32":
            raise ModuleNotFoundError("No module named 'winsound'", name="winsound")
        import winsound

        winsound.PlaySound(str(path), winsound.SND_FILENAME | winsound.SND_ASYNC)

    def stop(self) -> None:
        """Stop the sound playing."""
        if sys.platform != "win32":
            raise ModuleNotFoundError("No module named 'winsound'", name="winsound")
        import winsound

        winsound.PlaySound(None, 0)

    def play_blocking(self, path: Path, timeout: float) -> str:
        """Play to the end (synchronous)."""
        if sys.platform != "win32":
            raise ModuleNotFoundError("No module named 'winsound'", name="winsound")
        import winsound

        try:
            winsound.PlaySound(str(path), winsound.SND_FILENAME | winsound.SND_NODEFAULT)
        except RuntimeError as exc:
            return f"Windows could not play the sound ({exc})"
        return ""


class NoPlayer:
    """No way to play sound (the reason says why)."""

    name = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def probe(self) -> str:
        """Always the reason."""
        return self.reason

    def start(self, path: Path) -> None:
        """Nothing to play with."""

    def stop(self) -> None:
        """Nothing playing."""

    def play_blocking(self, path: Path, timeout: float) -> str:
        """Never plays."""
        return self.reason


def default_player() -> Player:
    """The platform's player (``BEDSIDE_SOUND=off`` gives none)."""
    if os.environ.get("BEDSIDE_SOUND", "").lower() == "off":
        return NoPlayer("sound switched off (BEDSIDE_SOUND=off)")
    if sys.platform == "win32":
        return WinSoundPlayer()
    if sys.platform == "darwin":
        afplay = shutil.which("afplay")
        return CommandPlayer(afplay) if afplay else NoPlayer("the macOS sound player is missing")
    paplay, pactl = shutil.which("paplay"), shutil.which("pactl")
    if paplay and pactl:
        player = CommandPlayer(paplay, [pactl, "list", "short", "sinks"])
        if not player.probe():
            return player
    pw_play = shutil.which("pw-play")
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if pw_play and runtime and (Path(runtime) / "pipewire-0").exists():
        return CommandPlayer(pw_play)
    aplay = shutil.which("aplay")
    if aplay:
        player = CommandPlayer(aplay, [aplay, "-l"])
        if not player.probe():
            return player
    if paplay and pactl:
        return CommandPlayer(paplay, [pactl, "list", "short", "sinks"])
    return NoPlayer("no sound player was found on this computer (PulseAudio, PipeWire or ALSA)")


class Alarm(QObject):
    """Plays the alarm sounds; says whether a real sound device is available."""

    sounded = Signal(str)
    """How the alarm sounded: ``"sound"`` (the player), ``"beep"`` or ``"muted"``."""
    device_changed = Signal(bool, str)
    """The sound device appeared or went away: (available, reason)."""

    def __init__(self, parent: QObject | None = None, *, player: Player | None = None) -> None:
        super().__init__(parent)
        self.muted = False
        # The platform's player is found when first needed (finding it may run the sound
        # system's probe as a child process): after the first paint, not before it.
        self._player: Player | None = player
        self.reason = ""
        self.last_tone = ""
        self._checked = False

    @property
    def player(self) -> Player:
        """The player (the platform's, found on first use, unless one was given)."""
        if self._player is None:
            self._player = default_player()
        return self._player

    @player.setter
    def player(self, player: Player) -> None:
        self._player = player

    def check(self) -> bool:
        """Ask the player whether a device is there now (emits :attr:`device_changed`)."""
        before = (self._checked, self.reason)
        self.reason = self.player.probe()
        self._checked = True
        if self.reason and before != (True, self.reason):
            logger.warning("no sound device for alarms (%s); using the system beep", self.reason)
        if before != (True, self.reason):
            self.device_changed.emit(not self.reason, self.reason)
        return not self.reason

    @property
    def available(self) -> bool:
        """True when a real sound device plays the alarm sounds (checked once, lazily)."""
        if not self._checked:
            self.check()
        return not self.reason

    def play(self, tone: str = "critical") -> str:
        """Sound the alarm once (``due`` or ``critical``); returns how."""
        self.last_tone = tone
        if self.muted:
            self.sounded.emit("muted")
            return "muted"
        if self.check():
            self.player.start(alarm_sound(tone))
            mode = "sound"
        else:
            QApplication.beep()
            mode = "beep"
        self.sounded.emit(mode)
        return mode

    def stop(self) -> None:
        """Stop a sound still playing (the alert was dealt with)."""
        self.player.stop()


def alarm_test(player: Player | None = None, out: TextIO | None = None) -> int:
    """``--alarm-test``: play the critical alarm once through the real output.

    Returns 0 when it played, :data:`EXIT_NO_SOUND` (3) after printing why not.
    """
    stream: TextIO = out if out is not None else sys.stdout
    player = player if player is not None else default_player()
    path = alarm_sound("critical")
    why = player.probe() or player.play_blocking(path, timeout=30.0)
    if why:
        print(f"No alarm sound: {why}. {NO_DEVICE_ADVICE}", file=stream)
        return EXIT_NO_SOUND
    print(f"Alarm sound played ({path.name} via {player.name}).", file=stream)
    return 0
