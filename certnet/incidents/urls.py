from __future__ import annotations

from django.urls import URLPattern, path

from certnet.incidents import views, views_evidence, views_mail, views_work

urlpatterns: list[URLPattern] = [
    path("incidents/", views.incident_queue, name="incident-list"),
    path("incidents/report/", views.report_form, name="incident-report"),
    path("incidents/report/types/", views.report_types, name="incident-report-types"),
    path("incidents/reports/<int:report_id>/", views.report_detail, name="report-detail"),
    path("incidents/reports/<int:report_id>/filed/", views.report_filed, name="report-filed"),
    path("incidents/<int:incident_id>/", views.incident_detail, name="incident-detail"),
    path("incidents/mail/", views_mail.mail_queue, name="mail-queue"),
    path("incidents/mail/<int:mail_id>/", views_mail.mail_detail, name="mail-detail"),
    path("incidents/mail/<int:mail_id>/<slug:action>/", views_mail.mail_action, name="mail-action"),
    path("incidents/escalated/", views_work.escalated, name="incident-escalated"),
    path("incidents/<int:incident_id>/tasks/", views_work.task_add, name="incident-task-add"),
    path(
        "incidents/<int:incident_id>/tasks/<int:task_id>/<slug:action>/",
        views_work.task_action,
        name="incident-task-action",
    ),
    path("incidents/<int:incident_id>/comments/", views_work.comment_add, name="incident-comment-add"),
    path("incidents/<int:incident_id>/evidence/", views_evidence.evidence_section, name="incident-evidence"),
    path(
        "incidents/<int:incident_id>/evidence/upload/",
        views_evidence.evidence_upload,
        name="incident-evidence-upload",
    ),
    path("incidents/<int:incident_id>/referrals/", views_evidence.referral_add, name="incident-referral-add"),
    path(
        "incidents/<int:incident_id>/evidence-package/",
        views_evidence.package_export,
        name="incident-evidence-package",
    ),
    path(
        "incidents/evidence/<int:evidence_id>/download/",
        views_evidence.evidence_download,
        name="evidence-download",
    ),
    path("incidents/<int:incident_id>/<slug:action>/", views.incident_action, name="incident-action"),
]
