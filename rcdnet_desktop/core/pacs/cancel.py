"""Cancelling a transfer in progress: one watcher for both transports.

A network call blocks in a library (pynetdicom's association, the HTTP session of
dicomweb-client) until its answer or its timeout. :func:`on_cancel` watches the caller's cancel
event from a small thread and, once it is set, calls the transport's own way of ending the call
at once (abort the association, close the session).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence

POLL_S = 0.05
"""How often the watcher looks at the cancel event."""


@contextlib.contextmanager
def on_cancel(cancel: threading.Event | None, stop: Callable[[], None],
              name: str = "pacs-cancel-watch") -> Iterator[threading.Event]:
    """While inside, a set ``cancel`` calls ``stop`` once (its errors ignored: the transfer is
    being given up); yields an event that tells whether it did. No watcher without ``cancel``."""
    aborted = threading.Event()
    if cancel is None:
        yield aborted
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(POLL_S):
                if not done.is_set():
                    aborted.set()
                    with contextlib.suppress(Exception):
                        stop()
                return

    watcher = threading.Thread(target=watch, name=name, daemon=True)
    watcher.start()
    try:
        yield aborted
    finally:
        done.set()
        watcher.join(5)


__all__: Sequence[str] = ("on_cancel",)
