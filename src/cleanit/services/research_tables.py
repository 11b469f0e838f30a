"""What a research export contains: the tables, their columns, and the queries behind them.

Only enumerations, counts, dates (day, or month when generalised), hours and keyed
pseudonyms leave cleanit. No column reads free text written by notifiers, uploaders or
staff (explanations, facts, grounds, reasons, names, e-mails, URLs, uploader references).
docs/research.md describes the rules; ``data_dictionary.md`` is generated from this file.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import TextClause, text


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # "string" | "int" | "bool"
    description: str
    # "pid:<kind>": the value is a database id, exported as a keyed pseudonym.
    # "date" / "hour": a timestamp truncated to the day / hour (a month when generalised).
    transform: str = ""


@dataclass(frozen=True, slots=True)
class RowTable:
    """A row-level table; ``quasi`` are the columns that could single a row out together."""

    name: str
    description: str
    columns: tuple[Column, ...]
    quasi: tuple[str, ...]
    query: TextClause


@dataclass(frozen=True, slots=True)
class AggregateTable:
    """Counts by ``dimensions`` over one row table; cells below k are suppressed."""

    name: str
    description: str
    source: str
    dimensions: tuple[str, ...]  # "<column>" or "<column>:month" for a date column


def pid(name: str, kind: str, what: str) -> Column:
    return Column(name, "string", f"Pseudonym of the {what} (keyed HMAC-SHA256).", f"pid:{kind}")


GENERALISED = Column(
    "generalised",
    "bool",
    "True when this row's dates were generalised to the month (see the suppression rule).",
)

# Every query takes :start, :end (the period) and :org (a provider id, or NULL for all).


NOTICES = RowTable(
    "notices",
    "One row per notice received in the period.",
    (
        pid("notice_pid", "notice", "notice"),
        pid("case_pid", "case", "first case the notice opened or joined"),
        pid("provider_pid", "organisation", "hosting provider notified"),
        Column("source_type", "string", "Who notified (DSA source type enumeration)."),
        Column("category", "string", "Category of illegal or incompatible content (enum)."),
        Column("jurisdiction", "string", "Jurisdiction code named by the notifier."),
        Column("good_faith", "bool", "The notifier confirmed good faith."),
        Column("anonymous", "bool", "The notice was anonymous."),
        Column("art16_complete", "bool", "The notice had every DSA Art 16(2) element."),
        Column("location_count", "int", "How many locations (URLs) the notice named."),
        Column("keyword_count", "int", "How many keywords the notice carried."),
        Column("received_date", "string", "Day received (UTC).", "date"),
        GENERALISED,
    ),
    ("provider_pid", "source_type", "category", "jurisdiction", "received_date"),
    text(
        """
        SELECT n.id AS notice_pid,
               (SELECT min(nc.case_id) FROM notice_cases nc WHERE nc.notice_id = n.id)
                 AS case_pid,
               n.provider_id AS provider_pid, n.source_type, n.category, n.jurisdiction,
               n.good_faith, n.anonymous, n.art16_complete,
               coalesce(cardinality(n.locations), 0) AS location_count,
               coalesce(cardinality(n.keywords), 0) AS keyword_count,
               n.received_at AS received_date
        FROM notices n
        WHERE n.received_at >= :start AND n.received_at < :end
          AND (CAST(:org AS integer) IS NULL OR n.provider_id = :org)
        ORDER BY n.id
        """
    ),
)

DECISIONS = RowTable(
    "decisions",
    "One row per decision that took effect (or was proposed) in the period.",
    (
        pid("decision_pid", "decision", "decision"),
        pid("case_pid", "case", "case decided"),
        pid("provider_pid", "organisation", "hosting provider"),
        pid("replaces_pid", "decision", "decision this one replaced (after a complaint)"),
        Column("action", "string", "Action taken (no_action, label, ..., suspend_account)."),
        Column("ground", "string", "illegal_content or incompatible_content (empty if none)."),
        Column("basis", "string", "legal_provision, terms_clause or none."),
        Column("automated_detection", "bool", "Detected by automated means."),
        Column("automated_decision", "string", "fully, partially or not_automated."),
        Column("status", "string", "in_force, superseded, rejected or awaiting_approval."),
        Column("territorial_scope", "string", "Country codes, separated by ';'."),
        Column("duration_days", "int", "Duration of a temporary restriction, in days."),
        Column("case_category", "string", "Category of the case (enum)."),
        Column("case_jurisdiction", "string", "Jurisdiction of the case."),
        Column("decided_date", "string", "Day it took effect (else proposed), UTC.", "date"),
        Column("in_force_hour", "string", "Hour it took effect (UTC, YYYY-MM-DDTHH).", "hour"),
        Column("hours_notice_to_decision", "int", "Whole hours from the first notice."),
        GENERALISED,
    ),
    ("provider_pid", "action", "case_category", "case_jurisdiction", "decided_date"),
    text(
        """
        SELECT d.id AS decision_pid, d.case_id AS case_pid, d.provider_id AS provider_pid,
               d.replaces_id AS replaces_pid, d.action, d.ground,
               CASE WHEN a.legal_provision_id IS NOT NULL THEN 'legal_provision'
                    WHEN a.terms_clause_version_id IS NOT NULL THEN 'terms_clause'
                    ELSE 'none' END AS basis,
               d.automated_detection, d.automated_decision, d.status,
               array_to_string(d.territorial_scope, ';') AS territorial_scope,
               d.duration_days, c.category AS case_category,
               c.jurisdiction AS case_jurisdiction,
               coalesce(d.in_force_at, d.created_at) AS decided_date,
               d.in_force_at AS in_force_hour,
               CAST(floor(EXTRACT(EPOCH FROM (d.in_force_at - (
                 SELECT min(n.received_at) FROM notice_cases nc
                 JOIN notices n ON n.id = nc.notice_id WHERE nc.case_id = d.case_id
               ))) / 3600) AS integer) AS hours_notice_to_decision
        FROM decisions d
        JOIN cases c ON c.id = d.case_id
        LEFT JOIN assessments a ON a.id = d.assessment_id
        WHERE coalesce(d.in_force_at, d.created_at) >= :start
          AND coalesce(d.in_force_at, d.created_at) < :end
          AND (CAST(:org AS integer) IS NULL OR d.provider_id = :org)
        ORDER BY d.id
        """
    ),
)

COMPLAINTS = RowTable(
    "complaints",
    "One row per complaint lodged in the period (the grounds and reasons are not exported).",
    (
        pid("complaint_pid", "complaint", "complaint"),
        pid("decision_pid", "decision", "decision complained about"),
        pid("case_pid", "case", "case"),
        pid("provider_pid", "organisation", "hosting provider"),
        pid("new_decision_pid", "decision", "decision that replaced it, if any"),
        Column("complainant_kind", "string", "content_provider or notifier."),
        Column("status", "string", "open or decided."),
        Column("outcome", "string", "upheld, reversed or modified (empty while open)."),
        Column("lodged_date", "string", "Day lodged (UTC).", "date"),
        Column("decided_date", "string", "Day it took effect (else proposed), UTC.", "date"),
        GENERALISED,
    ),
    ("provider_pid", "complainant_kind", "outcome", "lodged_date"),
    text(
        """
        SELECT id AS complaint_pid, decision_id AS decision_pid, case_id AS case_pid,
               provider_id AS provider_pid, new_decision_id AS new_decision_pid,
               complainant_kind, status, outcome, lodged_at AS lodged_date,
               decided_at AS decided_date
        FROM complaints
        WHERE lodged_at >= :start AND lodged_at < :end
          AND (CAST(:org AS integer) IS NULL OR provider_id = :org)
        ORDER BY id
        """
    ),
)

MATCHES = RowTable(
    "matches",
    "One row per match of content against a hash bank in the period.",
    (
        pid("match_pid", "match", "match"),
        pid("case_pid", "case", "case opened or joined, if any"),
        pid("bank_pid", "bank", "bank matched"),
        pid("organisation_pid", "organisation", "organisation whose content matched"),
        pid("source_decision_pid", "decision", "earlier removal the bank entry came from"),
        Column("signal_type", "string", "Kind of signal matched (e.g. pdq, md5)."),
        Column("distance", "int", "Distance between the signals (0 for exact hashes)."),
        Column("suppressed", "bool", "The match was suppressed (negative bank)."),
        Column("from_removal", "bool", "The entry came from an earlier removal decision."),
        Column("matched_date", "string", "Day matched (UTC).", "date"),
        GENERALISED,
    ),
    ("organisation_pid", "signal_type", "matched_date"),
    text(
        """
        SELECT m.id AS match_pid, m.case_id AS case_pid, m.bank_id AS bank_pid,
               m.organisation_id AS organisation_pid,
               CASE WHEN e.source ~ '^decision:[0-9]+$'
                    THEN CAST(substr(e.source, 10) AS integer) END AS source_decision_pid,
               m.signal_type, m.distance, m.suppressed,
               e.source LIKE 'decision:%' AS from_removal, m.matched_at AS matched_date
        FROM matches m JOIN bank_entries e ON e.id = m.entry_id
        WHERE m.matched_at >= :start AND m.matched_at < :end
          AND (CAST(:org AS integer) IS NULL OR m.organisation_id = :org)
        ORDER BY m.id
        """
    ),
)

ROW_TABLES: tuple[RowTable, ...] = (NOTICES, DECISIONS, COMPLAINTS, MATCHES)

AGGREGATES: tuple[AggregateTable, ...] = (
    AggregateTable(
        "notices_by_month",
        "Notices by month, category and source type.",
        "notices",
        ("received_date:month", "category", "source_type"),
    ),
    AggregateTable(
        "decisions_by_month",
        "Decisions by month, action, ground, basis and automation.",
        "decisions",
        ("decided_date:month", "action", "ground", "basis", "automated_decision"),
    ),
    AggregateTable(
        "complaints_by_month",
        "Complaints by month lodged, complainant kind and outcome.",
        "complaints",
        ("lodged_date:month", "complainant_kind", "outcome"),
    ),
    AggregateTable(
        "matches_by_month",
        "Matches by month, signal type and whether the entry came from a removal.",
        "matches",
        ("matched_date:month", "signal_type", "from_removal"),
    ),
)
