"""What OCPP itself says, with no database and no server in it: the bottom layer.

CBID rules and subprotocols (`identity`), times (`times`), OCPP-J error codes (`errors`),
charger passwords (`passwords`), sampled-value defaults and units (`meter`) and the one table of
commands the backend sends to chargers (`commands`). Everything else may import this
package; it imports nothing of ours (see ARCHITECTURE.md and tests/test_architecture.py).
"""
