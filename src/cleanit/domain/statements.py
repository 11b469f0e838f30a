"""Statements of reasons (DSA Art 17(3); TCO Art 11 when a removal order is behind it).

One decision yields one statement; the same record feeds the user's message, the API and,
later, the DSA Transparency Database payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cleanit.domain.decisions import Action, AutomatedDecision, Ground

ACTION_WORDS: dict[Action, str] = {
    Action.NO_ACTION: "no restriction",
    Action.LABEL: "a label was added to the content",
    Action.RESTRICT_VISIBILITY: "the visibility of the content was restricted",
    Action.GEO_BLOCK: "access to the content was blocked in some countries",
    Action.DISABLE_ACCESS: "access to the content was disabled",
    Action.REMOVE: "the content was removed",
    Action.SUSPEND_ACCOUNT: "the account was suspended",
}

# The DSA Transparency Database vocabulary each action maps to (used by the TDB submission).
TDB_VISIBILITY: dict[Action, str] = {
    Action.LABEL: "DECISION_VISIBILITY_CONTENT_LABELLED",
    Action.RESTRICT_VISIBILITY: "DECISION_VISIBILITY_CONTENT_DEMOTED",
    Action.GEO_BLOCK: "DECISION_VISIBILITY_CONTENT_DISABLED",
    Action.DISABLE_ACCESS: "DECISION_VISIBILITY_CONTENT_DISABLED",
    Action.REMOVE: "DECISION_VISIBILITY_CONTENT_REMOVED",
}


@dataclass(frozen=True, slots=True)
class StatementInput:
    decision_id: int
    provider_name: str
    content_url: str
    action: Action
    ground: Ground
    basis_reference: str  # e.g. "Directive (EU) 2017/541, Art 3 (EU)" or "Terms §4.2 v3"
    basis_explanation: str
    facts: str
    source: str  # "notice" | "own_initiative" | "removal_order" | ...
    decided_at: str
    territorial_scope: tuple[str, ...] = field(default_factory=tuple)
    duration_days: int | None = None
    automated_detection: bool = False
    automated_decision: AutomatedDecision = AutomatedDecision.NOT_AUTOMATED
    complaint_url: str | None = None
    complaint_deadline: str | None = None
    removal_order_reference: str | None = None
    replaces_decision_id: int | None = None


def build_statement(s: StatementInput) -> dict[str, Any]:
    """Every Art 17(3) element, as a JSON-ready dict with stable keys."""
    statement: dict[str, Any] = {
        "decision_id": s.decision_id,
        "provider": s.provider_name,
        "content": s.content_url,
        "restriction": {
            "action": s.action.value,
            "description": ACTION_WORDS[s.action],
            "territorial_scope": list(s.territorial_scope)
            or "all countries where the service is offered",
            "duration_days": s.duration_days,
        },
        "facts_and_circumstances": {
            "facts": s.facts,
            "source": s.source,
            # Art 17(3)(b): the notifier's identity is not disclosed unless strictly needed.
            "notifier_identity_disclosed": False,
        },
        "automated_means": {
            "automated_detection": s.automated_detection,
            "automated_decision": s.automated_decision.value,
        },
        "ground": s.ground.value,
        "redress": {
            "internal_complaint": {
                "url": s.complaint_url,
                "deadline": s.complaint_deadline,
            },
            "out_of_court_settlement": "You may refer the dispute to a certified out-of-court "
            "dispute settlement body (DSA Art 21).",
            "judicial_redress": "You may challenge the decision before a court of the Member "
            "State concerned.",
        },
        "decided_at": s.decided_at,
    }
    if s.ground is Ground.ILLEGAL_CONTENT:
        statement["legal_ground"] = s.basis_reference
        statement["illegal_content_explanation"] = s.basis_explanation
    else:
        statement["contractual_ground"] = s.basis_reference
        statement["incompatible_content_explanation"] = s.basis_explanation
    if s.removal_order_reference:
        # TCO Art 11(2): on request the copy of the order; we state its reference outright.
        statement["removal_order_reference"] = s.removal_order_reference
    if s.replaces_decision_id is not None:
        statement["replaces_decision_id"] = s.replaces_decision_id
    return statement


def render_text(statement: dict[str, Any]) -> str:
    """A plain-language rendering of a statement for e-mail and the web."""
    r = statement["restriction"]
    scope = r["territorial_scope"]
    scope_text = ", ".join(scope) if isinstance(scope, list) else scope
    lines = [
        f"Statement of reasons from {statement['provider']}",
        "",
        f"Content: {statement['content']}",
        f"What we did: {r['description']} (action: {r['action']}).",
        f"Where: {scope_text}.",
    ]
    if r.get("duration_days"):
        lines.append(f"For how long: {r['duration_days']} days.")
    lines += ["", "Why:"]
    if statement["ground"] == Ground.ILLEGAL_CONTENT.value:
        lines.append(f"  The content is illegal under {statement['legal_ground']}.")
        lines.append(f"  {statement['illegal_content_explanation']}")
    else:
        lines.append(
            f"  The content is incompatible with our terms: {statement['contractual_ground']}."
        )
        lines.append(f"  {statement['incompatible_content_explanation']}")
    facts = statement["facts_and_circumstances"]
    lines += [
        "",
        f"Facts relied on: {facts['facts']}",
        f"How it came to our attention: {facts['source'].replace('_', ' ')}.",
    ]
    auto = statement["automated_means"]
    lines.append(
        "Automated means: detection "
        + ("was" if auto["automated_detection"] else "was not")
        + " automated; the decision was "
        + {"fully": "fully automated", "partially": "partly automated"}.get(
            auto["automated_decision"], "taken by a person"
        )
        + "."
    )
    if "removal_order_reference" in statement:
        lines.append(f"Removal order reference: {statement['removal_order_reference']}.")
    red = statement["redress"]
    lines += ["", "Your options:"]
    if red["internal_complaint"]["url"]:
        lines.append(
            f"  Complain to us (free) until {red['internal_complaint']['deadline']}: "
            f"{red['internal_complaint']['url']}"
        )
    lines += [f"  {red['out_of_court_settlement']}", f"  {red['judicial_redress']}"]
    return "\n".join(lines) + "\n"
