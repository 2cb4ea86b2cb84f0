"""A password or token kept out of sight (:class:`Secret`), and the ways a DICOMweb node
authenticates (:data:`AUTH_KINDS`). Where secrets come from: :mod:`.credentials`."""

from __future__ import annotations

AUTH_KINDS = ("", "basic", "bearer")
"""How a DICOMweb node authenticates: none, HTTP basic (user and password), bearer token."""


class Secret:
    """A password or token that does not show itself.

    ``repr``, ``str`` and ``format`` give ``***``; pickling is refused (a secret does not
    travel); :meth:`reveal` returns the text, for the HTTP layer only.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a secret is text")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self):
        raise TypeError("a secret cannot be pickled")
