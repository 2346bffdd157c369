"""Dispatch's schema: numbered SQL files applied after the core's (see console.db.migrate)."""
