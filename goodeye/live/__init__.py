"""Live URLs, the project CDN and scopes (README "Live URLs and the CDN")."""
