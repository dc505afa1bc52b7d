from __future__ import annotations

from django.urls import URLPattern, path

from certnet.incidents import views

urlpatterns: list[URLPattern] = [
    path("incidents/", views.incident_queue, name="incident-list"),
    path("incidents/report/", views.report_form, name="incident-report"),
    path("incidents/report/types/", views.report_types, name="incident-report-types"),
    path("incidents/reports/<int:report_id>/", views.report_detail, name="report-detail"),
    path("incidents/reports/<int:report_id>/filed/", views.report_filed, name="report-filed"),
    path("incidents/<int:incident_id>/", views.incident_detail, name="incident-detail"),
    path("incidents/<int:incident_id>/<slug:action>/", views.incident_action, name="incident-action"),
]
