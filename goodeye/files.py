"""Who may read what Goodeye keeps on disk: the app's user, and its group (give nginx's user
that group when it runs as another user); never the world."""

import os

# The data dir holds the SQLite file (the token secret, key hashes) and the bytes of private images.
DATA_DIR_MODE = 0o750
# The SQLite file and its -wal/-shm companions: the owner alone.
SECRET_FILE_MODE = 0o600
# Blobs, which nginx (in the app's group) streams.
SERVED_FILE_MODE = 0o640


def make_private_dir(path):
    """Create a directory and its missing parents with DATA_DIR_MODE; an existing one keeps its mode."""
    os.makedirs(path, mode=DATA_DIR_MODE, exist_ok=True)
