"""`goodeye mcp`: the Goodeye tools over MCP (stdio, official SDK), as a client of a Goodeye server.

Each tool is one call of the `/v1` API through goodeye.client. Results are
structured JSON (with an output schema); a refusal from the server comes back
as a tool error (`isError`) whose structured content is the server's own
`{"error": {"code", "message"}}`.
"""

import json
from importlib.metadata import version
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from goodeye.client import ClientError, GoodeyeClient

ImageId = Annotated[str, Field(description="The image's management id (`img_...`), as returned in `id` by upload_image, list_images or generate_image.")]
Visibility = Literal["private", "public"]
AspectRatio = Literal["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9"]


class Record(BaseModel):
    # The server may add fields; a model should see them rather than have the call fail.
    model_config = ConfigDict(extra="allow")


class ImageRecord(Record):
    id: str = Field(description="Management id: pass it as image_id to get_image, update_image, delete_image.")
    url: str = Field(description="Stable serving URL of the bytes; it never changes while the image exists.")
    token: str = Field(description="The unguessable serving token inside the url.")
    visibility: Visibility = Field(description="public: anyone with the url; private: owner credentials only.")
    source: Literal["upload", "generated"]
    content_type: str
    size_bytes: int
    width: int
    height: int
    sha256: str
    filename: str = Field(description="Project-unique file name (the project CDN serves public images by it).")
    alias: str | None = Field(description="Optional stable @name of the image within its project.")
    expires_at: str | None = Field(description="ISO-8601 UTC expiry; null when the image never expires.")
    created_at: str
    updated_at: str


class ImagePage(Record):
    data: list[ImageRecord] = Field(description="Images, newest first.")
    next_cursor: str | None = Field(description="Pass as cursor to list_images for the next page; null on the last page.")


class SimilarImage(ImageRecord):
    distance: int = Field(description="Bits in which its perceptual hash differs from the query's: 0 is the same picture, up to 8 a close copy.")


class SimilarImages(Record):
    data: list[SimilarImage] = Field(description="Your images within max_distance, nearest first.")


class Deleted(Record):
    id: str
    deleted: bool = Field(description="Always true: the url stopped resolving and the bytes are reclaimed.")


class SignedUrl(Record):
    url: str = Field(description="The serving url with `expires` and `signature`; works for anyone until expires_at.")
    expires_at: str = Field(description="ISO-8601 UTC time the url stops working.")


class HostedImage(Record):
    id: str = Field(description="Management id of the hosted output (use with update_image, e.g. to make it public).")
    url: str = Field(description="Durable hosted URL of the output.")
    visibility: Visibility
    expires_at: str | None


class Generation(Record):
    generation_id: str
    generator: str
    prompt: str
    enhanced_prompt: str | None = Field(description="The prompt actually sent to the generator, when it was enhanced.")
    image_urls: list[str | None] = Field(description="The generator's own output URLs (for builtin, the hosted URLs).")
    hosted_images: list[HostedImage | None] = Field(
        description="Aligned 1:1 with image_urls; null where an output could not be hosted (then use image_urls[i])."
    )


class Usage(Record):
    images: int = Field(description="Images the project keeps (expired ones until they are purged).")
    storage_bytes: int = Field(description="Sum of the images' size_bytes.")
    max_images: int | None = Field(description="The project's quota of images; null: unlimited.")
    max_storage_bytes: int | None = Field(description="The project's quota of bytes; null: unlimited.")


def _result(payload):
    """A successful tool result: the JSON as structured content and as text."""
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(payload))], structured_content=payload)


def _error(exc):
    """A tool error carrying the server's slug and message."""
    payload = {"error": {"code": exc.slug, "message": exc.message}}
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(payload))], structured_content=payload, is_error=True)


