"""Organisations, projects and API keys (README "Operators: orgs, projects, keys")."""
