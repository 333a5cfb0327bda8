"""Similar images and the operator blocklist, both answered from the pHash band index."""
