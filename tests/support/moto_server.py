"""`moto_server` with two additions, run by the moto venv's python (tests/support/s3.py starts
it).

1. SigV2 dispatch. moto 5 reads the service name out of the Authorization header as if every
   request were SigV4 (`Credential=<key>/<date>/<region>/<service>/aws4_request`). A SigV2
   header is `AWS <key>:<base64 signature>`: when the signature happens to hold exactly four "/"
   (about 6 in 10,000 requests), moto takes a fragment of it for the service, finds no backend
   and answers 500. The registry signs with v2 when `storage-s3-skip-v4-auth` is true (the
   charm's default), so without this fix a push fails now and then for moto's sake, not the
   registry's. A v2 header is S3's here: moto's own fallback for a header it cannot parse.

2. Signatures checked (MOTO_S3_USER="<access key>:<secret key>"). moto checks requests only
   once INITIAL_NO_AUTH_ACTION_COUNT requests went by (0: from the first one), and then only
   SigV4 ones, recomputed by botocore's own signer against the IAM user owning the access key.
   The user is made here before the server starts, with a policy allowing all of S3. A SigV2
   request is checked the same way: its signature recomputed with botocore's SigV2 signer
   (HmacV1Auth, which every boto client signs v2 with) from the request's own method, path,
   query and headers, and refused with S3's SignatureDoesNotMatch (403) when it differs, or
   InvalidAccessKeyId for a key no user owns.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse

from moto.moto_server import werkzeug_app

_infer = werkzeug_app.DomainDispatcherApplication.infer_service_region_host


def _infer_sigv2_is_s3(self, environ, path):
    if environ.get("HTTP_AUTHORIZATION", "").startswith("AWS "):
        return None  # moto then uses DEFAULT_SERVICE_REGION: ("s3", "us-east-1")
    return _infer(self, environ, path)


werkzeug_app.DomainDispatcherApplication.infer_service_region_host = _infer_sigv2_is_s3

ALL_OF_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


def add_s3_user(access_key: str, secret_key: str) -> None:
    """An IAM user owning ``access_key``/``secret_key``, allowed everything in S3."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    iam.create_user("us-east-1", "registry")
    iam.put_user_policy("registry", "all-of-s3", json.dumps(ALL_OF_S3))
    key = iam.create_access_key("registry")
    key.access_key_id, key.secret_access_key = access_key, secret_key


def _secret_of(account_id: str, access_key: str) -> str | None:
    from moto.iam.models import iam_backends

    for user in iam_backends[account_id]["aws"].users.values():
        for key in user.access_keys:
            if key.access_key_id == access_key:
                return key.secret_access_key
    return None


def sigv2_signature(secret_key: str, method: str, url: str, headers) -> str:
    """What botocore's SigV2 signer (HmacV1Auth) makes of this request: the string to sign
    from its method, Content-MD5, Content-Type, Date (the request's own), x-amz-* headers and
    resource (path and the sub-resources S3 signs)."""
    from botocore.auth import HmacV1Auth
    from botocore.awsrequest import HTTPHeaders
    from botocore.credentials import Credentials

    date = next((v for k, v in headers.items() if k.lower() == "date"), "")

    class AtRequestTime(HmacV1Auth):
        def _get_date(self):
            return date

    signed = HTTPHeaders()
    for name, value in headers.items():
        signed[name] = value
    signer = AtRequestTime(Credentials("unused", secret_key))
    split = urllib.parse.urlsplit(url)
    signature = signer.get_signature(method, split, signed)
    if os.environ.get("MOTO_SIGV2_DEBUG"):
        print(repr(signer.canonical_string(method, split, signed)), dict(headers), file=sys.stderr)
    return signature


def _check_sigv2(response) -> None:
    from moto.s3.exceptions import S3InvalidAccessKeyIdError, S3SignatureDoesNotMatchError

    access_key, _, signature = response.headers["Authorization"][4:].partition(":")
    secret = _secret_of(response.current_account, access_key.strip())
    if secret is None:
        raise S3InvalidAccessKeyIdError()
    path = response.raw_path
    # a sub-resource without a value is signed as `?uploads`, whichever way it was sent
    query = urllib.parse.urlsplit(response.uri).query
    query = "&".join(part.removesuffix("=") for part in query.split("&")) if query else ""
    url = f"http://moto{path}" + (f"?{query}" if query else "")
    expected = sigv2_signature(secret, response.method, url, dict(response.headers))
    if signature.strip() != expected:
        raise S3SignatureDoesNotMatchError()


def _check_signatures() -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate(self, iam_request_cls, resource="*"):
        counted = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
        if counted and self.headers.get("Authorization", "").startswith("AWS "):
            _check_sigv2(self)
            return
        original(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate


if __name__ == "__main__":
    from moto.server import main

    user = os.environ.get("MOTO_S3_USER", "")
    if user:
        add_s3_user(*user.split(":", 1))
        _check_signatures()
    sys.exit(main())
