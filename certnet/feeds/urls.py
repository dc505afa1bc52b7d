from __future__ import annotations

from django.urls import URLPattern, path

from certnet.feeds import views

urlpatterns: list[URLPattern] = [
    path("feeds/", views.source_list, name="feed-source-list"),
    path("feeds/sources/<slug:code>/", views.source_detail, name="feed-source-detail"),
    path("feeds/runs/<int:run_id>/", views.run_detail, name="feed-run-detail"),
    path("feeds/events/", views.event_search, name="feed-event-search"),
    path("feeds/dashboard/", views.dashboard, name="feed-dashboard"),
]
