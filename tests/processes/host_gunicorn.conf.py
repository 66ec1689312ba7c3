"""gunicorn's settings for tests/processes/test_host_servers.py: build each worker's credential after the fork."""

from tests.processes.host_apps import post_fork

__all__ = ["post_fork"]
