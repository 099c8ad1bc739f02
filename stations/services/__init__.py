"""Business rules for stations, shared by the panel, Django admin, the CLI and OCPP handlers.

Services are synchronous and own their `transaction.atomic()`; async code calls them
through `channels.db.database_sync_to_async`. One module per concern:

- `registration`: chargers connecting, booting, disconnecting (the pool).
"""
