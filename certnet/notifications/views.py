"""The notifications page: the signed-in user's own list, newest first, with marking read."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from certnet.accounts.models import User
from certnet.notifications import selectors, services
from certnet.web.rendering import render_page_or_fragment

PAGE_SIZE = 50


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    unread_only = request.GET.get("unread", "") == "1"
    page = Paginator(selectors.notifications_for(user, unread_only=unread_only), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "items": list(page.object_list),
        "unread_only": unread_only,
        "unread": selectors.unread_count(user),
    }
    return render_page_or_fragment(request, "notifications/list.html", "notifications/_list.html", context)


@login_required
@require_POST
def notification_read(request: HttpRequest) -> HttpResponse:
    """Mark the posted ids read (`id` repeated), or every unread one when none is posted."""
    user = cast(User, request.user)
    posted = request.POST.getlist("id")
    services.mark_read(user, [int(value) for value in posted if value.isdigit()] if posted else None)
    target = reverse("notification-list")
    if request.POST.get("unread") == "1":
        target += "?unread=1"
    return redirect(target)
