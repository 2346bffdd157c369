"""Modbus receiver: polls alarm panels and I/O modules over Modbus TCP or RTU.

`regmap` is pure (register map from the TOML table, state diff -> Contact ID signals); `poller` owns
the pymodbus clients, the poll loop and the hand-over to the signal store.
"""
