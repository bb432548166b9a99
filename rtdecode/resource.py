"""The open/close life cycle shared by sockets, inlets, outlets and model sessions."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["Resource"]

R = TypeVar("R", bound="Resource")


class Resource:
    """Mixin: ``with obj:`` calls ``open()`` (which returns the object) and ``close()`` on exit.

    Subclasses implement both; ``close()`` must be idempotent (it also runs after a failed
    ``open()`` or an exception inside the ``with`` block).
    """

    def open(self: R) -> R:
        """Acquire the resource; returns ``self``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the resource (idempotent)."""
        raise NotImplementedError

    def __enter__(self: R) -> R:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
