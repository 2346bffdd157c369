"""Serial receivers: the automation outputs of hardware alarm receivers (Sur-Gard MLR2, Ademco 685).

`mlr2` and `ademco685` are sans-IO codecs (bytes in, events out); `transport` is the asyncio
receiver that owns the port, acknowledges after the commit, and survives the device going away.
"""
