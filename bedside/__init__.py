"""Bedside: the Qt-free core of the BCMA CAR-T bedside application.

Everything clinical lives here: the protocol model, the rules engine, the patient
record and its storage, timers and reports. Nothing in this package imports Qt.
"""

__version__ = "0.1.0"
APP_NAME = "bedside"
