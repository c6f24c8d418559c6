"""The security suite uses the unit suite's config and real-dispatch charm fixtures."""

from tests.support.hostguard import host_dockerd_out_of_reach  # noqa: F401 - autouse
from tests.unit.conftest import config, defaults, registry_lock_in_tmp  # noqa: F401 - fixtures
from tests.unit.test_handlers import charm  # noqa: F401 - fixture
from tests.unit.test_workload import sandbox, world  # noqa: F401 - fixtures
