from __future__ import annotations

from django.urls import URLPattern, path

from certnet.notifications import views

urlpatterns: list[URLPattern] = [
    path("", views.notification_list, name="notification-list"),
    path("read/", views.notification_read, name="notification-read"),
]
