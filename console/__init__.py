"""Kuzet core: configuration, database, signal store, event codes, alarm engine, audit, event bus.

Nothing in here imports the receivers, dispatch, compliance, web or kuzet packages; only `kuzet`
(the composition root) wires them together.
"""
