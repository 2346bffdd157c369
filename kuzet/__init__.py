"""The composition root: the `kuzet` command, the runtime that starts a node's parts (receivers,
alarm engine, supervision, web), the demo and the benchmarks. The only package that wires the
others together; nothing imports it.
"""
