"""SIA DC-09 (IP event reporting) receiver.

`codec` turns bytes into frames and frames into replies (sans-IO); the SIA-DCS and ADM-CID data
blocks are decoded by `receivers.formats` (shared with the serial formats); `transmitter` is the
panel side used by simulators and tests, and `server` is the asyncio TCP/UDP transport.
"""
