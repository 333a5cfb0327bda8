"""The serving path: the lightweight check in front of every image byte (DESIGN §1, §8)."""
