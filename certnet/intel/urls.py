from __future__ import annotations

from django.urls import URLPattern, path

from certnet.intel import views

urlpatterns: list[URLPattern] = [
    path("intel/", views.indicator_search, name="indicator-search"),
    path("intel/indicators/<int:indicator_id>/", views.indicator_detail, name="indicator-detail"),
    path("intel/reports/", views.report_list, name="intel-report-list"),
    path("intel/reports/new/", views.report_new, name="intel-report-new"),
    path("intel/reports/<int:report_id>/", views.report_detail, name="intel-report-detail"),
    path("intel/reports/<int:report_id>/change/", views.report_change, name="intel-report-change"),
    path("intel/reports/<int:report_id>/stix/", views.report_stix, name="intel-report-stix"),
    path("intel/correlations/", views.correlation_list, name="correlation-list"),
    path("intel/correlations/<int:alert_id>/", views.correlation_detail, name="correlation-detail"),
    path("intel/correlations/<int:alert_id>/status/", views.correlation_status, name="correlation-status"),
]
