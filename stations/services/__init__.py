"""Business rules for stations, shared by the panel, Django admin, the CLI and OCPP handlers.

Services are synchronous and own their `transaction.atomic()`; async code calls them
through `ocpp_gateway.db.db_call` (the OCPP gateway: in parallel, on the database threads)
or `channels.db.database_sync_to_async`. Nothing may rely on running on one thread. One
module per concern:

- `access`: who may see a station (the scoped lookup) and who may change it (the role check).
- `sessions`: chargers connecting and disconnecting, the session a consumer holds, the pool.
- `boot`: BootNotification: what the charger told, Accepted or Pending.
- `refusals`: refused handshakes, their aggregated record, the brute-force lockout.
- `liveness`: `last_seen` of live stations, the sweep of stations whose process died.
- `passwords`: charger passwords: checked at the handshake, issued, rotated, confirmed.
- `claiming`: "Add new station", moving stations between CPOs, the assignment trail.
- `station_settings`: what staff edit after claiming (place, flags, connectors).
- `commands`: the Command record of a call to a charger, requested and finished.
- `command_outcomes`: handlers that run when a command's result arrives, per kind.
- `notify`: reaching the consumer that holds a charger's socket (the channel layer).
- `id_tags`: authorization, the one rule: whether a token may charge at a station.
- `id_tag_registry`: a CPO's ID tags: added, edited, blocked, deleted, CSV import/export.
- `local_list`: the local authorization list on each charger: what to send, its sync state.
- `charging`: connector status (and the 1.6 status history) and meter values, written in
  batches (the group commit).
- `meter_values`: one rule for what a sample means (defaults, units, the energy register).
- `transactions`: OCPP 1.6 StartTransaction / StopTransaction.
- `transaction_events`: OCPP 2.x TransactionEvent, merged whatever the arrival order.
- `charging_sessions`: what every session goes through: settling, superseding, closing one
  whose stop never came, flags, history.
- `transaction_timeline`: selectors: a session's timeline, energy so far, signed values.
- `session_list`: selectors: the Sessions page (filters, states, keyset pages) and its CSV.
- `home`: selectors: the home page's counts by station state, session totals, and the
  "needs attention" checks (`@attention_check` registers more).
- `device_model`: what a charger reports of its configuration (1.6 keys, 2.x variables).
- `station_log`: the OCPP message log of a station, as the log page reads it.
"""
