"""The security suite uses the unit suite's config and real-dispatch charm fixtures."""

from tests.unit.conftest import config, defaults, registry_lock_in_tmp  # noqa: F401 - fixtures
from tests.unit.test_handlers import charm  # noqa: F401 - fixture
from tests.unit.test_workload import sandbox, world  # noqa: F401 - fixtures
