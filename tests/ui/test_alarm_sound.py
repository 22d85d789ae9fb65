"""The alarm heard by measurement: ``python -m ui --alarm-test`` through a PulseAudio null sink.

The sink's monitor is recorded with ``parec`` while the alarm test runs; the recording must
not be silence, and its audible part must last as long as the critical sound file. A
PulseAudio server already running with a ``test`` sink (``.ci/run`` starts one) is used;
otherwise the test starts its own in a private runtime directory. Skipped only when
PulseAudio is not installed on the machine.
"""

from __future__ import annotations

import array
import io
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from ui.alarm import EXIT_NO_SOUND, NoPlayer, alarm_test
from ui.resources import alarm_sound

ROOT = Path(__file__).resolve().parents[2]
SILENCE = 0.01
"""Below this (full scale = 1) a sample counts as silence."""


def _pactl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pactl", *args], env=env, capture_output=True, text=True, timeout=10, check=False
    )


def _has_test_sink(env: dict[str, str]) -> bool:
    done = _pactl(env, "list", "short", "sinks")
    return done.returncode == 0 and any(
        line.split("\t")[1:2] == ["test"] for line in done.stdout.splitlines()
    )


@pytest.fixture(scope="module")
def pulse_env() -> Iterator[dict[str, str]]:
    """An environment whose PulseAudio server has a null sink named ``test``."""
    missing = [p for p in ("pulseaudio", "pactl", "parec") if shutil.which(p) is None]
    if missing:
        pytest.skip(f"PulseAudio is not installed here ({', '.join(missing)} missing)")
    env = {k: v for k, v in os.environ.items() if k != "BEDSIDE_SOUND"}
    if env.get("XDG_RUNTIME_DIR") and _has_test_sink(env):
        yield env  # started by .ci/run
        return
    runtime = tempfile.mkdtemp(prefix="bedside-pa-")
    env["XDG_RUNTIME_DIR"] = runtime
    env.pop("PULSE_SERVER", None)
    subprocess.run(
        [
            "pulseaudio",
            "-D",
            "--exit-idle-time=-1",
            "-n",
            "--load=module-null-sink sink_name=test",
            "--load=module-native-protocol-unix",
        ],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    for _ in range(50):
        if _has_test_sink(env):
            break
        time.sleep(0.1)
    else:
        pytest.fail("PulseAudio is installed but its null sink did not start")
    try:
        yield env
    finally:
        subprocess.run(["pulseaudio", "-k"], env=env, capture_output=True, timeout=10, check=False)
        shutil.rmtree(runtime, ignore_errors=True)


def _samples(path: Path) -> tuple[list[float], int]:
    """Mono samples scaled to [-1, 1] (channels averaged) and the frame rate."""
    with wave.open(str(path), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes() or 10**9)
    assert width == 2, "expected 16-bit samples"
    data = array.array("h")
    data.frombytes(raw[: len(raw) - len(raw) % 2])
    if sys.byteorder == "big":
        data.byteswap()
    mono = [
        sum(data[i : i + channels]) / channels / 32768.0
        for i in range(0, len(data) - channels + 1, channels)
    ]
    return mono, rate


def _audible_span(samples: list[float], rate: int) -> float:
    loud = [i for i, v in enumerate(samples) if abs(v) > SILENCE]
    return (loud[-1] - loud[0]) / rate if loud else 0.0


def test_alarm_test_is_heard_on_the_sink(pulse_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    rec = subprocess.Popen(
        # A short latency: parec's default buffer (seconds) would be lost when it is stopped.
        ["parec", "--latency-msec=20", "-d", "test.monitor", "--file-format=wav", str(out)],
        env=pulse_env,
    )
    try:
        time.sleep(0.5)  # parec connected before the sound starts
        done = subprocess.run(
            [sys.executable, "-m", "ui", "--alarm-test"],
            env=pulse_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        time.sleep(1.0)
    finally:
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=10)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Alarm sound played (critical.wav via paplay)" in done.stdout
    recorded, rate = _samples(out)
    rms = math.sqrt(sum(v * v for v in recorded) / len(recorded))
    assert rms > SILENCE, f"the recording is silence (RMS {rms:.4f})"
    with wave.open(str(alarm_sound("critical")), "rb") as w:
        expected = w.getnframes() / w.getframerate()
    source, source_rate = _samples(alarm_sound("critical"))
    span, source_span = _audible_span(recorded, rate), _audible_span(source, source_rate)
    assert abs(span - source_span) < 0.25, (span, source_span, expected)
    assert len(recorded) / rate >= expected


def test_alarm_test_without_a_device_exits_3_and_says_why() -> None:
    out = io.StringIO()
    assert alarm_test(NoPlayer("no sound card was found on this computer"), out) == 3
    text = out.getvalue()
    assert EXIT_NO_SOUND == 3
    assert "no sound card was found" in text and "Test alarm sound" in text


def test_alarm_test_command_line_without_sound() -> None:
    env = dict(os.environ, BEDSIDE_SOUND="off")
    done = subprocess.run(
        [sys.executable, "-m", "ui", "--alarm-test"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3
    assert "No alarm sound: sound switched off (BEDSIDE_SOUND=off)" in done.stdout


def test_the_two_sounds_differ() -> None:
    due, _ = _samples(alarm_sound("due"))
    critical, _ = _samples(alarm_sound("critical"))
    assert len(due) != len(critical)
    assert _audible_span(due, 22050) < _audible_span(critical, 22050)
