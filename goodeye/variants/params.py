"""The variant query parameters `w`, `h`, `fit`, `fm`: parsed, validated and put in one canonical form.

Serving URLs ignore every other query parameter (cache busters such as `?v=3`),
so a request carries a variant only when one of these four is present.
"""

from dataclasses import dataclass
from urllib.parse import unquote_plus

from werkzeug.http import parse_accept_header

from goodeye.errors import InvalidRequest

VARIANT_PARAMS = ("w", "h", "fit", "fm")
FITS = ("scale-down", "cover")
FORMATS = ("auto", "webp", "avif", "jpeg", "png")

# Output format name -> Content-Type; `gif` is reachable only as an original's own format.
CONTENT_TYPES = {
    "webp": "image/webp",
    "avif": "image/avif",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
}
FORMAT_OF_CONTENT_TYPE = {content_type: name for name, content_type in CONTENT_TYPES.items()}


@dataclass(frozen=True, slots=True)
class VariantSpec:
    """What a URL asks for; `fm` may still be `auto` or None (the original's format)."""

    w: int | None = None
    h: int | None = None
    fit: str = "scale-down"
    fm: str | None = None

    def query(self):
        """The canonical query string of these parameters (fixed order, defaults left out)."""
        parts = [f"w={self.w}" if self.w else "", f"h={self.h}" if self.h else ""]
        parts += [f"fit={self.fit}" if self.fit != "scale-down" else "", f"fm={self.fm}" if self.fm else ""]
        return "&".join(part for part in parts if part)

    @property
    def negotiated(self):
        """Whether the output format depends on the Accept header (the answer then varies on it)."""
        return self.fm == "auto"

    def resolve(self, original_content_type, accepted_formats=()):
        """The concrete RenderSpec for an original of this type, `accepted_formats` naming what Accept allows."""
        own = FORMAT_OF_CONTENT_TYPE[original_content_type]
        fm = self.fm
        if fm is None:
            fm = own
        elif fm == "auto":
            fm = next((name for name in ("avif", "webp") if name in accepted_formats), own)
        return RenderSpec(self.w, self.h, self.fit, fm, own)


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """A variant with its output format decided: what is rendered and stored."""

    w: int | None
    h: int | None
    fit: str
    fm: str
    source_format: str

    @property
    def key(self):
        """The stored key of this render beside the original's sha256 (always every field)."""
        return f"w={self.w or 0},h={self.h or 0},fit={self.fit},fm={self.fm}"

    @property
    def content_type(self):
        """The variant's Content-Type."""
        return CONTENT_TYPES[self.fm]

    @property
    def is_identity(self):
        """Whether the render would only re-encode the original in its own format at its own size."""
        return self.w is None and self.h is None and self.fm == self.source_format


def parse_variant_params(args, sizes):
    """The VariantSpec a query string asks for, None when it names no variant parameter; 400 on a bad value.

    `args` is a werkzeug MultiDict (or any mapping with `getlist`); `sizes` the allowed `w` and `h`
    (GOODEYE_VARIANT_SIZES).
    """
    present = {name: args.getlist(name) for name in VARIANT_PARAMS if name in args}
    if not present:
        return None
    for name, values in present.items():
        if len(values) != 1:
            raise InvalidRequest(f"The query parameter {name} may be given once.")
    value = {name: values[0] for name, values in present.items()}
    w = _size(value, "w", sizes)
    h = _size(value, "h", sizes)
    fit = value.get("fit", "scale-down")
    if fit not in FITS:
        raise InvalidRequest(f"fit must be one of {', '.join(FITS)}; got {fit!r}.")
    if fit == "cover" and not (w and h):
        raise InvalidRequest("fit=cover needs both w and h.")
    fm = value.get("fm")
    if fm is not None and fm not in FORMATS:
        raise InvalidRequest(f"fm must be one of {', '.join(FORMATS)}; got {fm!r}.")
    return VariantSpec(w, h, fit, fm)


def check_written_plainly(query_string):
    """400 when a variant parameter's name or value is percent-encoded (or has `+`) in the raw query string.

    nginx reads the raw query (to add `Vary: Accept` for `fm=auto`, to send reads
    that may render to the app's pool) while Flask decodes it: `?%66m=auto` would be
    an Accept-negotiated variant served without `Vary: Accept`. The values are plain
    ASCII words and digits, so nothing needs encoding.
    """
    for pair in query_string.decode("latin-1").split("&"):
        raw_name, _, raw_value = pair.partition("=")
        name = unquote_plus(raw_name)
        if name in VARIANT_PARAMS and (name != raw_name or unquote_plus(raw_value) != raw_value):
            raise InvalidRequest(f"The query parameter {name} and its value must be written without percent-encoding.")


def _size(value, name, sizes):
    if name not in value:
        return None
    raw = value[name]
    if raw.isascii() and raw.isdigit() and int(raw) in sizes and raw == str(int(raw)):
        return int(raw)
    raise InvalidRequest(f"{name} must be one of {', '.join(map(str, sizes))}; got {raw!r}.")


def accepted_formats(accept_header):
    """The variant formats an Accept header names explicitly with a non-zero quality (`*/*` names none)."""
    offered = {value.lower() for value, quality in parse_accept_header(accept_header or "") if quality > 0}
    return frozenset(name for name in ("avif", "webp") if f"image/{name}" in offered)
