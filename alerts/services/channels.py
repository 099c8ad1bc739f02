"""Who hears about a CPO's alerts: chosen members by e-mail, and webhooks."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q

from alerts.models import Delivery, EmailRecipient, Webhook
from cpo.models import Cpo, Membership


def alert_recipients_set(*, cpo: Cpo, user_ids: set[int]) -> None:
    """The CPO's e-mail recipients become exactly these members."""
    members = set(
        Membership.objects.filter(cpo=cpo, user_id__in=user_ids).values_list("user_id", flat=True)
    )
    with transaction.atomic():
        EmailRecipient.objects.filter(cpo=cpo).exclude(user_id__in=members).delete()
        existing = set(EmailRecipient.objects.filter(cpo=cpo).values_list("user_id", flat=True))
        EmailRecipient.objects.bulk_create(
            EmailRecipient(cpo=cpo, user_id=user_id) for user_id in members - existing
        )


def alert_recipient_ids(*, cpo: Cpo) -> set[int]:
    return set(EmailRecipient.objects.filter(cpo=cpo).values_list("user_id", flat=True))


def webhook_add(*, cpo: Cpo, url: str) -> Webhook:
    return Webhook.objects.create(cpo=cpo, url=url)


def webhook_delete(*, webhook: Webhook) -> None:
    """Remove the endpoint and what it still had to receive."""
    webhook.delete()


def webhooks_with_backlog(*, cpo: Cpo):
    """The CPO's webhooks, each with `backlog` (deliveries still waiting)."""
    return Webhook.objects.filter(cpo=cpo).annotate(
        backlog=Count("deliveries", filter=Q(deliveries__state=Delivery.State.PENDING))
    )
