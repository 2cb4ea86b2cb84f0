"""The engine protocol and its lock: every model call the GUI can make is serialised."""

from __future__ import annotations

import inspect
import threading

import pytest

from rcdnet_desktop.gui.session.engine import (
    UNLOCKED_METHODS,
    Engine,
    FairLock,
    LockedEngine,
    protocol_members,
)
from tests.gui.gui_helpers import FakeEngine

METHODS, PROPERTIES = protocol_members(Engine)


class Probe:
    """Answers every protocol call with whether the lock was held during it."""

    def __init__(self, lock: FairLock) -> None:
        self._lock = lock
        for name in PROPERTIES:
            setattr(self, name, f"value of {name}")

    def __getattr__(self, name):
        if name not in METHODS:
            raise AttributeError(name)
        return lambda *a, **kw: (name, self._lock.locked())


def _arguments(name: str) -> tuple[list, dict]:
    """Positional stand-ins for a protocol method's required parameters."""
    params = list(inspect.signature(getattr(Engine, name)).parameters.values())[1:]
    return [object() for p in params if p.default is inspect.Parameter.empty], {}


def test_protocol_lists_what_the_gui_uses():
    assert set(METHODS) == {"prepare", "predict", "explain", "predict_prepared",
                            "explain_prepared"}
    assert {"device", "device_name", "model_version", "card", "has_localiser",
            "methods"} <= set(PROPERTIES)


@pytest.mark.parametrize("name", METHODS)
def test_every_protocol_method_is_locked(name):
    lock = FairLock()
    locked = LockedEngine(Probe(lock), lock)
    assert name in vars(LockedEngine), f"LockedEngine does not implement {name}"
    args, kwargs = _arguments(name)
    called, held = getattr(locked, name)(*args, **kwargs)
    assert called == name
    assert held == (name not in UNLOCKED_METHODS), \
        f"{name} ran {'with' if held else 'without'} the lock"
    assert not lock.locked()


def test_unlocked_methods_are_few_and_declared():
    assert set(METHODS) >= UNLOCKED_METHODS
    assert {"prepare"} == UNLOCKED_METHODS  # runs the localiser only: see engine.prepare


def test_locked_engine_offers_exactly_the_protocol():
    public = {n for n in vars(LockedEngine) if not n.startswith("_")}
    assert public == set(METHODS) | set(PROPERTIES)
    assert "__getattr__" not in vars(LockedEngine)
    lock = FairLock()
    locked = LockedEngine(Probe(lock), lock)
    for name in PROPERTIES:
        assert getattr(locked, name) == f"value of {name}"
    with pytest.raises(AttributeError):
        locked.predict_many  # noqa: B018 - not in the protocol: not reachable unlocked


def test_the_fake_and_the_real_engine_follow_the_protocol(engine):
    for candidate in (FakeEngine(), engine):
        missing = [n for n in METHODS + PROPERTIES if not hasattr(candidate, n)]
        assert missing == [], f"{type(candidate).__name__} lacks {missing}"


def test_two_threads_never_run_the_model_at_once(tmp_path):
    from rcdnet_desktop.core.io import read_image
    from tests.gui.gui_helpers import write_png

    record = read_image(write_png(tmp_path / "x.png", 100, size=(40, 50)))
    fake = FakeEngine(delay=0.01, predict_delay=0.01)
    locked = LockedEngine(fake, FairLock())
    work = [lambda: locked.predict(record), lambda: locked.explain(record),
            lambda: locked.predict_prepared([fake.prepare(record)]),
            lambda: locked.explain_prepared([locked.prepare(record)])]
    threads = [threading.Thread(target=lambda f=f: [f() for _ in range(5)]) for f in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert fake.max_active == 1 and fake.count("predict") + fake.count("explain") == 20
