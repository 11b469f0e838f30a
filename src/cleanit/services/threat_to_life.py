"""Threat to life (TCO Art 14(5)): content that involves an imminent threat to life goes, at
once, to the competent authority of the Member State concerned — or to Europol when that
Member State is unclear or has no authority known to cleanit.

One action does everything in one transaction: the case's data is preserved (an existing
hold is reused, otherwise one starts now, whether or not the content is still online), the
hand-off message is written to the outbox (its delivery job runs immediately), the recipient
authority gets standing in the hold (it may open it, with a purpose, and export evidence), and
the referral is recorded and audited with the SHA-256 of exactly what was sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import (
    Case,
    Organisation,
    PreservationHold,
    ThreatToLifeReferral,
)
from cleanit.domain.errors import InvalidInput
from cleanit.domain.notices import EU_EEA
from cleanit.domain.roles import OrgKind, Permission, Principal
from cleanit.services import audit, preservation
from cleanit.services.authz import require, require_member
from cleanit.services.cases import visible_case
from cleanit.services.context import Context
from cleanit.services.outbox import queue_message

MIN_REASONS = 20
MAX_REASONS = 10_000


@dataclass(frozen=True, slots=True)
class ReferralView:
    id: int
    case_id: int
    hold_id: int | None
    member_state: str | None
    recipient: str
    recipient_organisation_id: int | None
    to_europol: bool
    message_id: int | None
    body_sha256: str
    referred_at: datetime


def _member_state(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    code = value.strip().upper()
    if code not in EU_EEA:
        raise InvalidInput(
            f"'{value}' is not an EU/EEA country code (e.g. 'DE'); leave it empty when the "
            "Member State is unclear and the referral goes to Europol",
            field="member_state",
        )
    return code


def _reasons(text: str) -> str:
    reasons = text.strip()
    if len(reasons) < MIN_REASONS:
        raise InvalidInput(
            "say why the content involves an imminent threat to life: who is threatened, "
            f"where, when (at least {MIN_REASONS} characters)",
            field="reasons",
        )
    if len(reasons) > MAX_REASONS:
        raise InvalidInput(f"reasons are longer than {MAX_REASONS} characters", field="reasons")
    return reasons


def _authority(s: Session, member_state: str | None) -> Organisation | None:
    """The Member State's competent authority known to cleanit, if it has an address."""
    if member_state is None:
        return None
    return s.scalar(
        select(Organisation)
        .where(
            Organisation.kind == OrgKind.COMPETENT_AUTHORITY.value,
            Organisation.country == member_state,
            Organisation.contact_email.is_not(None),
        )
        .order_by(Organisation.id)
        .limit(1)
    )


def _body(
    s: Session,
    *,
    provider: Organisation,
    case: Case,
    hold: PreservationHold,
    member_state: str | None,
    reasons: str,
    referred_by: str,
    at: datetime,
    base_url: str,
) -> str:
    item, notices, matches = preservation.case_facts(s, case)
    lines = [
        "URGENT: IMMINENT THREAT TO LIFE (Regulation (EU) 2021/784, Art 14(5))",
        "",
        f"Hosting provider: {provider.name} ({provider.contact_email or 'no contact address'})",
        f"Referred by: {referred_by} at {at.isoformat()}",
        f"Member State concerned: {member_state or 'unclear (sent to Europol)'}",
        "",
        "Reasons:",
        reasons,
        "",
        "Content:",
        f"  URL: {item.url}",
        f"  Uploader reference: {item.uploader_ref or '-'}",
        f"  Uploader e-mail: {item.uploader_email or '-'}",
        f"  State on the platform: {item.platform_state}",
        f"  Case {case.id}: category {case.category}, jurisdiction {case.jurisdiction}, "
        f"opened {case.opened_at.isoformat()}",
    ]
    for n in notices:
        lines.append(
            f"  Notice {n.public_id} ({n.source_type}, {n.received_at.isoformat()}): "
            + json.dumps(n.explanation, ensure_ascii=False)
        )
    for m in matches:
        lines.append(
            f"  Hash match: {m.signal_type} distance {m.distance} against bank entry "
            f"{m.entry_id} (content sha256 {m.content_sha256})"
        )
    lines += ["", f"Preserved data (hold {hold.id}, kept until {hold.expires_at.isoformat()}):"]
    for i in hold.items:
        lines.append(f"  {i['name']}: sha256 {i['blob']['sha256']}, {i['blob']['size']} bytes")
    lines += [
        "",
        "The content and data are preserved, encrypted. An authority registered in Clean IT",
        f"can download the evidence package at {base_url}/api/v1/preservation-holds/"
        f"{hold.id}/evidence-package (with a purpose); others ask the provider for it,",
        "quoting the hold number above.",
    ]
    return "\n".join(lines) + "\n"


def refer_threat_to_life(
    ctx: Context, principal: Principal, case_id: int, member_state: str | None, reasons: str
) -> ReferralView:
    require(principal, Permission.REFER_THREAT_TO_LIFE)
    state = _member_state(member_state)
    why = _reasons(reasons)
    with ctx.transaction() as s:
        case = visible_case(s, principal, case_id, lock=True)
        require_member(principal, case.provider_id)
        provider = s.get(Organisation, case.provider_id)
        assert provider is not None
        authority = _authority(s, state)
        recipient = authority.contact_email if authority and authority.contact_email else None
        recipient = recipient or ctx.europol_email
        hold = preservation.hold_with_standing(
            s, ctx, case, authority.id if authority else None, actor=principal
        )
        now = ctx.now()
        actor = audit.actor_label(principal)
        body = _body(
            s,
            provider=provider,
            case=case,
            hold=hold,
            member_state=state,
            reasons=why,
            referred_by=actor,
            at=now,
            base_url=ctx.base_url,
        )
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
        message_id = queue_message(
            s,
            kind="threat_to_life",
            recipient=recipient,
            subject=f"URGENT threat to life: {provider.name}, case {case.id}",
            body=body,
            related=("case", case.id),
        )
        ref = ThreatToLifeReferral(
            case_id=case.id,
            provider_id=case.provider_id,
            hold_id=hold.id,
            member_state=state,
            recipient_org_id=authority.id if authority else None,
            recipient=recipient,
            reasons=why,
            message_id=message_id,
            body_sha256=digest,
            referred_by=actor,
            referred_at=now,
        )
        s.add(ref)
        s.flush()
        audit.record(
            s,
            principal,
            "threat_to_life.referred",
            "case",
            case.id,
            {
                "referral_id": ref.id,
                "hold_id": hold.id,
                "member_state": state,
                "recipient": recipient,
                "recipient_organisation_id": ref.recipient_org_id,
                "to_europol": authority is None,
                "message_id": message_id,
                "body_sha256": digest,
            },
            organisation_id=case.provider_id,
            at=now,
        )
        return ReferralView(
            id=ref.id,
            case_id=case.id,
            hold_id=hold.id,
            member_state=state,
            recipient=recipient,
            recipient_organisation_id=ref.recipient_org_id,
            to_europol=authority is None,
            message_id=message_id,
            body_sha256=digest,
            referred_at=now,
        )
