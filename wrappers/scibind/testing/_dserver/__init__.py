"""Private: the server side of :mod:`scibind.testing.dserver_server`.

Everything in this package runs in the dserver *subprocess* (it imports mongomock, Flask and dservercore),
except :mod:`._protocol`, the small stdlib-only contract shared with the parent process.
"""

__all__: list[str] = []
