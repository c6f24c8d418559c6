#!/usr/bin/env python3
"""A charm wheelhouse that installs on every declared base with no compiler and no network.

charm-build --binary-wheels leaves wheels built for the build host's Python and machine only.
layer:basic installs the charm's wheelhouse on the unit with
``pip install --no-index -f wheelhouse <name>==<version> ...`` (versions read from the file
names, so all files of one package must carry one version), on whatever Python the base has
(jammy 3.10, noble 3.12) and whatever machine the unit is (amd64, arm64, ppc64el, s390x).

``build WHEELHOUSE`` rewrites it in place:
  - pure-Python wheels (``*-none-any.whl``) stay as they are;
  - a package whose wheel is compiled gets the pure-Python wheel of the same version when PyPI
    has one (Cython, tomli), otherwise one compiled wheel per target (cpXY or abi3,
    manylinux up to jammy's glibc 2.35) downloaded from the index;
  - a package in --fallback (PyYAML, MarkupSafe: their setup falls back to pure Python when the
    C extension cannot be built) also gets its sdist, which covers the targets PyPI has no
    wheel for (PyYAML on ppc64le, MarkupSafe 2.1 on ppc64le and s390x);
  - any other compiled package without a wheel for some target is an error.
``check WHEELHOUSE`` (also run at the end of build) proves, per target and without network,
that every file's Requires-Dist / Requires-Python / sdist build requirements are met from the
wheelhouse alone, and prints what each target installs from a wheel or builds from an sdist.

Downloads go through pip (the machine's pip configuration applies) into --cache, so a rebuild
asks the index nothing it already answered.
"""

from __future__ import annotations

import argparse
import email.parser
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

try:  # the project venv has packaging; pip's vendored copy otherwise
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
except ImportError:  # pragma: no cover - depends on the interpreter
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.utils import canonicalize_name

try:
    import tomllib
except ImportError:  # pragma: no cover - Python < 3.11
    from pip._vendor import tomli as tomllib

# jammy has glibc 2.35 (noble 2.39): a manylinux_2_X wheel with X <= 35 runs on both
GLIBC = (2, 35)
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
# Python the bases ship (for Requires-Python / markers that look at the micro version)
BASE_PYTHON = {"3.10": "3.10.12", "3.11": "3.11.0", "3.12": "3.12.3"}
UBUNTU = {"3.10": "jammy", "3.12": "noble"}
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64el", "s390x": "s390x"}
NETWORK_TROUBLE = re.compile(
    r"NewConnectionError|ConnectTimeout|Max retries exceeded|Temporary failure in name "
    r"resolution|Network is unreachable|Connection refused|ProxyError|Retrying \(Retry"
)

WHEEL_RE = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(?:-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)"
    r"-(?P<plat>[^-]+)\.whl$"
)
SDIST_RE = re.compile(r"^(?P<name>.+)-(?P<version>\d[^-]*)\.(?:tar\.gz|zip)$")


def log(msg: str) -> None:
    print(f"build-wheelhouse: {msg}", flush=True)


class WheelhouseError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    python: str  # "3.10"
    arch: str  # "x86_64" (uname -m)

    @property
    def minor(self) -> int:
        return int(self.python.split(".")[1])

    @property
    def name(self) -> str:
        return f"cp3{self.minor}-{self.arch}"

    @property
    def label(self) -> str:
        base = UBUNTU.get(self.python, "this host")
        return f"{self.name} ({base} {DEBIAN_ARCH.get(self.arch, self.arch)})"

    def marker_env(self) -> dict[str, str]:
        full = BASE_PYTHON.get(self.python, self.python + ".0")
        return {
            "python_version": self.python,
            "python_full_version": full,
            "implementation_version": full,
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "platform_machine": self.arch,
            "platform_system": "Linux",
            "sys_platform": "linux",
            "os_name": "posix",
            "platform_release": "",
            "platform_version": "",
            "extra": "",
        }

    def platforms(self) -> list[str]:
        """--platform values for pip download: every manylinux tag jammy's glibc accepts."""
        tags = [f"manylinux_2_{m}_{self.arch}" for m in range(GLIBC[1], 16, -1)]
        tags.append(f"manylinux2014_{self.arch}")  # pip adds manylinux2010/1 for x86_64
        return tags


