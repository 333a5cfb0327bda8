"""What gunicorn loads: `gunicorn wsgi:app`."""

from goodeye import create_app

app = create_app()
