"""The progress of an archive run on the machine that runs the command: images done, the
rate, the time left and the failures by reason (tqdm, on standard error when it is a
terminal), and the counts the closing line says."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TextIO


def reason(row: Mapping[str, str]) -> str:
    """A failure's reason, short enough to count: its error without the file's name."""
    text = row.get("error", "")
    for prefix in (row.get("file", ""), row.get("file", "").rsplit("/", 1)[-1]):
        if prefix and text.startswith(prefix):
            text = text[len(prefix):].lstrip(": ")
    text = re.sub(r"\s+", " ", text).strip()
    return text[:60] + ("..." if len(text) > 60 else "")


class Progress:
    """Counts of a run, shown as a bar when ``stream`` is a terminal.

    Parameters
    ----------
    total : int or None
        Images expected (None when a PACS did not say).
    stream : text stream
        Where the bar goes (standard error).
    """

    def __init__(self, total: int | None, stream: TextIO) -> None:
        from tqdm import tqdm

        self.status: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.already = 0
        self.copies = 0
        self.auto = 0
        self._bar = tqdm(total=total, unit="image", file=stream, dynamic_ncols=True,
                         disable=not stream.isatty())

    def row(self, row: Mapping[str, str]) -> None:
        """Count one new row."""
        self.status[row["status"]] += 1
        self.auto += row.get("box_source") == "auto"
        if row["status"] == "failed":
            self.failures[reason(row)] += 1
            self._bar.set_postfix_str(self.failures_text(3), refresh=False)
        self._bar.update(1)

    def done_before(self) -> None:
        """Count an image an earlier run did."""
        self.already += 1
        self._bar.update(1)

    def failures_text(self, most: int = 5) -> str:
        """``failed: reason xN; ...`` for the most frequent reasons."""
        if not self.failures:
            return ""
        parts = [f"{why} x{n}" for why, n in self.failures.most_common(most)]
        more = len(self.failures) - most
        return "failed: " + "; ".join(parts) + (f"; {more} other reason(s)" if more > 0 else "")

    @property
    def rows(self) -> int:
        return self.status.total()

    def close(self) -> None:
        self._bar.close()


__all__: Sequence[str] = ("Progress", "reason")
