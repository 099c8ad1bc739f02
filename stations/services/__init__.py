"""Business rules for stations, shared by the panel, Django admin, the CLI and OCPP handlers.

Services are synchronous and own their `transaction.atomic()`; async code calls them
through `ocpp_gateway.db.db_call` (the OCPP gateway: in parallel, on the database threads)
or `channels.db.database_sync_to_async`. Nothing may rely on running on one thread. One
module per concern:

- `registration`: chargers connecting, booting, disconnecting (the pool).
"""
