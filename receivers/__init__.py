"""Kuzet receivers: one package per wire protocol (a sans-IO codec plus an asyncio transport)."""