def build_server(settings):
    """The MCPServer with every Goodeye tool, calling the server described by `settings` (ClientSettings)."""
    server = MCPServer(
        "goodeye",
        version=version("goodeye"),
        instructions=(
            "Goodeye hosts images at stable URLs and generates images. Upload with upload_image (base64 bytes) "
            "or create with generate_image; both return records whose `id` is the management id used by "
            "get_image, update_image and delete_image, and whose `url` is the shareable link. Images are "
            "private unless made public: to hand a user a link anyone can open, pass visibility='public' "
            "(to upload_image or generate_image) or make it public with update_image."
        ),
    )

    def call(fn, *args, **kwargs):
        try:
            return _result(fn(GoodeyeClient(settings), *args, **kwargs))
        except ClientError as exc:
            return _error(exc)

    @server.tool(annotations=ToolAnnotations(title="Upload an image", open_world_hint=False))
    def upload_image(
        data: Annotated[
            str,
            Field(
                description=(
                    "The image file's bytes, base64-encoded (standard alphabet, with padding, no line breaks). "
                    f"PNG, JPEG, WebP or GIF, at most {settings.max_upload_bytes} bytes before encoding; "
                    "the type is read from the bytes."
                ),
                min_length=1,
            ),
        ],
        visibility: Annotated[Visibility, Field(description="public: anyone with the url may fetch it; private: only this project's key.")] = "private",
        ttl_seconds: Annotated[int | None, Field(ge=1, description="Seconds from now until the image expires; omit to keep it until deleted.")] = None,
        filename: Annotated[str | None, Field(min_length=1, max_length=255, description="A file name for the image (made unique in the project); optional.")] = None,
        alias: Annotated[str | None, Field(min_length=1, max_length=65, description="A stable @name for the image in its project (taken from any image that holds it); optional.")] = None,
        strip_metadata: Annotated[bool, Field(description="true stores the image without EXIF/GPS, XMP and comments; pixels, colour profile and orientation are kept.")] = False,
    ) -> Annotated[CallToolResult, ImageRecord]:
        """Use when you have an image file's bytes (from the user or made by code) and need a durable URL for it.

        Returns the image record (`id`, `url`, `visibility`, `expires_at`, ...).
        """
        return call(
            GoodeyeClient.upload_base64, data, visibility=visibility, ttl_seconds=ttl_seconds, filename=filename,
            alias=alias, strip_metadata=strip_metadata,
        )

    @server.tool(annotations=ToolAnnotations(title="List hosted images", read_only_hint=True, open_world_hint=False))
    def list_images(
        source: Annotated[Literal["upload", "generated"] | None, Field(description="Only uploaded or only generated images; omit for both.")] = None,
        visibility: Annotated[Visibility | None, Field(description="Only private or only public images; omit for both.")] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="Images per page, 1-100.")] = 20,
        cursor: Annotated[str | None, Field(min_length=1, description="The next_cursor of the previous page; omit for the first page.")] = None,
    ) -> Annotated[CallToolResult, ImagePage]:
        """Use to find images already hosted (e.g. before uploading again, or to get an id): newest first, one page at a time."""
        return call(GoodeyeClient.list_images, source=source, visibility=visibility, limit=limit, cursor=cursor)

    @server.tool(annotations=ToolAnnotations(title="Get an image record", read_only_hint=True, open_world_hint=False))
    def get_image(image_id: ImageId) -> Annotated[CallToolResult, ImageRecord]:
        """Use to check one image you know the id of: its url, visibility, size, expiry and timestamps."""
        return call(GoodeyeClient.get_image, image_id)

    @server.tool(annotations=ToolAnnotations(title="Change visibility, expiry, alias or filename", idempotent_hint=True, open_world_hint=False))
    def update_image(
        image_id: ImageId,
        visibility: Annotated[Visibility | None, Field(description="public to share the url with anyone, private to restrict it; omit to keep.")] = None,
        ttl_seconds: Annotated[int | None, Field(ge=1, description="Expire this many seconds from now; omit to keep the current expiry. Not with permanent.")] = None,
        permanent: Annotated[bool, Field(description="true removes any expiry (the image stays until deleted). Not with ttl_seconds.")] = False,
        alias: Annotated[str | None, Field(min_length=1, max_length=65, description="Give the image this @name (moved from any image that holds it); omit to keep.")] = None,
        remove_alias: Annotated[bool, Field(description="true drops the image's alias. Not with alias.")] = False,
        filename: Annotated[str | None, Field(min_length=1, max_length=255, description="Rename the image (a name another image holds gets a short suffix); omit to keep.")] = None,
    ) -> Annotated[CallToolResult, ImageRecord]:
        """Use to share an image (visibility='public'), restrict it, change when it expires, or name it.

        Only what you pass changes, and the url stays the same.
        """
        changes = {
            key: value
            for key, value in {"visibility": visibility, "ttl_seconds": ttl_seconds, "alias": alias, "filename": filename}.items()
            if value is not None
        }
        if permanent:
            changes["permanent"] = True
        if remove_alias:
            if alias is not None:
                return _error(ClientError("invalid_request", "alias and remove_alias cannot be used together."))
            changes["alias"] = None
        return call(GoodeyeClient.update_image, image_id, changes)

    @server.tool(annotations=ToolAnnotations(title="Delete an image", destructive_hint=True, idempotent_hint=True, open_world_hint=False))
    def delete_image(image_id: ImageId) -> Annotated[CallToolResult, Deleted]:
        """Use only when the user wants an image gone for good: its url stops resolving at once and it cannot be recovered."""

        def delete(client, image_id):
            client.delete_image(image_id)
            return {"id": image_id, "deleted": True}

        return call(delete, image_id)

    @server.tool(annotations=ToolAnnotations(title="Replace an image's bytes", destructive_hint=True, open_world_hint=False))
    def replace_image(
        image_id: ImageId,
        data: Annotated[
            str,
            Field(
                description=(
                    "The new image file's bytes, base64-encoded (standard alphabet, with padding). PNG, JPEG, WebP "
                    f"or GIF, at most {settings.max_upload_bytes} bytes before encoding."
                ),
                min_length=1,
            ),
        ],
        strip_metadata: Annotated[bool, Field(description="true stores the new image without EXIF/GPS, XMP and comments.")] = False,
    ) -> Annotated[CallToolResult, ImageRecord]:
        """Put new bytes behind an image's url: the id, url, visibility, expiry and name stay; every page that embeds the url shows the new image. The old bytes are gone for good."""
        return call(GoodeyeClient.replace_base64, image_id, data, strip_metadata=strip_metadata)

    @server.tool(annotations=ToolAnnotations(title="Sign an image URL", open_world_hint=False))
    def sign_image_url(
        image_id: ImageId,
        expires_in: Annotated[int, Field(ge=1, le=604800, description="Seconds until the signed url stops working (at most 7 days).")] = 3600,
        w: Annotated[int | None, Field(ge=1, description="Variant width in pixels; omit for the original.")] = None,
        h: Annotated[int | None, Field(ge=1, description="Variant height in pixels; omit for the original.")] = None,
        fit: Annotated[Literal["scale-down", "cover"] | None, Field(description="How a variant fits w×h; omit for the default.")] = None,
        fm: Annotated[Literal["auto", "webp", "avif", "jpeg", "png"] | None, Field(description="Variant format; omit for the original's.")] = None,
    ) -> Annotated[CallToolResult, SignedUrl]:
        """A signed url that shows the image (even a private one) to anyone holding it, e.g. in an <img> tag, until it expires."""
        variant = {key: value for key, value in {"w": w, "h": h, "fit": fit, "fm": fm}.items() if value is not None}
        return call(GoodeyeClient.sign_url, image_id, expires_in=expires_in, variant=variant)

    @server.tool(annotations=ToolAnnotations(title="Find similar images", read_only_hint=True, open_world_hint=False))
    def find_similar_images(
        image_id: Annotated[str | None, Field(description="Find images like this one of yours (`img_...`); or pass data instead.")] = None,
        data: Annotated[
            str | None,
            Field(min_length=1, description="Or: an image's bytes, base64-encoded, to look for (it is not stored)."),
        ] = None,
        max_distance: Annotated[int, Field(ge=0, le=16, description="Most perceptual-hash bits a match may differ by: 0 same picture, 8 close copies (resized, re-encoded), 16 loosely alike.")] = 8,
        limit: Annotated[int, Field(ge=1, le=100, description="Most matches to return, 1-100.")] = 20,
    ) -> Annotated[CallToolResult, SimilarImages]:
        """Find this project's images that look like a given image (resized, re-encoded or retouched copies included), nearest first; answers "do I already have this picture?"."""
        if (image_id is None) == (data is None):
            return _error(ClientError("invalid_request", "Pass exactly one of image_id and data."))
        if image_id is not None:
            return call(GoodeyeClient.similar_images, image_id, max_distance=max_distance, limit=limit)
        return call(GoodeyeClient.similar_to_base64, data, max_distance=max_distance, limit=limit)

    @server.tool(annotations=ToolAnnotations(title="Generate images", open_world_hint=True))
    def generate_image(
        prompt: Annotated[str, Field(min_length=1, description="What to draw.")],
        generator: Annotated[str, Field(min_length=1, description="Generator id: `builtin` (always available, procedural, not AI) or another the server offers, e.g. `openai`.")] = "builtin",
        n: Annotated[int, Field(ge=1, description="How many images, up to the generator's max_n.")] = 1,
        aspect_ratio: Annotated[AspectRatio, Field(description="Width:height of the images.")] = "1:1",
        seed: Annotated[int | None, Field(description="Same prompt, seed and aspect ratio give the same builtin image; omit for a fresh one.")] = None,
        visibility: Annotated[Visibility | None, Field(description="Of the hosted images: public gives links anyone can open; default private (with a key).")] = None,
        ttl_seconds: Annotated[int | None, Field(ge=1, description="The hosted images expire this many seconds from now; omit to keep them until deleted.")] = None,
    ) -> Annotated[CallToolResult, Generation]:
        """Use when the user wants a new picture from a description; every output is hosted at once.

        The links are `hosted_images[i].url`: private unless visibility='public' (with a key), public
        with a short TTL for anonymous callers.
        """
        return call(
            GoodeyeClient.generate, generator, prompt, n=n, aspect_ratio=aspect_ratio, seed=seed, visibility=visibility,
            ttl_seconds=ttl_seconds,
        )

    @server.tool(annotations=ToolAnnotations(title="Usage and quotas", read_only_hint=True, open_world_hint=False))
    def get_usage() -> Annotated[CallToolResult, Usage]:
        """Use before uploading or generating many images, or after a quota_exceeded error: what the project keeps and its quotas."""
        return call(GoodeyeClient.usage)

    return server


def serve(settings):
    """Serve the tools over stdio until the client closes the stream."""
    build_server(settings).run("stdio")
