"""Annex II confirmations and Annex III inability answers: every element, in the record and in
the plain text, with the time of execution in UTC and in the chosen time zone."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanit.domain.errors import InvalidInput
from cleanit.domain.order_replies import (
    ACTION_WORDS,
    ANNEX_II,
    ANNEX_III,
    INABILITY_WORDS,
    Confirmation,
    ExecutionAction,
    Inability,
    OrderParties,
    build_confirmation,
    build_inability,
    render_confirmation,
    render_inability,
)
from cleanit.domain.orders import CLARIFICATION_REASONS, InabilityReason

PARTIES = OrderParties(
    order_reference="RO-2026-0042",
    issuing_authority="Example Internet Referral Office",
    issuing_member_state="BE",
    provider_name="Host A (invented)",
    provider_contact_point="tco-contact@host-a.example.org",
    timezone="Europe/Brussels",
)
URLS = ("https://host-a.example.org/v/1", "https://host-a.example.org/v/2")
# 29 March 2026, 01:10 UTC = 03:10 CEST, just after the clocks went forward.
EXECUTED = datetime(2026, 3, 29, 1, 10, 5, tzinfo=UTC)


def test_the_confirmation_carries_every_annex_ii_element() -> None:
    answer = build_confirmation(
        Confirmation(PARTIES, URLS, ExecutionAction.DISABLED, executed_at=EXECUTED)
    )
    assert answer["form"] == ANNEX_II
    assert answer["removal_order"] == {
        "reference": "RO-2026-0042",
        "issuing_authority": "Example Internet Referral Office",
        "issuing_member_state": "BE",
    }
    assert answer["hosting_service_provider"] == {
        "name": "Host A (invented)",
        "contact_point": "tco-contact@host-a.example.org",
    }
    assert answer["content"] == {
        "urls": list(URLS),
        "action": "disabled",
        "description": "access to the terrorist content has been disabled in all Member States",
    }
    assert answer["executed_at"] == {
        "utc": "2026-03-29T01:10:05Z",
        "local": "2026-03-29T03:10:05+02:00",
        "timezone": "Europe/Brussels",
        "display": "2026-03-29 03:10:05 CEST (UTC+02:00, Europe/Brussels)",
    }
    json.dumps(answer)  # ready for the API and storage as it is


def test_the_confirmation_text_reads_as_the_form() -> None:
    answer = build_confirmation(
        Confirmation(PARTIES, URLS, ExecutionAction.REMOVED, executed_at=EXECUTED)
    )
    text = render_confirmation(answer)
    assert text.startswith("Confirmation of removal or disabling of terrorist content\n")
    assert "Removal order reference: RO-2026-0042" in text
    assert "Issuing authority: Example Internet Referral Office (BE)" in text
    assert "Action: the terrorist content has been removed." in text
    assert "Date and time: 2026-03-29 03:10:05 CEST (UTC+02:00, Europe/Brussels)" in text
    assert "(UTC: 2026-03-29T01:10:05Z)" in text
    assert all(f"  {url}\n" in text for url in URLS)


def test_a_confirmation_without_content_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        build_confirmation(Confirmation(PARTIES, (), ExecutionAction.REMOVED, EXECUTED))
    assert exc.value.field == "content"


def test_an_unknown_display_zone_is_refused() -> None:
    parties = OrderParties("R", "A", "BE", "P", "p@host-a.example.org", timezone="Mars/Olympus")
    with pytest.raises(InvalidInput) as exc:
        build_confirmation(Confirmation(parties, URLS, ExecutionAction.REMOVED, EXECUTED))
    assert exc.value.field == "timezone"


def test_a_naive_execution_time_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        build_confirmation(
            Confirmation(PARTIES, URLS, ExecutionAction.REMOVED, datetime(2026, 3, 29, 1, 10))
        )
    assert exc.value.field == "executed_at"


@given(
    st.lists(
        st.integers(min_value=0, max_value=10**6).map(
            lambda i: f"https://host-a.example.org/v/{i}"
        ),
        min_size=1,
        max_size=10,
        unique=True,
    ),
    st.sampled_from(ExecutionAction),
    st.datetimes(
        min_value=datetime(2022, 6, 7), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(["UTC", "Europe/Brussels", "Europe/Athens", "Atlantic/Azores"]),
)
def test_every_confirmation_names_all_content_the_action_and_the_instant(
    urls: list[str], action: ExecutionAction, at: datetime, tz: str
) -> None:
    parties = OrderParties("RO-9", "Authority", "DE", "Host A", "c@host-a.example.org", tz)
    answer = build_confirmation(Confirmation(parties, tuple(urls), action, at))
    text = render_confirmation(answer)
    assert all(url in text for url in urls)
    assert ACTION_WORDS[action] in text
    assert datetime.fromisoformat(answer["executed_at"]["local"]) == at
    assert datetime.fromisoformat(answer["executed_at"]["utc"]) == at
    assert "RO-9" in text


def inability(reason: InabilityReason, clarification: str | None = None) -> Inability:
    return Inability(
        PARTIES,
        reason,
        explanation="  The URLs in the order point to a page that never existed here.  ",
        answered_at=EXECUTED,
        clarification_needed=clarification,
    )


def test_the_inability_answer_carries_every_annex_iii_element() -> None:
    answer = build_inability(
        inability(InabilityReason.MANIFEST_ERROR, "Please confirm the second URL of section B.")
    )
    assert answer["form"] == ANNEX_III
    assert answer["removal_order"]["reference"] == "RO-2026-0042"
    assert answer["inability"] == {
        "reason": "manifest_error",
        "description": "the removal order contains manifest errors (Art 3(8))",
        "explanation": "The URLs in the order point to a page that never existed here.",
        "clarification_needed": "Please confirm the second URL of section B.",
        "clock": "the one-hour deadline starts again once the clarification is received",
    }
    assert answer["answered_at"]["utc"] == "2026-03-29T01:10:05Z"
    json.dumps(answer)
    text = render_inability(answer)
    assert "Reason: the removal order contains manifest errors (Art 3(8))." in text
    assert "Clarification needed:\n  Please confirm the second URL of section B." in text
    assert "starts again once the clarification is received" in text


@pytest.mark.parametrize("reason", sorted(CLARIFICATION_REASONS))
def test_errors_and_missing_information_must_say_what_clarification_is_needed(
    reason: InabilityReason,
) -> None:
    for missing in (None, "   ", "unclear"):
        with pytest.raises(InvalidInput) as exc:
            build_inability(inability(reason, missing))
        assert exc.value.field == "clarification_needed"


@pytest.mark.parametrize(
    "reason", [InabilityReason.FORCE_MAJEURE, InabilityReason.DE_FACTO_IMPOSSIBILITY]
)
def test_force_majeure_and_impossibility_ask_no_clarification(reason: InabilityReason) -> None:
    answer = build_inability(inability(reason))
    assert answer["inability"]["clarification_needed"] is None
    assert "reasons for the impossibility have ceased" in answer["inability"]["clock"]
    assert "Clarification needed" not in render_inability(answer)
    with pytest.raises(InvalidInput) as exc:
        build_inability(inability(reason, "Which URL do you mean exactly?"))
    assert exc.value.field == "clarification_needed"


@pytest.mark.parametrize("text", ["", "too short", "x" * 10_001])
def test_the_explanation_is_required_and_bounded(text: str) -> None:
    bad = Inability(PARTIES, InabilityReason.FORCE_MAJEURE, text, EXECUTED)
    with pytest.raises(InvalidInput) as exc:
        build_inability(bad)
    assert exc.value.field == "explanation"


def test_every_reason_has_its_form_wording() -> None:
    assert set(INABILITY_WORDS) == set(InabilityReason)
    assert set(ACTION_WORDS) == set(ExecutionAction)
