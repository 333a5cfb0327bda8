"""A project's own settings, read and changed with its key (`/api/v1/project`)."""
