"""The event formats panels and receivers carry, shared by every transport that carries them.

`dc03` parses SIA DC-03 data blocks ("SIA format"), `cid` Contact ID (SIA DC-05) events, and
`signals` is the one mapping from either to the stored `console.signal.Signal`: DC-09
(``SIA-DCS`` / ``ADM-CID``) and the serial automation outputs (Sur-Gard MLR2, Ademco 685) all
go through it, so a zone, a user or an area lands in the same column whichever way it came.
"""
