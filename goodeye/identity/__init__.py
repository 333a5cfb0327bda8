"""Organisations, projects and API keys (DESIGN §3)."""
