"""Live URLs, the project CDN and scopes (DESIGN §5)."""
