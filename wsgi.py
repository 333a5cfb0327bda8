"""`gunicorn wsgi:app` from a checkout; the app itself is goodeye.wsgi's."""

from goodeye.wsgi import app  # noqa: F401
