"""Incident services, one transaction per function, each taking the acting user.

handling: intake of reports, triage, escalation, status, assignment and stage reports.
Further modules (evidence, work, mail, clocks) are imported by their callers directly."""

from certnet.incidents.services.handling import (
    CII_SECTIONS,
    ORDINARY_SECTIONS,
    SIGNIFICANT_SEVERITY,
    STATUS_MOVES,
    ReportInput,
    TriageInput,
    assign_incident,
    change_status,
    de_escalate_incident,
    escalate_incident,
    merge_report,
    reject_report,
    submit_report,
    submit_stage_report,
    triage_report,
)

__all__ = [
    "CII_SECTIONS",
    "ORDINARY_SECTIONS",
    "SIGNIFICANT_SEVERITY",
    "STATUS_MOVES",
    "ReportInput",
    "TriageInput",
    "assign_incident",
    "change_status",
    "de_escalate_incident",
    "escalate_incident",
    "merge_report",
    "reject_report",
    "submit_report",
    "submit_stage_report",
    "triage_report",
]
