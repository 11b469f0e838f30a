"""Errors the domain raises when a rule would be broken.

Entry points translate these into RFC 9457 problem details (API), readable messages (CLI, UI).
"""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused the change. ``code`` is a stable, machine-readable slug."""

    code = "domain-error"
    status = 422

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        # Every (field, message) when one input has several faults (an order's Annex I
        # fields, a batch's items): entry points show them all, not just ``field``.
        self.errors: list[tuple[str, str]] = []


class InvalidInput(DomainError):
    code = "invalid-input"


class IllegalTransition(DomainError):
    code = "illegal-transition"
    status = 409


class PrincipleViolation(DomainError):
    """One of the Clean IT principles (legal basis, proportionality, due process) forbids it."""

    code = "principle-violation"
    status = 422


class NotFound(DomainError):
    code = "not-found"
    status = 404


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class Unauthenticated(DomainError):
    code = "unauthenticated"
    status = 401


class Conflict(DomainError):
    code = "conflict"
    status = 409
