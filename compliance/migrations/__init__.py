"""Compliance's schema: numbered SQL files applied after the core's and dispatch's (see console.db.migrate)."""
