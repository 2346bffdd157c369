"""What dispatch refuses, and why (the web maps each kind to an HTTP status)."""

from __future__ import annotations


class DispatchError(Exception):
    """Base: the message says what and why, in words an operator can act on."""


class NotFound(DispatchError):
    """No such group, vehicle, staff member, shift, assignment or alarm (404)."""


class Conflict(DispatchError):
    """Not possible in the current state: group busy, step out of order, overlapping shift (409)."""


class Forbidden(DispatchError):
    """This user may not touch this thing: another group's assignment (403)."""


class Invalid(DispatchError):
    """A value that cannot be right (422); `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
