"""The provider's answers to a removal order (TCO Regulation (EU) 2021/784).

- **Annex II** (Art 3(6)): the content was removed, or access to it disabled in all Member
  States, at this date and time (with its time zone).
- **Annex III** (Art 3(7), 3(8)): the order cannot be executed, why, and — for manifest errors
  or insufficient information — what clarification is needed.

Each answer is a JSON-ready dict with stable keys (stored, sent to the authority, shown in the
API) plus a plain-text rendering for e-mail, like statements of reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cleanit.domain.errors import InvalidInput
from cleanit.domain.orders import (
    CLARIFICATION_REASONS,
    InabilityReason,
    format_in_timezone,
    in_timezone,
)
from cleanit.domain.raw_input import to_utc

ANNEX_II = "Regulation (EU) 2021/784, Annex II: feedback following removal of terrorist content"
ANNEX_III = "Regulation (EU) 2021/784, Annex III: information on the inability to execute"


class ExecutionAction(StrEnum):
    REMOVED = "removed"
    DISABLED = "disabled"  # access disabled in all Member States


ACTION_WORDS: dict[ExecutionAction, str] = {
    ExecutionAction.REMOVED: "the terrorist content has been removed",
    ExecutionAction.DISABLED: "access to the terrorist content has been disabled in all "
    "Member States",
}

# Annex III has one box for Art 3(7) (force majeure or de facto impossibility not attributable
# to the provider) and one each for the Art 3(8) cases.
INABILITY_WORDS: dict[InabilityReason, str] = {
    InabilityReason.FORCE_MAJEURE: "force majeure not attributable to the hosting service "
    "provider (Art 3(7))",
    InabilityReason.DE_FACTO_IMPOSSIBILITY: "de facto impossibility not attributable to the "
    "hosting service provider, including objectively justifiable technical or operational "
    "reasons (Art 3(7))",
    InabilityReason.MANIFEST_ERROR: "the removal order contains manifest errors (Art 3(8))",
    InabilityReason.INSUFFICIENT_INFORMATION: "the removal order does not contain sufficient "
    "information (Art 3(8))",
}


@dataclass(frozen=True, slots=True)
class OrderParties:
    """Who the answer is between: the order (reference, issuer) and the provider."""

    order_reference: str
    issuing_authority: str
    issuing_member_state: str
    provider_name: str
    provider_contact_point: str  # the Art 15 contact point (e-mail or address)
    timezone: str = "UTC"  # how times are shown; they are always also given in UTC


@dataclass(frozen=True, slots=True)
class Confirmation:
    parties: OrderParties
    content_urls: tuple[str, ...]
    action: ExecutionAction
    executed_at: datetime  # when the platform confirmed


@dataclass(frozen=True, slots=True)
class Inability:
    parties: OrderParties
    reason: InabilityReason
    explanation: str
    answered_at: datetime
    clarification_needed: str | None = None


def _instant(at: datetime, tz: str, field: str) -> dict[str, str]:
    utc = to_utc(at, field=field)
    return {
        "utc": utc.isoformat().replace("+00:00", "Z"),
        "local": in_timezone(utc, tz).isoformat(),
        "timezone": tz,
        "display": format_in_timezone(utc, tz),
    }


def _head(form: str, p: OrderParties) -> dict[str, Any]:
    return {
        "form": form,
        "addressee": {"hosting_service_provider": p.provider_name},
        "removal_order": {
            "reference": p.order_reference,
            "issuing_authority": p.issuing_authority,
            "issuing_member_state": p.issuing_member_state,
        },
        "hosting_service_provider": {
            "name": p.provider_name,
            "contact_point": p.provider_contact_point,
        },
    }


def build_confirmation(c: Confirmation) -> dict[str, Any]:
    """The Annex II feedback as a JSON-ready dict."""
    if not c.content_urls:
        raise InvalidInput("the confirmation must list the content it concerns", field="content")
    answer = _head(ANNEX_II, c.parties)
    answer["content"] = {
        "urls": list(c.content_urls),
        "action": c.action.value,
        "description": ACTION_WORDS[c.action],
    }
    answer["executed_at"] = _instant(c.executed_at, c.parties.timezone, "executed_at")
    return answer


def build_inability(i: Inability) -> dict[str, Any]:
    """The Annex III answer as a JSON-ready dict; InvalidInput when it is incomplete."""
    explanation = i.explanation.strip()
    if len(explanation) < 10:
        raise InvalidInput(
            "explain why the order cannot be executed (at least 10 characters)",
            field="explanation",
        )
    if len(explanation) > 10_000:
        raise InvalidInput("the explanation is longer than 10000 characters", field="explanation")
    clarification = (i.clarification_needed or "").strip() or None
    if i.reason in CLARIFICATION_REASONS and (clarification is None or len(clarification) < 10):
        raise InvalidInput(
            "say which errors the order contains or which further information or "
            "clarification is needed (at least 10 characters)",
            field="clarification_needed",
        )
    if i.reason not in CLARIFICATION_REASONS and clarification is not None:
        raise InvalidInput(
            "a clarification can only be asked for when the order has manifest errors or "
            "insufficient information (Art 3(8))",
            field="clarification_needed",
        )
    answer = _head(ANNEX_III, i.parties)
    answer["inability"] = {
        "reason": i.reason.value,
        "description": INABILITY_WORDS[i.reason],
        "explanation": explanation,
        "clarification_needed": clarification,
        # Art 3(7)-(8): the hour starts again when the obstacle is gone or the answer arrives.
        "clock": "the one-hour deadline starts again once "
        + (
            "the clarification is received"
            if i.reason in CLARIFICATION_REASONS
            else "the reasons for the impossibility have ceased to exist"
        ),
    }
    answer["answered_at"] = _instant(i.answered_at, i.parties.timezone, "answered_at")
    return answer


def _header_lines(answer: dict[str, Any], title: str) -> list[str]:
    order = answer["removal_order"]
    provider = answer["hosting_service_provider"]
    return [
        title,
        f"({answer['form']})",
        "",
        f"Removal order reference: {order['reference']}",
        f"Issuing authority: {order['issuing_authority']} ({order['issuing_member_state']})",
        f"Hosting service provider: {provider['name']}",
        f"Contact point: {provider['contact_point']}",
        "",
    ]


def render_confirmation(answer: dict[str, Any]) -> str:
    """A plain-text rendering of an Annex II confirmation."""
    content = answer["content"]
    lines = _header_lines(answer, "Confirmation of removal or disabling of terrorist content")
    lines.append(f"Action: {content['description']}.")
    lines.append(f"Date and time: {answer['executed_at']['display']}")
    lines.append(f"  (UTC: {answer['executed_at']['utc']})")
    lines += ["", "Content concerned:"]
    lines += [f"  {url}" for url in content["urls"]]
    return "\n".join(lines) + "\n"


def render_inability(answer: dict[str, Any]) -> str:
    """A plain-text rendering of an Annex III answer."""
    inability = answer["inability"]
    lines = _header_lines(answer, "Information on the inability to execute a removal order")
    lines.append(f"Reason: {inability['description']}.")
    lines += ["", "Explanation:", f"  {inability['explanation']}"]
    if inability["clarification_needed"]:
        lines += ["", "Clarification needed:", f"  {inability['clarification_needed']}"]
    lines += [
        "",
        f"Note: {inability['clock']}.",
        f"Sent: {answer['answered_at']['display']} (UTC: {answer['answered_at']['utc']})",
    ]
    return "\n".join(lines) + "\n"
