"""Compliance with Order No. 959 / 353, chapter 3: document registry, checks, evidence bundles."""
