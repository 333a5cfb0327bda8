"""The benchmark behind scripts/bench (tooling only: the app never imports it)."""
