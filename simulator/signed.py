"""Signed meter values as a calibration-law meter sends them: OCMF records.

An OCMF record is `OCMF|<payload JSON>|<signature JSON>` (S.A.F.E. e.V., Open Charge
Metering Format). The simulated meter has no key: the signature is a hash of the payload,
shaped like an ECDSA one. It proves nothing; it lets the backend's handling of signed
values (kept verbatim, shown on the session) be seen without hardware.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime

SIGNING_METHOD = "ECDSA-secp256r1-SHA256"
ENCODING_METHOD = "OCMF"
# A made-up public key (65 bytes, uncompressed point form), base64 as 2.x sends it.
PUBLIC_KEY = base64.b64encode(b"\x04" + hashlib.sha512(b"virta-simulator").digest()[:64]).decode()


def ocmf_record(*, cbid: str, wh: int, at: datetime, context: str, transaction: object) -> str:
    """One OCMF record of the energy register reading `wh` at `at`."""
    reading_type = {"Transaction.Begin": "B", "Transaction.End": "E"}.get(context, "T")
    payload = {
        "FV": "1.0",
        "GI": "VIRTA SIMULATED METER",
        "GS": cbid,
        "PG": f"T{transaction}",
        "RD": [
            {
                "TM": at.strftime("%Y-%m-%dT%H:%M:%S,") + f"{at.microsecond // 1000:03d}+0000 S",
                "TX": reading_type,
                "RV": round(wh / 1000, 3),
                "RI": "1-b:1.8.0",
                "RU": "kWh",
                "ST": "G",
            }
        ],
    }
    body = json.dumps(payload, separators=(",", ":"))
    signature = {"SA": SIGNING_METHOD, "SD": hashlib.sha256(body.encode()).hexdigest() * 2}
    return f"OCMF|{body}|{json.dumps(signature, separators=(',', ':'))}"


def signed_meter_value_201(record: str) -> dict:
    """The 2.0.1 signedMeterValue (snake_case, as the `ocpp` library takes it)."""
    return {
        "signed_meter_data": base64.b64encode(record.encode()).decode(),
        "signing_method": SIGNING_METHOD,
        "encoding_method": ENCODING_METHOD,
        "public_key": PUBLIC_KEY,
    }