def parse_target(text: str) -> Target:
    match = re.fullmatch(r"(3\.\d+)[-:](\w+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"target {text!r} is not PYTHON-ARCH, e.g. 3.11-x86_64")
    return Target(match.group(1), match.group(2))


@dataclass
class Dist:
    path: Path
    name: str  # canonical (pyyaml)
    version: str
    kind: str  # "wheel" | "sdist"
    tags: frozenset = field(default_factory=frozenset)  # {(py, abi, plat)}

    @property
    def pure(self) -> bool:
        return self.kind == "wheel" and all(a == "none" and p == "any" for _, a, p in self.tags)

    @property
    def compiled(self) -> bool:
        return self.kind == "wheel" and not self.pure

    def supports(self, target: Target) -> bool:
        if self.kind != "wheel":
            return False
        return any(_tag_ok(py, abi, plat, target) for py, abi, plat in self.tags)

    def metadata(self) -> email.message.Message:
        if self.kind == "wheel":
            with zipfile.ZipFile(self.path) as zf:
                names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
                text = zf.read(names[0]).decode("utf-8")
        else:
            text = _sdist_member(self.path, "PKG-INFO") or ""
        return email.parser.Parser().parsestr(text, headersonly=True)

    def build_requires(self) -> list[str]:
        """An sdist's [build-system] requires (pip's legacy default without pyproject.toml)."""
        text = _sdist_member(self.path, "pyproject.toml")
        system = tomllib.loads(text).get("build-system", {}) if text else {}
        return list(system.get("requires", ["setuptools>=40.8.0", "wheel"]))


def _sdist_member(path: Path, member: str) -> str | None:
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if name.count("/") == 1 and name.endswith("/" + member):
                    return zf.read(name).decode("utf-8")
        return None
    with tarfile.open(path) as tf:
        for info in tf.getmembers():
            if info.name.count("/") == 1 and info.name.endswith("/" + member):
                handle = tf.extractfile(info)
                return handle.read().decode("utf-8") if handle else None
    return None


def _manylinux_ok(plat: str, arch: str) -> bool:
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(.+)", plat)
    if match:
        glibc = (int(match.group(1)), int(match.group(2)))
        return match.group(3) == arch and glibc <= GLIBC
    legacy, _, plat_arch = plat.partition("_")
    return legacy in LEGACY_MANYLINUX and plat_arch == arch


def _tag_ok(py: str, abi: str, plat: str, target: Target) -> bool:
    if plat != "any" and not _manylinux_ok(plat, target.arch):
        return False
    own = f"cp3{target.minor}"
    if abi == "none":
        match = re.fullmatch(r"py3(\d*)", py)
        older = bool(match and (not match.group(1) or int(match.group(1)) <= target.minor))
        return py == own or older
    if abi == "abi3":
        match = re.fullmatch(r"cp3(\d+)", py)
        return bool(match and int(match.group(1)) <= target.minor)
    return abi == own and py == own


def parse(path: Path) -> Dist | None:
    match = WHEEL_RE.match(path.name)
    if match:
        tags = frozenset(
            (py, abi, plat)
            for py in match["py"].split(".")
            for abi in match["abi"].split(".")
            for plat in match["plat"].split(".")
        )
        return Dist(path, canonicalize_name(match["name"]), match["version"], "wheel", tags)
    match = SDIST_RE.match(path.name)
    if match:
        return Dist(path, canonicalize_name(match["name"]), match["version"], "sdist")
    return None


def scan(directory: Path) -> dict[str, list[Dist]]:
    """Package name -> its files; anything that is not a wheel or an sdist is an error
    (layer:basic takes every file in wheelhouse/ for a package)."""
    found: dict[str, list[Dist]] = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith("."):
            continue
        dist = parse(path)
        if dist is None:
            raise WheelhouseError(f"{path.name}: neither a wheel nor an sdist")
        found.setdefault(dist.name, []).append(dist)
    return found


# --- checks ----------------------------------------------------------------------------------
def check(
    directory: Path, targets: list[Target], fallback: set[str], quiet: bool = False
) -> list[str]:
    """Problems (empty = fine): one version per package, and per target a file of every package
    that installs there, with every requirement met from the wheelhouse itself."""
    problems: list[str] = []
    packages = scan(directory)
    for name, files in packages.items():
        versions = sorted({d.version for d in files})
        if len(versions) > 1:
            problems.append(f"{name}: several versions {versions} (layer:basic pins one)")
    for target in targets:
        chosen: dict[str, Dist] = {}
        for name, files in packages.items():
            wheels = [d for d in files if d.supports(target)]
            sdists = [d for d in files if d.kind == "sdist"]
            if wheels:
                chosen[name] = wheels[0]
            elif sdists and name in fallback:
                chosen[name] = sdists[0]
            elif sdists:
                problems.append(
                    f"{target.name}: {name} only as an sdist, not known to build without a "
                    "compiler (add a wheel, or list it in --fallback once tested)"
                )
            else:
                problems.append(f"{target.name}: no file of {name} installs here")
        env = target.marker_env()
        for name, dist in sorted(chosen.items()):
            meta = dist.metadata()
            requires_python = meta.get("Requires-Python")
            if requires_python and not SpecifierSet(requires_python).contains(
                env["python_full_version"], prereleases=True
            ):
                problems.append(
                    f"{target.name}: {dist.path.name} requires Python {requires_python}"
                )
            needs = [("needs", r) for r in meta.get_all("Requires-Dist") or []]
            if dist.kind == "sdist":
                needs += [("builds with", r) for r in dist.build_requires()]
            for verb, text in needs:
                req = Requirement(text)
                if req.marker and not req.marker.evaluate(env):
                    continue
                dep = canonicalize_name(req.name)
                if dep not in chosen:
                    problems.append(f"{target.name}: {name} {verb} {text}: not in the wheelhouse")
                elif not req.specifier.contains(chosen[dep].version, prereleases=True):
                    problems.append(
                        f"{target.name}: {name} {verb} {text}, the wheelhouse has "
                        f"{chosen[dep].version}"
                    )
        if not quiet:
            built = sorted(n for n, d in chosen.items() if d.kind == "sdist")
            compiled = sorted(n for n, d in chosen.items() if d.compiled)
            line = f"{target.label}: {len(chosen)} packages, {len(chosen) - len(built)} wheels"
            if compiled:
                line += f" ({len(compiled)} compiled: {', '.join(compiled)})"
            if built:
                line += f", sdist built as pure Python: {', '.join(built)}"
            log(line)
    return problems


# --- downloads -------------------------------------------------------------------------------
class Fetcher:
    """pip download into a cache dir; answers 'no such file' from the cache too."""

    def __init__(self, cache: Path, pip: list[str]):
        self.cache = cache
        self.pip = pip
        cache.mkdir(parents=True, exist_ok=True)
        self.negative_path = cache / "negative.json"
        try:
            self.negative = set(json.loads(self.negative_path.read_text()))
        except (OSError, ValueError):
            self.negative = set()

    def _cached(self, name: str, version: str, want) -> Dist | None:
        for path in sorted(self.cache.iterdir()):
            dist = parse(path)
            if dist and dist.name == name and dist.version == version and want(dist):
                return dist
        return None

    def _forget(self, key: str) -> None:
        self.negative.add(key)
        self.negative_path.write_text(json.dumps(sorted(self.negative), indent=1))

    def _download(self, key: str, name: str, version: str, args: list[str], want) -> Dist | None:
        found = self._cached(name, version, want)
        if found or key in self.negative:
            return found
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            cmd = [*self.pip, "download", "--no-deps", "--disable-pip-version-check", "-q"]
            cmd += [*args, "-d", tmp, f"{name}=={version}"]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            output = proc.stdout + proc.stderr
            if proc.returncode != 0:
                if NETWORK_TROUBLE.search(output):
                    tail = "\n".join(output.strip().splitlines()[-5:])
                    raise WheelhouseError(
                        f"pip could not reach the package index for {name}=={version}:\n{tail}"
                    )
                self._forget(key)
                return None
            for path in Path(tmp).iterdir():
                shutil.move(str(path), self.cache / path.name)
        found = self._cached(name, version, want)
        if found is None:  # pip chose something else (should not happen with ==)
            self._forget(key)
        return found

    def pure(self, name: str, version: str, pythons: list[str]) -> Dist | None:
        args = ["--only-binary=:all:", "--implementation", "py", "--abi", "none"]
        args += ["--platform", "any", "--python-version", pythons[0]]
        dist = self._download(f"{name}=={version}:pure", name, version, args, lambda d: d.pure)
        if dist is None:
            return None
        requires_python = dist.metadata().get("Requires-Python")
        if requires_python:
            spec = SpecifierSet(requires_python)
            if not all(spec.contains(BASE_PYTHON.get(p, p + ".0")) for p in pythons):
                return None
        return dist

    def binary(self, name: str, version: str, target: Target) -> Dist | None:
        args = ["--only-binary=:all:", "--implementation", "cp"]
        args += ["--python-version", target.python]
        for plat in target.platforms():
            args += ["--platform", plat]
        key = f"{name}=={version}:{target.name}"
        return self._download(key, name, version, args, lambda d: d.supports(target))

    def sdist(self, name: str, version: str) -> Dist | None:
        key = f"{name}=={version}:sdist"
        return self._download(
            key, name, version, ["--no-binary=:all:"], lambda d: d.kind == "sdist"
        )


def build(
    directory: Path, targets: list[Target], fallback: set[str], fetcher: Fetcher
) -> list[str]:
    pythons = sorted({t.python for t in targets})
    packages = scan(directory)
    for name, files in packages.items():
        versions = sorted({d.version for d in files})
        if len(versions) > 1:
            raise WheelhouseError(f"{name}: several versions in the wheelhouse: {versions}")
    for name, files in sorted(packages.items()):
        if not any(d.compiled or d.kind == "sdist" for d in files):
            continue
        version = files[0].version
        for dist in files:
            if not dist.pure:
                dist.path.unlink()
        kinds = ", ".join(d.path.name for d in files if not d.pure)
        pure = fetcher.pure(name, version, pythons)
        if pure is not None:
            shutil.copy2(pure.path, directory / pure.path.name)
            log(f"{name} {version}: pure-Python wheel {pure.path.name} instead of {kinds}")
            continue
        missing = []
        for target in targets:
            wheel = fetcher.binary(name, version, target)
            if wheel is None:
                missing.append(target.name)
            elif not (directory / wheel.path.name).exists():
                shutil.copy2(wheel.path, directory / wheel.path.name)
        have = len(targets) - len(missing)
        if name in fallback:
            sdist = fetcher.sdist(name, version)
            if sdist is None:
                raise WheelhouseError(f"{name}=={version}: no sdist on the index")
            shutil.copy2(sdist.path, directory / sdist.path.name)
            log(
                f"{name} {version}: compiled wheels for {have}/{len(targets)} targets + "
                f"{sdist.path.name} (builds as pure Python"
                + (f" on {', '.join(missing)})" if missing else " anywhere else)")
            )
        elif missing:
            raise WheelhouseError(
                f"{name}=={version}: no pure-Python wheel, no wheel for {', '.join(missing)}, "
                "and no tested pure-Python sdist fallback (--fallback)"
            )
        else:
            log(f"{name} {version}: compiled wheels for all {len(targets)} targets")
    return check(directory, targets, fallback)


def size_report(directory: Path) -> str:
    files = [p for p in directory.iterdir() if not p.name.startswith(".")]
    total = sum(p.stat().st_size for p in files)
    return f"{len(files)} files, {total / 1e6:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "check"])
    parser.add_argument("wheelhouse", type=Path)
    parser.add_argument("--pythons", nargs="+", default=["3.10", "3.12"])
    parser.add_argument("--arches", nargs="+", default=list(DEBIAN_ARCH))
    parser.add_argument("--extra-target", type=parse_target, action="append", default=[])
    parser.add_argument("--fallback", nargs="*", default=["pyyaml", "markupsafe"])
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args(argv)

    targets = [Target(p, a) for p in args.pythons for a in args.arches]
    targets += [t for t in args.extra_target if t not in targets]
    fallback = {canonicalize_name(n) for n in args.fallback}
    try:
        if args.command == "build":
            cache = args.cache or Path(tempfile.mkdtemp(prefix="wheel-cache-"))
            fetcher = Fetcher(cache, [sys.executable, "-m", "pip"])
            problems = build(args.wheelhouse, targets, fallback, fetcher)
        else:
            problems = check(args.wheelhouse, targets, fallback)
    except WheelhouseError as exc:
        print(f"build-wheelhouse: ERROR: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"build-wheelhouse: ERROR: {problem}", file=sys.stderr)
    if problems:
        return 1
    log(f"{args.wheelhouse}: {size_report(args.wheelhouse)}; fine for {len(targets)} targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
