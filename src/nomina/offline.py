"""Nomina reports nothing to anyone: the usage telemetry of the libraries that run its networks is turned off
before they load.

- onnxruntime (1.29 and later; YuNet runs on it) records usage events on Linux and macOS in a database under
  ``~/.cache/Microsoft/DeveloperTools`` with a device id, and uploads them to Microsoft, unless
  ``ORT_DISABLE_TELEMETRY=1`` is set before it starts (read once a process). Nomina sets it when it is
  imported, whatever it was, and refuses to load a model if onnxruntime was imported before Nomina with its
  telemetry on (:func:`check`): a program that uses Nomina as a library imports Nomina first, or sets the
  variable itself.
- OpenVINO's Python package (SFace runs on it) sends an event to Google Analytics when it is imported, from
  its model converter, unless its ``openvino_telemetry`` package cannot be imported (the converter then uses
  a stub that sends nothing). Nomina makes that package unimportable in its process before OpenVINO is
  imported, and never calls the converter. (A program that imported OpenVINO before Nomina has sent that
  event itself; nothing Nomina does with OpenVINO sends another.)

``tests/test_offline.py`` runs a model load and an analysis under ``strace`` with no network connection
allowed to be made, and with an empty home folder that must stay empty.
"""

from __future__ import annotations

import os
import sys

from .errors import ModelError

__all__ = ["check", "quiet_runtimes"]

_ORT_SWITCH = "ORT_DISABLE_TELEMETRY"
# onnxruntime loaded before Nomina with its telemetry on: its events cannot be stopped from here
_ort_was_loaded = "onnxruntime" in sys.modules and os.environ.get(_ORT_SWITCH) != "1"


def quiet_runtimes() -> None:
    """Turn off the telemetry of onnxruntime and OpenVINO for this process (done when Nomina is imported)."""
    os.environ[_ORT_SWITCH] = "1"
    if "openvino" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # makes `import openvino_telemetry` fail


def check() -> None:
    """Refuse to run a network if onnxruntime already runs with its telemetry on in this process."""
    if _ort_was_loaded:
        raise ModelError(
            f"onnxruntime was imported before Nomina with its usage telemetry on; import nomina first, or set "
            f"{_ORT_SWITCH}=1 before onnxruntime is imported"
        )
