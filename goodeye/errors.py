"""Typed domain errors.

Every error a caller can see is a `GoodeyeError` carrying its HTTP status and a
slug per API family: the `/v1` family uses lower-case slugs
(`image_not_found`), the `/cdn` and `/api/v1` families upper-case codes
(`IMAGE_NOT_FOUND`). Views raise; one handler per family renders the envelope.
"""


class GoodeyeError(Exception):
    """Base of every error that is rendered to a client."""

    status = 500
    slug = "internal_error"
    default_message = "Internal error."

    def __init__(self, message=None, *, code=None, headers=None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        # The /cdn and /api/v1 families name some errors more precisely
        # (SCOPE_NOT_FOUND vs image_not_found); `code` carries that name.
        self.code = code or self.slug.upper()
        self.headers = dict(headers or {})


class InvalidRequest(GoodeyeError):
    status = 400
    slug = "invalid_request"
    default_message = "The request is not valid."

    def __init__(self, message=None, *, code="VALIDATION_ERROR", headers=None):
        super().__init__(message, code=code, headers=headers)


class AuthRequired(GoodeyeError):
    status = 401
    slug = "auth_required"
    default_message = "Credentials are required for this resource."

    def __init__(self, message=None, *, code="UNAUTHORIZED", headers=None):
        super().__init__(message, code=code, headers=headers)


class InvalidApiKey(GoodeyeError):
    status = 401
    slug = "invalid_api_key"
    default_message = "The API key is malformed, unknown or revoked."


class Forbidden(GoodeyeError):
    status = 403
    slug = "forbidden"
    default_message = "This action is not allowed."


class QuotaExceeded(GoodeyeError):
    status = 403
    slug = "quota_exceeded"
    default_message = "This project has reached its quota of images or storage."


class InvalidSignature(Forbidden):
    slug = "invalid_signature"
    default_message = "The signature does not match this URL."


class SignatureExpired(Forbidden):
    slug = "signature_expired"
    default_message = "This signed URL has expired."


class NotFound(GoodeyeError):
    status = 404
    slug = "not_found"
    default_message = "Not found."


class ImageNotFound(NotFound):
    slug = "image_not_found"
    default_message = "Image not found."


class GeneratorNotFound(NotFound):
    slug = "generator_not_found"
    default_message = "Image generator not found."


class MethodNotAllowed(GoodeyeError):
    status = 405
    slug = "method_not_allowed"
    default_message = "Method not allowed."


class Conflict(GoodeyeError):
    status = 409
    slug = "conflict"
    default_message = "Conflict."


class PreconditionFailed(GoodeyeError):
    status = 412
    slug = "precondition_failed"
    default_message = "The image does not meet the If-Match or If-Unmodified-Since condition."


class RangeNotSatisfiable(GoodeyeError):
    status = 416
    slug = "range_not_satisfiable"
    default_message = "The requested range lies outside the image."


class ImageTooLarge(GoodeyeError):
    status = 413
    slug = "image_too_large"
    default_message = "The image is larger than the upload limit."


class UnsupportedImageType(GoodeyeError):
    status = 415
    slug = "unsupported_image_type"
    default_message = "Only PNG, JPEG, WebP and GIF images are accepted."


class InvalidImage(GoodeyeError):
    status = 422
    slug = "invalid_image"
    default_message = "The bytes claim a supported format but do not decode."


class ImageTooLargeDimensions(GoodeyeError):
    status = 422
    slug = "image_too_large_dimensions"
    default_message = "The image has too many pixels or frames."


class ImageTooComplex(GoodeyeError):
    status = 422
    slug = "image_too_complex"
    default_message = "Decoding the image would cost more than the decode budget allows."


class ImageBlocked(GoodeyeError):
    status = 451
    slug = "image_blocked"
    default_message = "The image matches a picture this server's operator has blocked; it was not stored."


class RateLimited(GoodeyeError):
    status = 429
    slug = "rate_limited"
    default_message = "Too many requests; retry later."


class GenerationFailed(GoodeyeError):
    status = 502
    slug = "generation_failed"
    default_message = "The image generator failed."


class ServiceUnavailable(GoodeyeError):
    status = 503
    slug = "service_unavailable"
    default_message = "A backing service is unavailable; retry shortly."
