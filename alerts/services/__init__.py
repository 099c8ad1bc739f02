"""Alert rules, the evaluator, notifications and their delivery. One module per concern:

- `rules`: the rules of a CPO (defaults for the ones it never changed), changing them.
- `evaluate`: conditions and events → alerts (pending, open, resolved); the grouping of
  changes into notifications; the hook other code calls for conditions it detects.
- `dispatch`: a notification's text and JSON, and its deliveries (the outbox rows).
- `delivery`: sending the outbox: e-mail and signed webhooks, retried with back-off.
- `alert_list`: selectors (the Alerts page, "needs attention") and acknowledging.
- `uptime`: uptime per connector from the status history, planned maintenance.
- `worker`: the `manage.py alerts` loop, one active worker elected by an advisory lock.
"""
