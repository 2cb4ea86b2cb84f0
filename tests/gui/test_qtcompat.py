"""PySide6 6.12.0's emit() steals a reference to True; the viewer's emit() must not."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

from rcdnet_desktop.gui.qtcompat import emit


class _Sender(QObject):
    sig = Signal(object)
    flag = Signal(bool)


def test_emit_keeps_bool_reference_counts():
    s = _Sender()
    got = []
    s.sig.connect(got.append)
    before_true, before_false = sys.getrefcount(True), sys.getrefcount(False)
    for i in range(5000):
        emit(s.sig, i)
        emit(s.flag, False)
    assert len(got) == 5000
    assert abs(sys.getrefcount(True) - before_true) < 50
    assert abs(sys.getrefcount(False) - before_false) < 50
