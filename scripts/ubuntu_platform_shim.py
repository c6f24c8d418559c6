"""TEST/DEV-ENVIRONMENT-ONLY shim: make charmhelpers importable on non-Ubuntu hosts.

charmhelpers (charmhelpers/osplatform.py) refuses to import unless the host looks like Ubuntu:
it reads /etc/os-release NAME (or platform.linux_distribution() when that exists) and raises
RuntimeError("This module is not supported on Debian GNU/Linux") otherwise. Our dev/CI hosts may
be Debian, so scripts/make-venv.sh copies this file into the *test venv's* site-packages as
_charm_dev_ubuntu_shim.py plus a .pth file that imports it, but ONLY when /etc/os-release NAME is
not Ubuntu. It gives `platform` a linux_distribution() (removed in Python 3.8) that answers
Ubuntu 22.04, which charmhelpers prefers over /etc/os-release.

Production never uses this: the charm runs on Ubuntu, ships nothing from scripts/, and its own
venv (layer:basic) never gets this .pth file.
"""

import platform

if not hasattr(platform, "linux_distribution"):

    def _linux_distribution(*_args, **_kwargs):
        return ("Ubuntu", "22.04", "jammy")

    platform.linux_distribution = _linux_distribution
