"""More user-interface strings, one module per area (`dispatch`, `compliance`, `admin`, ...), each
with a `STRINGS` table shaped like `web.i18n.STRINGS`; `web.i18n` merges them all. A key defined
twice is an error at import, so two areas never silently overwrite each other's text."""
