"""The serving path: the lightweight check in front of every image byte (docs/architecture.md)."""
