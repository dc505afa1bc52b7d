from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from certnet.registry import views as registry
from certnet.web import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
    path("", registry.framework_tree, name="tree"),
    path("organisations/", registry.organisation_list, name="organisation-list"),
    path("organisations/<slug:slug>/", registry.organisation_detail, name="organisation-detail"),
    path("lookup/", registry.lookup_page, name="lookup"),
    path("", include("certnet.incidents.urls")),
    path("", include("certnet.intel.urls")),
    path("", include("certnet.feeds.urls")),
    path("notifications/", include("certnet.notifications.urls")),
]
