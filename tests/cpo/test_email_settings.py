"""Invitation e-mail: the console by default, SMTP from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
EMAIL_VARIABLES = {
    "EMAIL_URL",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "DEFAULT_FROM_EMAIL",
}


def mail_settings(**env: str) -> dict:
    """The e-mail settings a server started with `env` would use."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in ('EMAIL_BACKEND', 'EMAIL_HOST', "
        "'EMAIL_PORT', 'EMAIL_HOST_USER', 'EMAIL_HOST_PASSWORD', 'EMAIL_USE_TLS', "
        "'EMAIL_USE_SSL', 'DEFAULT_FROM_EMAIL')}))"
    )
    environment = {k: v for k, v in os.environ.items() if k not in EMAIL_VARIABLES}
    environment.update(DJANGO_SETTINGS_MODULE="virta.settings", SECRET_KEY="t", **env)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_configuration_mail_goes_to_the_console():
    assert mail_settings()["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_an_email_url_configures_smtp():
    found = mail_settings(
        EMAIL_URL="smtp+tls://mailer:s3cret@smtp.example.com:587",
        DEFAULT_FROM_EMAIL="Virta <panel@example.com>",
    )

    assert found == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_HOST_PASSWORD": "s3cret",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "DEFAULT_FROM_EMAIL": "Virta <panel@example.com>",
    }


def test_discrete_variables_configure_smtp():
    found = mail_settings(
        EMAIL_HOST="smtp.example.com",
        EMAIL_HOST_USER="mailer",
        EMAIL_HOST_PASSWORD="s3cret",
        EMAIL_USE_SSL="1",
    )

    assert found["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (found["EMAIL_HOST"], found["EMAIL_PORT"]) == ("smtp.example.com", 465)
    assert (found["EMAIL_USE_SSL"], found["EMAIL_USE_TLS"]) == (True, False)
    assert (found["EMAIL_HOST_USER"], found["EMAIL_HOST_PASSWORD"]) == ("mailer", "s3cret")


def test_a_bad_email_url_stops_the_start():
    with pytest.raises(AssertionError, match="Invalid email schema"):
        mail_settings(EMAIL_URL="carrier-pigeon://coop")
