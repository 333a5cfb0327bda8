"""What gunicorn loads: `gunicorn goodeye.wsgi:app` (importable from an installed package)."""

from goodeye import create_app

app = create_app()
