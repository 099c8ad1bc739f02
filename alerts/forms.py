from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from alerts.models import RuleKind
from alerts.services.delivery import webhook_url_allowed

# One day: longer waits are not a debounce any more.
MAX_DELAY = 86_400


class RuleForm(forms.Form):
    enabled = forms.BooleanField(label=_("On"), required=False)
    delay_seconds = forms.IntegerField(label=_("Delay (seconds)"), min_value=0, max_value=MAX_DELAY)
    error_codes = forms.CharField(
        label=_("Only these codes"),
        required=False,
        max_length=500,
        help_text=_("Comma-separated error codes (faulted) or event types (security); empty: all."),
    )

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, prefix=kind, **kwargs)
        self.kind = kind
        self.label = RuleKind(kind).label
        if kind not in (RuleKind.FAULTED, RuleKind.SECURITY_EVENT):
            del self.fields["error_codes"]


class WebhookForm(forms.Form):
    url = forms.URLField(label=_("Endpoint URL"), max_length=500, assume_scheme="https")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if not webhook_url_allowed(url):
            raise forms.ValidationError(_("Use an https:// URL."))
        return url
