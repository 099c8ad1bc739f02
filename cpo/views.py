"""Panel login with brute-force protection (cpo.throttle); the CPO's team (members,
invitations) and its audit log. The rest of login and passwords is Django's auth views.

Team pages: another CPO's team is a 404 (`Cpo.objects.for_user`); a member who is not
the CPO's admin gets 403 (cpo.team holds the rules).
"""

from __future__ import annotations

import csv
import json
import logging
import smtplib
from datetime import UTC
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, PasswordResetConfirmView
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cpo.audit import audit_log_for
from cpo.current import cpo_current_set
from cpo.forms import AuditFilterForm, CpoSettingsForm, InviteForm, RoleForm
from cpo.models import AuditEvent, Cpo, Membership
from cpo.services import CpoError, cpo_time_zone_set
from cpo.team import (
    cpos_managed_by,
    invitation_accept_record,
    invitation_pending,
    invitation_tokens,
    member_invitation_send,
    member_invite,
    member_remove,
    member_role_change,
    team_members,
    user_manages_cpo,
)
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


# ---- the CPO's team ---------------------------------------------------------------------

logger = logging.getLogger(__name__)

AUDIT_PER_PAGE = 50
# An export holds at most this many lines, the newest (narrow the dates for older ones).
AUDIT_EXPORT_MAX = 100_000


def _managed_cpo(request: HttpRequest, cpo_pk: int) -> Cpo:
    """The CPO of the URL: 404 unless the user belongs to it, 403 unless they manage it."""
    cpo = get_object_or_404(Cpo.objects.for_user(request.user), pk=cpo_pk)
    if not user_manages_cpo(user=request.user, cpo=cpo):
        raise PermissionDenied(_("Only the CPO's admins manage its members."))
    return cpo


def _member(cpo: Cpo, membership_pk: int) -> Membership:
    return get_object_or_404(cpo.memberships.select_related("user", "cpo"), pk=membership_pk)


def _site_url(request: HttpRequest) -> str:
    # The Host was checked against ALLOWED_HOSTS: a forged one cannot poison the link.
    return request.build_absolute_uri("/")


def _send_invitation(request: HttpRequest, membership: Membership) -> None:
    name = membership.user.get_username()
    try:
        member_invitation_send(membership=membership, by=request.user, site_url=_site_url(request))
    except (smtplib.SMTPException, OSError):
        logger.exception("Invitation e-mail to %s not sent", name)
        messages.warning(
            request,
            _(
                "%(user)s is a member, but the e-mail could not be sent. Check the mail "
                "settings, then press Resend invitation."
            )
            % {"user": name},
        )
    except CpoError as exc:
        messages.warning(request, exc.message)
    else:
        messages.success(
            request, _("Invitation sent to %(email)s.") % {"email": membership.user.email}
        )


@login_required
@require_GET
def team_index(request: HttpRequest) -> HttpResponse:
    """Team: the CPO whose members the user manages, or the list when there are several."""
    cpos = list(cpos_managed_by(request.user).order_by("name"))
    if not cpos:
        raise PermissionDenied(_("Only CPO admins manage members."))
    if len(cpos) == 1:
        return redirect("cpo:team", cpo_pk=cpos[0].pk)
    return render(request, "cpo/team_index.html", {"cpos": cpos})


def _team_page(request: HttpRequest, cpo: Cpo, invite_form: InviteForm, status: int = 200):
    members = [
        {
            "membership": m,
            "pending": invitation_pending(m),
            "is_me": m.user_id == request.user.pk,
            "role_form": RoleForm(initial={"role": m.role}, prefix=f"m{m.pk}"),
        }
        for m in team_members(cpo=cpo)
    ]
    context = {"cpo": cpo, "members": members, "invite_form": invite_form}
    return render(request, "cpo/team.html", context, status=status)


