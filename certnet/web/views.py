"""Signing in and out. The registry's pages live in certnet.registry.views."""

from __future__ import annotations

from django.contrib.auth.views import LoginView, LogoutView


class SignInView(LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True


class SignOutView(LogoutView):
    """POST only (Django 5): the navigation bar's sign-out button is a form with a CSRF token."""
