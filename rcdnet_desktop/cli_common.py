"""What the ``rcdnet`` commands share: exit statuses, usage errors, a stopped run, the engine
and the options that choose it (device, site profile).

Kept apart from :mod:`rcdnet_desktop.cli` (the parser and ``classify``) so that the other
commands' modules (:mod:`rcdnet_desktop.cli_validate`) use them without importing the CLI that
imports them.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TextIO

from rcdnet_desktop.core.errors import InferenceError, WeightsError
from rcdnet_desktop.core.model.device import DEVICES
from rcdnet_desktop.core.model.engine import InferenceEngine
from rcdnet_desktop.core.result import site_sentence
from rcdnet_desktop.core.site_profile import ProfileError, read_profile

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
"""Exit statuses; a run stopped by a signal exits with 128 + its number (:class:`Stopped`)."""


class UsageError(Exception):
    """Bad command-line input; reported without a traceback, exit status 2."""


class Stopped(KeyboardInterrupt):
    """A run stopped by a signal: Ctrl+C (SIGINT) or SIGTERM, what schedulers and service
    managers send.

    A KeyboardInterrupt, so that everything that cleans up after Ctrl+C does so (files kept,
    the JSON array closed, the review's loader thread stopped); the program then ends with
    ``128 + signum`` (130, 143), the shells' convention, and one line (:meth:`line`).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)
        self.progress = ""
        """How far the run got ("after 32 of 120 file(s)")."""
        self.kept = ""
        """Where the rows done are, when they are not where they were asked."""

    @property
    def status(self) -> int:
        return 128 + self.signum

    def line(self) -> str:
        """What happened, how far the run got and where its rows are, in one line."""
        line = ("interrupted" if self.signum == signal.SIGINT
                else f"stopped by {signal.Signals(self.signum).name}")
        if self.progress:
            line += f" {self.progress}"
        return f"{line}; {self.kept}" if self.kept else line


def add_engine_options(parser, verb: str = "decide") -> None:
    """``--device`` and ``--site``, worded alike for every command that runs the model;
    ``verb`` says what the command does under a site profile ("decide", "validate")."""
    parser.add_argument("--device", choices=DEVICES, default=None,
                        help="where to run the model (default: $RCDNET_DEVICE, else auto)")
    parser.add_argument("--site", type=Path, metavar="FILE",
                        help=f"{verb} under this site profile (rcdnet validate --profile-out): "
                             "its cut-off, temperature and guard limit instead of the model "
                             "card's operating point")


def progress_bar(total: int, stream: TextIO):
    """A progress bar of ``total`` images on ``stream``, shown only on a terminal."""
    # tqdm is imported when a run starts, not for --help or a usage error.
    from tqdm import tqdm

    return tqdm(total=total, unit="image", file=stream, disable=not stream.isatty(),
                dynamic_ncols=True)


def load_engine(device: str | None) -> InferenceEngine:
    """The bundled model's engine on ``device``; a bundle that does not load is a usage error."""
    try:
        return InferenceEngine(model_dir=None, device=device)  # the bundled model
    except (WeightsError, InferenceError, ValueError) as exc:
        raise UsageError(f"cannot load the model: {exc}") from exc


def use_site(engine, site: Path | None, err: TextIO):
    """``engine`` under the site profile in the file ``site`` (``--site``), said on ``err``;
    unchanged when ``site`` is None. A profile that is refused is a usage error."""
    if site is None:
        return engine
    try:
        engine.use_profile(read_profile(site, engine.card))
    except ProfileError as exc:
        raise UsageError(f"--site: {exc}") from exc
    print(f"rcdnet: {site_sentence(engine.profile)}", file=err)
    return engine
