"""The composition root: the `kuzet` command, the runtime that starts a node's parts (receivers,
alarm engine, supervision, web), the demo and the benchmarks. The only package that wires the
others together; nothing imports it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kuzet")  # the installed distribution's (pyproject.toml) version
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
