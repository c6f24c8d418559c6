"""Where the registry keeps its data: the filesystem, S3 or Swift options -> typed values.

Every problem names the option and why, never the value: values may be secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from charms.layer.docker_registry.config.reader import (
    Reader,
)

MIB = 1024 * 1024
GIB = 1024 * MIB
S3_STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "NONE")
S3_OBJECT_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
S3_LOG_LEVELS = (
    "off",
    "debug",
    "debugwithsigning",
    "debugwithhttpbody",
    "debugwithrequestretries",
    "debugwithrequesterrors",
    "debugwitheventstreambody",
)


@dataclass(frozen=True)
class FilesystemStorage:
    kind: str = "filesystem"


@dataclass(frozen=True)
class S3Storage:
    region: str
    bucket: str
    accesskey: str = ""
    secretkey: str = field(default="", repr=False)
    regionendpoint: str = ""
    forcepathstyle: bool = False
    encrypt: bool = False
    keyid: str = ""
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    chunksize: int = 10485760
    multipartcopychunksize: int = 33554432
    multipartcopymaxconcurrency: int = 100
    multipartcopythresholdsize: int = 33554432
    rootdirectory: str = ""
    storageclass: str = "STANDARD"
    useragent: str = ""
    usedualstack: bool = False
    accelerate: bool = False
    objectacl: str = "private"
    loglevel: str = "off"
    kind: str = "s3"


@dataclass(frozen=True)
class SwiftStorage:
    authurl: str
    username: str
    password: str = field(repr=False)
    container: str
    region: str = ""
    tenant: str = ""
    domain: str = ""
    kind: str = "swift"


def parse_s3(r: Reader) -> S3Storage | None:
    region = r.single_line("storage-s3-region")
    bucket = r.single_line("storage-s3-bucket")
    accesskey = r.single_line("storage-s3-accesskey")
    secretkey = r.single_line("storage-s3-secretkey")
    endpoint = r.url("storage-s3-regionendpoint")
    keyid = r.single_line("storage-s3-keyid")
    rootdirectory = r.single_line("storage-s3-rootdirectory")
    useragent = r.single_line("storage-s3-useragent")
    tuning = _s3_tuning(r)  # read whatever else is wrong, so every problem shows at once
    skip_v4_auth = r.flag("storage-s3-skip-v4-auth", True)
    given = {
        "storage-s3-accesskey": accesskey,
        "storage-s3-secretkey": secretkey,
        "storage-s3-regionendpoint": endpoint,
        "storage-s3-keyid": keyid,
        "storage-s3-rootdirectory": rootdirectory,
    }
    if not _s3_complete(r, region, bucket, given):
        return None
    # v2 signing is refused by the registry for AWS itself; there v4 is the only choice.
    aws_endpoint = not endpoint or "amazonaws.com" in endpoint
    return S3Storage(
        region=region,
        bucket=bucket,
        accesskey=accesskey,
        secretkey=secretkey,
        regionendpoint=endpoint,
        keyid=keyid,
        v4auth=aws_endpoint or not skip_v4_auth,
        rootdirectory=rootdirectory,
        useragent=useragent,
        **tuning,
    )


# S3Storage field <- storage-s3-<option> flag, with the reference's defaults
_S3_FLAGS = (
    ("forcepathstyle", "forcepathstyle", False),
    ("encrypt", "encrypt", False),
    ("secure", "secure", True),
    ("skipverify", "skip-verify", False),
    ("usedualstack", "usedualstack", False),
    ("accelerate", "accelerate", False),
)


def _s3_tuning(r: Reader) -> dict[str, Any]:
    """The S3 options that only tune the driver: sizes, classes, log level and flags."""
    tuning: dict[str, Any] = {
        "chunksize": r.number("storage-s3-chunksize", 10485760, 5 * MIB, 5 * GIB),
        "multipartcopychunksize": r.number(
            "storage-s3-multipartcopychunksize", 33554432, 5 * MIB, 5 * GIB
        ),
        "multipartcopymaxconcurrency": r.number(
            "storage-s3-multipartcopymaxconcurrency", 100, 1, 10000
        ),
        "multipartcopythresholdsize": r.number(
            "storage-s3-multipartcopythresholdsize", 33554432, 0, 5 * GIB
        ),
        "storageclass": r.choice(
            "storage-s3-storageclass", "STANDARD", S3_STORAGE_CLASSES, str.upper
        ),
        "objectacl": r.choice("storage-s3-objectacl", "private", S3_OBJECT_ACLS),
        "loglevel": r.choice("storage-s3-loglevel", "off", S3_LOG_LEVELS),
    }
    for field_name, option, default in _S3_FLAGS:
        tuning[field_name] = r.flag(f"storage-s3-{option}", default)
    return tuning


def _s3_complete(r: Reader, region: str, bucket: str, given: dict[str, str]) -> bool:
    """S3 is configured (region and bucket) and its keys go together; else fail naming why.
    ``given``: the options that mean nothing without region and bucket."""
    if not region and not bucket:
        stray = [opt for opt, value in given.items() if value]
        if stray:
            r.fail(stray[0], "S3 storage also needs storage-s3-region and storage-s3-bucket")
        return False
    if not region or not bucket:
        r.fail(
            "storage-s3-bucket" if region else "storage-s3-region",
            "S3 storage needs both storage-s3-region and storage-s3-bucket",
        )
        return False
    accesskey, secretkey = given["storage-s3-accesskey"], given["storage-s3-secretkey"]
    if bool(accesskey) != bool(secretkey):
        r.fail(
            "storage-s3-secretkey" if accesskey else "storage-s3-accesskey",
            "storage-s3-accesskey and storage-s3-secretkey go together",
        )
        return False
    return True


def parse_swift(r: Reader) -> SwiftStorage | None:
    authurl = r.url("storage-swift-authurl")
    values = {
        name: r.single_line(f"storage-swift-{name}", default)
        for name, default in (
            ("username", ""),
            ("password", ""),
            ("container", "docker-registry"),
            ("region", ""),
            ("tenant", ""),
            ("domain", ""),
        )
    }
    if not authurl:
        return None
    for name in ("username", "password", "container"):
        if not values[name]:
            r.fail(f"storage-swift-{name}", "is required with storage-swift-authurl")
            return None
    return SwiftStorage(authurl=authurl, **values)
