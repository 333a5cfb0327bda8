"""Goodeye: a self-hostable image host."""

from flask import Flask

from goodeye import db, health, http, monitoring
from goodeye.config import check_serving, load_settings
from goodeye.cdn.views import bp as cdn_bp
from goodeye.console.views import bp as console_bp
from goodeye.context import Context
from goodeye.generation.views import bp as generation_bp
from goodeye.images.views import bp as images_bp
from goodeye.live.views import bp as live_bp
from goodeye.projects.views import bp as projects_bp
from goodeye.serving.views import bp as serving_bp
from goodeye.similar.views import bp as similar_bp


def create_app(settings=None):
    """Build the Flask app from the settings (default: the GOODEYE_* environment)."""
    settings = settings or load_settings()
    check_serving(settings)
    app = Flask(__name__)
    app.request_class = http.GoodeyeRequest
    # Werkzeug answers `//` in a path with an HTML 308 to an absolute URL built from the
    # client's Host header; every route here is exact, so such a path is a JSON 404.
    app.url_map.merge_slashes = False
    app.url_map.converters["path"] = http.AnyPathConverter
    # Multipart overhead and base64 (4/3) on top of the image limit; the
    # image's own size is checked exactly by the validator.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes * 4 // 3 + 1024 * 1024
    app.json.sort_keys = False
    # The app's own database: the models reach it through goodeye.db's proxy while the app is current.
    context = app.extensions["goodeye"] = Context.from_settings(settings)
    # First, so a request the database refuses still gets its id, log line and count.
    monitoring.init_app(app)
    db.init_app(app, context.database)
    http.register_error_handlers(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(similar_bp)
    app.register_blueprint(images_bp)
    app.register_blueprint(serving_bp)
    app.register_blueprint(generation_bp)
    app.register_blueprint(cdn_bp)
    app.register_blueprint(live_bp)
    app.register_blueprint(projects_bp)
    app.register_blueprint(console_bp)
    return app
