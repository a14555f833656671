"""Test kits: stateful fakes of each service (respx, MockTransport or a real loopback server),
pytest fixtures (``scibind.testing.pytest_plugin``) and a launcher for the real dserver."""

__all__: list[str] = []