@login_required
@require_GET
def team(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    """The CPO's members, their roles and the invitation form."""
    return _team_page(request, _managed_cpo(request, cpo_pk), InviteForm())


@login_required
@require_POST
def member_invite_view(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    cpo = _managed_cpo(request, cpo_pk)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            membership = member_invite(
                cpo=cpo,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                by=request.user,
            )
        except CpoError as exc:
            form.add_error("email", exc.message)
        else:
            _send_invitation(request, membership)
            return redirect("cpo:team", cpo_pk=cpo.pk)
    return _team_page(request, cpo, form, status=400)


@login_required
@require_POST
def member_resend(request: HttpRequest, cpo_pk: int, membership_pk: int) -> HttpResponse:
    cpo = _managed_cpo(request, cpo_pk)
    membership = _member(cpo, membership_pk)
    if invitation_pending(membership):
        _send_invitation(request, membership)
    else:
        messages.info(
            request,
            _("%(user)s has set a password already.") % {"user": membership.user.get_username()},
        )
    return redirect("cpo:team", cpo_pk=cpo.pk)


@login_required
@require_POST
def member_role(request: HttpRequest, cpo_pk: int, membership_pk: int) -> HttpResponse:
    cpo = _managed_cpo(request, cpo_pk)
    membership = _member(cpo, membership_pk)
    form = RoleForm(request.POST, prefix=f"m{membership.pk}")
    if not form.is_valid():
        messages.error(request, _("Choose a role: admin, technician or viewer."))
        return redirect("cpo:team", cpo_pk=cpo.pk)
    try:
        changed = member_role_change(
            membership=membership, role=form.cleaned_data["role"], by=request.user
        )
    except CpoError as exc:
        messages.error(request, exc.message)
        return redirect("cpo:team", cpo_pk=cpo.pk)
    if changed:
        messages.success(
            request,
            _("%(user)s is now %(role)s.")
            % {"user": membership.user.get_username(), "role": membership.get_role_display()},
        )
    if not user_manages_cpo(user=request.user, cpo=cpo):
        return redirect("stations:list")  # They stepped down: the team page is not theirs.
    return redirect("cpo:team", cpo_pk=cpo.pk)


@login_required
@require_http_methods(["GET", "POST"])
def member_remove_view(request: HttpRequest, cpo_pk: int, membership_pk: int) -> HttpResponse:
    """GET: what removing the member means; POST: remove them."""
    cpo = _managed_cpo(request, cpo_pk)
    membership = _member(cpo, membership_pk)
    is_me = membership.user_id == request.user.pk
    if request.method == "GET":
        context = {
            "cpo": cpo,
            "membership": membership,
            "is_me": is_me,
            "pending": invitation_pending(membership),
        }
        return render(request, "cpo/member_remove.html", context)
    try:
        member_remove(membership=membership, by=request.user)
    except CpoError as exc:
        messages.error(request, exc.message)
        return redirect("cpo:team", cpo_pk=cpo.pk)
    messages.success(
        request,
        _("%(user)s was removed from %(cpo)s.")
        % {"user": membership.user.get_username(), "cpo": cpo.name},
    )
    if is_me and not user_manages_cpo(user=request.user, cpo=cpo):
        return redirect("stations:list")
    return redirect("cpo:team", cpo_pk=cpo.pk)


@login_required
@require_GET
def audit_log(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    """The CPO's audit log: who did what, when, from where; filters; CSV export."""
    cpo = _managed_cpo(request, cpo_pk)
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    events = audit_log_for(cpo=cpo, **{k: v for k, v in filters.items() if v})
    if request.GET.get("format") == "csv":
        return _audit_csv(cpo, events)
    page = Paginator(events, AUDIT_PER_PAGE).get_page(request.GET.get("page"))
    kept = {k: v for k, v in request.GET.items() if k in form.fields and v}
    return render(
        request,
        "cpo/audit_log.html",
        {
            "cpo": cpo,
            "form": form,
            "page": page,
            "events": page.object_list,
            "filtered": bool(kept),
            "page_query": urlencode(kept),
            "csv_query": urlencode({**kept, "format": "csv"}),
            "export_max": number_format(AUDIT_EXPORT_MAX, force_grouping=True),
        },
    )


def _csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: no formula from a CBID or a username."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _audit_csv(cpo: Cpo, events) -> HttpResponse:
    day = timezone.now().strftime("%Y-%m-%d")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{slugify(cpo.name) or cpo.pk}-{day}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(["time_utc", "user", "action", "action_label", "target", "address", "details"])
    labels = dict(AuditEvent.Action.choices)
    for event in events[:AUDIT_EXPORT_MAX].iterator(chunk_size=2000):
        stamp = event.time.astimezone(UTC).isoformat(timespec="seconds")
        writer.writerow(
            _csv_cell(value)
            for value in (
                stamp.replace("+00:00", "Z"),
                event.username,
                event.action,
                labels.get(event.action, event.action),
                event.target,
                event.remote_addr or "",
                json.dumps(event.details, ensure_ascii=False, sort_keys=True),
            )
        )
    return response


class InvitationAcceptView(PasswordResetConfirmView):
    """The invitation link: the invited user sets their password, once, and is logged in.

    A link that does not work (tampered, used, expired, withdrawn) is a 404 page that
    says so.
    """

    template_name = "cpo/invitation_accept.html"
    token_generator = invitation_tokens
    post_reset_login = True
    success_url = reverse_lazy("stations:list")

    def render_to_response(self, context, **kwargs):
        if not context.get("validlink"):
            kwargs["status"] = 404
        return super().render_to_response(context, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        invitation_accept_record(user=form.user)
        messages.success(self.request, _("Welcome! Your password is set and you are logged in."))
        return response


@login_required
@require_POST
def cpo_switch(request: HttpRequest) -> HttpResponse:
    """The header's CPO switcher: work in another of the user's CPOs (superusers: or all)."""
    raw = request.POST.get("cpo", "")
    cpo_pk = int(raw) if raw.isdigit() else None
    if cpo_pk is not None and not Cpo.objects.for_user(request.user).filter(pk=cpo_pk).exists():
        # Another CPO's id is no different from an id that names nothing.
        raise Http404("No such CPO.")
    cpo_current_set(request, cpo_pk)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("stations:home")
    return redirect(target)


@login_required
@require_http_methods(["GET", "POST"])
def cpo_settings(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    """CPO settings (the time zone): for the CPO's admins; 404 outside it, 403 for others."""
    cpo = _managed_cpo(request, cpo_pk)
    form = CpoSettingsForm(request.POST or None, initial={"time_zone": cpo.time_zone})
    if request.method == "POST" and form.is_valid():
        cpo_time_zone_set(cpo=cpo, time_zone=form.cleaned_data["time_zone"], by=request.user)
        current = getattr(request, "current_cpo", None)
        if current is not None and current.pk == cpo.pk:
            cpo_current_set(request, cpo.pk)
        messages.success(request, _("Settings of %(cpo)s saved.") % {"cpo": cpo.name})
        return redirect("cpo:settings", cpo_pk=cpo.pk)
    return render(
        request,
        "cpo/cpo_settings.html",
        {"cpo": cpo, "form": form},
        status=400 if form.is_bound and form.errors else 200,
    )
