"""Panel login with brute-force protection (cpo.throttle); the rest is Django's auth views."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpResponse

from cpo.throttle import (
    last_attempt_message,
    locked_message,
    login_failure_record,
    login_locked_for,
    login_success_record,
)


class ThrottledLoginMixin(forms.Form):
    """Refuse a locked username or address before the password is checked; count failures.

    For AuthenticationForm and its subclasses (their `request` and `user_cache`).
    """

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        seconds = login_locked_for(username=username, request=self.request)
        if seconds:
            raise ValidationError(locked_message(seconds), code="locked")
        try:
            cleaned = super().clean()
        except ValidationError as refused:
            # Only wrong credentials count: a right password refused for another reason
            # (e.g. not staff, at the admin's login) is no guess.
            if self.user_cache is None and username:
                left = login_failure_record(username=username, request=self.request)
                if left == 1:
                    # Warn before the lock, not after: the person may stop and reset.
                    warning = ValidationError(last_attempt_message(), code="last_attempt")
                    raise ValidationError([*refused.error_list, warning])
            raise
        if self.user_cache is not None:
            login_success_record(username=username)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


class ThrottledLoginView(LoginView):
    """The panel's login page (URL name "login"), throttled. A refused login answers 429."""

    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, "locked"):
            response.status_code = 429
        return response
