"""The error a bad sweep definition raises: an `InputError` with its own heading."""

from __future__ import annotations

from ..schema import FieldProblem, InputError

__all__ = ["SweepError"]


class SweepError(InputError):
    """A sweep axis or cell is invalid; raised before any request is sent.

    It is an `InputError`, so ``except InputError`` catches it; `problems` lists each problem
    and `hidden` counts those left out of the message.
    """

    def __init__(
        self, problems: list[FieldProblem], *, heading: str = "invalid sweep", hidden: int = 0
    ) -> None:
        super().__init__(problems)
        self.hidden = hidden
        lines = "\n".join(f"  - {p}" for p in problems)
        more = f"\n  ... and {hidden} more" if hidden else ""
        self.args = (f"{heading}:\n{lines}{more}",)

    def __str__(self) -> str:
        return str(self.args[0])
