"""Work-arounds for bugs of particular PySide6 releases.

PySide6 6.12.0 on Python 3.11: ``SignalInstance.emit()`` returns ``True`` without taking a
reference to it. Every discarded result then steals one reference from the ``True`` singleton
(``False`` too), and after a few thousand emits the interpreter aborts with "Fatal Python error:
bool_dealloc: deallocating True or False". PySide6 6.11 does not have the bug; Python 3.12+
makes ``True`` immortal, which hides it.

Every signal the viewer emits from Python goes through :func:`emit`, which gives the missing
reference back when (and only when) a probe at import time has seen the leak, so the viewer is
safe on the affected release and unchanged on the others.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal

_PROBE_EMITS = 16


class _Probe(QObject):
    sig = Signal(int)


def _incref(obj: Any) -> None:
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


def _probe_emit_leak() -> bool:
    probe = _Probe()
    before_true = sys.getrefcount(True)
    for _ in range(_PROBE_EMITS):
        probe.sig.emit(0)
    lost = before_true - sys.getrefcount(True)
    # Other threads may move the count a little; the bug moves it by one per emit.
    leaky = lost >= _PROBE_EMITS - 2
    if leaky:
        for _ in range(_PROBE_EMITS):
            _incref(True)  # repay what the probe itself took
    return leaky


EMIT_LEAKS_BOOL_REFERENCE: bool = _probe_emit_leak()
"""True when this PySide6 has the emit() reference bug (and :func:`emit` compensates)."""


def emit(signal: Any, *args: Any) -> Any:
    """``signal.emit(*args)``, safe on PySide6 releases whose emit() leaks a bool reference.

    Safe to call from any thread (it runs with the GIL held).
    """
    result = signal.emit(*args)
    if EMIT_LEAKS_BOOL_REFERENCE and (result is True or result is False):
        _incref(result)
    return result
