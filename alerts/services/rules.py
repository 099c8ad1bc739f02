"""The alert rules of a CPO: stored rows, or the defaults for kinds it never changed."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.models import AlertRule, RuleKind
from cpo.models import Cpo


@dataclass(frozen=True)
class RuleDefault:
    enabled: bool
    delay_seconds: int


DEFAULTS: dict[str, RuleDefault] = {
    RuleKind.OFFLINE: RuleDefault(True, 300),
    RuleKind.FAULTED: RuleDefault(True, 60),
    RuleKind.REBOOT: RuleDefault(True, 0),
    RuleKind.BOOT_REJECTED: RuleDefault(True, 0),
    RuleKind.SECURITY_EVENT: RuleDefault(True, 0),
    RuleKind.FIRMWARE_FAILED: RuleDefault(True, 0),
    RuleKind.LOCAL_LIST: RuleDefault(True, 0),
    # Remote stops are usually deliberate: off until a CPO asks for it.
    RuleKind.BACKEND_STOP: RuleDefault(False, 0),
}


def _default_rule(cpo_id: int, kind: str) -> AlertRule:
    default = DEFAULTS[kind]
    return AlertRule(
        cpo_id=cpo_id, kind=kind, enabled=default.enabled, delay_seconds=default.delay_seconds
    )


def alert_rules_for(*, cpo: Cpo) -> list[AlertRule]:
    """Every kind's rule for the CPO, in the order of `RuleKind` (unsaved defaults included)."""
    stored = {rule.kind: rule for rule in AlertRule.objects.filter(cpo=cpo)}
    return [stored.get(kind) or _default_rule(cpo.pk, kind) for kind in RuleKind.values]


def alert_rules_all() -> dict[int, dict[str, AlertRule]]:
    """{cpo id: {kind: rule}} of every CPO, with defaults filled in (for the evaluator)."""
    rules: dict[int, dict[str, AlertRule]] = {
        cpo_id: {kind: _default_rule(cpo_id, kind) for kind in RuleKind.values}
        for cpo_id in Cpo.objects.values_list("pk", flat=True)
    }
    for rule in AlertRule.objects.all():
        rules.setdefault(rule.cpo_id, {})[rule.kind] = rule
    return rules


def alert_rule_update(
    *, cpo: Cpo, kind: str, enabled: bool, delay_seconds: int, error_codes: str = ""
) -> AlertRule:
    """Store the CPO's rule for `kind` (the evaluator applies it at its next pass)."""
    rule, _ = AlertRule.objects.update_or_create(
        cpo=cpo,
        kind=kind,
        defaults={
            "enabled": enabled,
            "delay_seconds": delay_seconds,
            "error_codes": error_codes.strip(),
        },
    )
    return rule
