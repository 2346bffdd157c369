"""Kuzet core: configuration, database, signal store, event codes, alarm engine, audit, event bus.

Nothing in here imports the receivers, dispatch, compliance or web packages; only `console.cli`
(the composition root) wires them together.
"""
