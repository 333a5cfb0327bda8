"""Variants: an image in the sizes and formats a web page needs, rendered once, streamed like the original."""
