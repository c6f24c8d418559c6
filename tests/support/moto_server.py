"""`moto_server` with one fix, run by the moto venv's python (tests/support/s3.py starts it).

moto 5 reads the service name out of the Authorization header as if every request were SigV4
(`Credential=<key>/<date>/<region>/<service>/aws4_request`). A SigV2 header is
`AWS <key>:<base64 signature>`: when the signature happens to hold exactly four "/" (about 6
in 10,000 requests), moto takes a fragment of it for the service, finds no backend and answers
500. The registry signs with v2 when `storage-s3-skip-v4-auth` is true (the charm's default), so
without this fix a push fails now and then for moto's sake, not the registry's. A v2 header is
S3's here: moto's own fallback for a header it cannot parse.
"""

import sys

from moto.moto_server import werkzeug_app

_infer = werkzeug_app.DomainDispatcherApplication.infer_service_region_host


def _infer_sigv2_is_s3(self, environ, path):
    if environ.get("HTTP_AUTHORIZATION", "").startswith("AWS "):
        return None  # moto then uses DEFAULT_SERVICE_REGION: ("s3", "us-east-1")
    return _infer(self, environ, path)


werkzeug_app.DomainDispatcherApplication.infer_service_region_host = _infer_sigv2_is_s3

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
