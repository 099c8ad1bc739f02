"""The Alerts page (history, acknowledging) and the CPO's alert settings (rules, e-mail
recipients, webhooks). Alerts of another CPO are a 404; viewers read but may not
acknowledge (403); only the CPO's admins change its settings (403)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from alerts.forms import RuleForm, WebhookForm
from alerts.models import Alert, RuleKind, Webhook
from alerts.services.alert_list import RAISED, alert_acknowledge, alerts_for_user
from alerts.services.channels import (
    alert_recipient_ids,
    alert_recipients_set,
    webhook_add,
    webhook_delete,
    webhooks_with_backlog,
)
from alerts.services.rules import alert_rule_update, alert_rules_for
from cpo.models import WRITE_ROLES, Cpo, Membership

ALERTS_PER_PAGE = 50
STATE_FILTERS = {"active": RAISED, "open": (Alert.State.OPEN,), "resolved": (Alert.State.RESOLVED,)}


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    """Alerts of the user's CPOs: the live ones by default, the whole history on request."""
    state = request.GET.get("state", "active")
    alerts = alerts_for_user(user=request.user)
    if state in STATE_FILTERS:
        alerts = alerts.filter(state__in=STATE_FILTERS[state])
    else:
        state = "all"
    kind = request.GET.get("kind", "")
    if kind in RuleKind.values:
        alerts = alerts.filter(kind=kind)
    page = Paginator(alerts.order_by("-opened_at", "-id"), ALERTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    writable = set(
        Cpo.objects.for_user(request.user, roles=WRITE_ROLES).values_list("pk", flat=True)
    )
    managed = Cpo.objects.for_user(request.user, roles=[Membership.Role.ADMIN])
    context = {
        "page": page,
        "alerts": page.object_list,
        "state": state,
        "kind": kind,
        "kinds": RuleKind.choices,
        "writable": writable,
        "manages": managed.exists(),
        "page_query": f"state={state}&kind={kind}",
    }
    return render(request, "alerts/alert_list.html", context)


@login_required
@require_POST
def alert_acknowledge_view(request: HttpRequest, alert_pk: int) -> HttpResponse:
    alert = get_object_or_404(alerts_for_user(user=request.user), pk=alert_pk)
    alert_acknowledge(alert=alert, user=request.user)
    messages.success(request, _("Alert acknowledged."))
    return redirect("alerts:list")


def _managed_cpo(request: HttpRequest, cpo_pk: int) -> Cpo:
    """404 unless the user belongs to the CPO, 403 unless they are its admin."""
    cpo = get_object_or_404(Cpo.objects.for_user(request.user), pk=cpo_pk)
    if (
        not Cpo.objects.for_user(request.user, roles=[Membership.Role.ADMIN])
        .filter(pk=cpo.pk)
        .exists()
    ):
        raise PermissionDenied(_("Only the CPO's admins change its alert settings."))
    return cpo


@login_required
@require_GET
def settings_index(request: HttpRequest) -> HttpResponse:
    cpos = list(Cpo.objects.for_user(request.user, roles=[Membership.Role.ADMIN]))
    if not cpos:
        raise PermissionDenied(_("Only CPO admins change alert settings."))
    if len(cpos) == 1:
        return redirect("alerts:settings", cpo_pk=cpos[0].pk)
    return render(request, "alerts/settings_index.html", {"cpos": cpos})


def _settings_page(request, cpo: Cpo, *, rule_forms=None, webhook_form=None, status=200):
    if rule_forms is None:
        rule_forms = [
            RuleForm(
                kind=rule.kind,
                initial={
                    "enabled": rule.enabled,
                    "delay_seconds": rule.delay_seconds,
                    "error_codes": rule.error_codes,
                },
            )
            for rule in alert_rules_for(cpo=cpo)
        ]
    chosen = alert_recipient_ids(cpo=cpo)
    members = [
        {"user": m.user, "chosen": m.user_id in chosen}
        for m in cpo.memberships.select_related("user").order_by("user__username")
    ]
    context = {
        "cpo": cpo,
        "rule_forms": rule_forms,
        "members": members,
        "webhooks": webhooks_with_backlog(cpo=cpo),
        "webhook_form": webhook_form or WebhookForm(),
    }
    return render(request, "alerts/settings.html", context, status=status)


@login_required
@require_GET
def alert_settings(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    """Rules, e-mail recipients and webhooks of one CPO."""
    return _settings_page(request, _managed_cpo(request, cpo_pk))


@login_required
@require_POST
def rules_save(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    cpo = _managed_cpo(request, cpo_pk)
    forms = [RuleForm(request.POST, kind=kind) for kind in RuleKind.values]
    if not all(form.is_valid() for form in forms):
        return _settings_page(request, cpo, rule_forms=forms, status=400)
    for form in forms:
        alert_rule_update(
            cpo=cpo,
            kind=form.kind,
            enabled=form.cleaned_data["enabled"],
            delay_seconds=form.cleaned_data["delay_seconds"],
            error_codes=form.cleaned_data.get("error_codes", ""),
        )
    messages.success(request, _("Alert rules saved."))
    return redirect("alerts:settings", cpo_pk=cpo.pk)


@login_required
@require_POST
def recipients_save(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    cpo = _managed_cpo(request, cpo_pk)
    ids = {int(value) for value in request.POST.getlist("user") if value.isdigit()}
    alert_recipients_set(cpo=cpo, user_ids=ids)
    messages.success(request, _("E-mail recipients saved."))
    return redirect("alerts:settings", cpo_pk=cpo.pk)


@login_required
@require_POST
def webhook_add_view(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    cpo = _managed_cpo(request, cpo_pk)
    form = WebhookForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, cpo, webhook_form=form, status=400)
    webhook_add(cpo=cpo, url=form.cleaned_data["url"])
    messages.success(request, _("Webhook added."))
    return redirect("alerts:settings", cpo_pk=cpo.pk)


@login_required
@require_POST
def webhook_delete_view(request: HttpRequest, cpo_pk: int, webhook_pk: int) -> HttpResponse:
    cpo = _managed_cpo(request, cpo_pk)
    webhook_delete(webhook=get_object_or_404(Webhook, cpo=cpo, pk=webhook_pk))
    messages.success(request, _("Webhook removed."))
    return redirect("alerts:settings", cpo_pk=cpo.pk)
