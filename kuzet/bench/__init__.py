"""Benchmarks that print figures (`kuzet bench ...`); never imported by production code."""
