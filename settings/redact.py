"""Credentials out of everything the project writes: rows, logs, summaries, messages.

A URI may carry secrets two ways: a user and password before its host
(``s3://KEY:SECRET@bucket/x``, ``https://user:pass@host/x``) and signing parameters in its query
(``?X-Amz-Signature=...``, an Azure SAS ``sig=``, ``token=``...). :func:`redact` replaces both with
``REDACTED`` wherever they appear in a text, so that the name still says which file it was.
Inputs keep their full names in memory only, for fetching; object-store credentials belong in
the environment or a profile (``AWS_ACCESS_KEY_ID``..., ``~/.aws/credentials``).
"""

from __future__ import annotations

import re

REDACTED = "REDACTED"

#: ``scheme://user:password@`` or ``scheme://token@`` before a host.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@?#'\"]+@")
#: Query parameters that sign or authorise a request (AWS, GCS, Azure SAS, generic tokens).
_SECRET_PARAMS = re.compile(
    r"(?P<name>[?&](?:x-amz-(?:signature|credential|security-token)|x-goog-(?:signature|credential)"
    r"|awsaccesskeyid|signature|sig|token|access_token|api_key|apikey|key|password|secret))="
    r"[^&\s#'\"]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with every credential a URI in it carries replaced by ``REDACTED``."""
    if "@" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(rf"\g<scheme>{REDACTED}@", text)
    return _SECRET_PARAMS.sub(rf"\g<name>={REDACTED}", text)
