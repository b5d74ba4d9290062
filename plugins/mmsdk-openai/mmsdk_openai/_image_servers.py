"""Image servers that speak OpenAI's Images API: SGLang Diffusion, vLLM-Omni.

Both serve ``POST /v1/images/generations`` in OpenAI's shape (``prompt``,
``size``, ``n``, ``response_format``) and read the diffusion settings as extra
top-level JSON fields; vLLM-Omni also serves ``POST /v1/images/edits``
(multipart, the image as ``image``). What mmsdk sends::

    prompt           -> prompt
    width, height    -> size "WxH" (both, or neither)
    n                -> n
    steps            -> num_inference_steps   (extra_body)
    guidance         -> guidance_scale        (extra_body)
    seed             -> seed                  (extra_body)
    negative_prompt  -> negative_prompt       (extra_body)
    image            -> /v1/images/edits with the image as a file part
                        response_format b64_json, unless options={"response_format": "url"}

An answer may carry each image as ``b64_json`` or as a ``url``. A URL is
fetched with mmsdk's own guarded fetcher (caps, timeouts, redirects checked
hop by hop); the host of the server that answered may be private or loopback,
since the user registered it, but no other private host is reachable. A URL
relative to the server is read against its base URL.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any
from urllib.parse import urljoin, urlsplit

from PIL import Image

from mmsdk.plugin import (
    GenerateRequest,
    GenerateResult,
    InvalidInputError,
    ProviderServerError,
    ProviderTimeoutError,
    Usage,
    safe_fetch,
)

from ._info import SERVER_IMAGE_OPTIONS

__all__ = ["EXTRA_FIELDS", "has_urls", "server_params", "server_result"]

# First-class GenerateRequest fields -> the JSON fields the servers read.
EXTRA_FIELDS = {"steps": "num_inference_steps", "guidance": "guidance_scale", "seed": "seed",
                "negative_prompt": "negative_prompt"}


def server_params(model: str, request: GenerateRequest, provider: str) -> dict[str, Any]:
    """Keyword arguments for ``images.generate`` / ``images.edit`` (extra fields in ``extra_body``).

    Raises:
        InvalidInputError: only one of width and height is set (the servers read
            ``size``), or an option these servers do not read.
    """
    if (request.width is None) != (request.height is None):
        raise InvalidInputError(f"{provider} takes a size as 'WxH': set both width and height "
                                "(or size='1024x768'), or neither for the server's default.",
                                provider=provider)
    params: dict[str, Any] = {"model": model, "prompt": request.prompt, "n": request.n,
                              "response_format": "b64_json"}
    if request.size:
        params["size"] = request.size
    for key, value in request.options.items():
        if key not in SERVER_IMAGE_OPTIONS:  # a chat option, on an endpoint that offers both
            raise InvalidInputError(f"{provider} does not know option {key!r} for generate; "
                                    f"accepted: {sorted(SERVER_IMAGE_OPTIONS)}.",
                                    provider=provider)
        if key == "response_format" and value not in ("b64_json", "url"):
            raise InvalidInputError(f"{provider}: response_format must be 'b64_json' or "
                                    f"'url', got {value!r}.", provider=provider)
        params[key] = value
    extra = {field: getattr(request, name) for name, field in EXTRA_FIELDS.items()
             if getattr(request, name) is not None}
    if extra:
        params["extra_body"] = extra
    return params


def has_urls(response: Any) -> bool:
    """Whether any image in *response* comes as a URL (fetching it blocks: not on a loop)."""
    return any(not getattr(item, "b64_json", None) and getattr(item, "url", None)
               for item in getattr(response, "data", None) or [])


def server_result(response: Any, provider: str, base_url: str,
                  request: GenerateRequest) -> GenerateResult:
    """Decode an ``ImagesResponse`` from the server at *base_url* into a result."""
    images: list[Image.Image] = []
    revised = None
    for index, item in enumerate(getattr(response, "data", None) or []):
        if getattr(item, "b64_json", None):
            data = _b64(item.b64_json, provider)
        elif getattr(item, "url", None):
            data = _fetch(str(item.url), base_url, provider, index, request)
        else:
            raise ProviderServerError(f"{provider} returned an image with neither b64_json nor "
                                      "url.", provider=provider)
        images.append(_decode(data, provider))
        revised = revised or getattr(item, "revised_prompt", None)
    if not images:
        raise ProviderServerError(f"{provider} returned no images.", provider=provider)
    usage = getattr(response, "usage", None)
    return GenerateResult(images=images, revised_prompt=revised, seed=request.seed, usage=Usage(
        input_tokens=getattr(usage, "input_tokens", None),
        output_tokens=getattr(usage, "output_tokens", None), images=len(images)))


def _b64(text: str, provider: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProviderServerError(f"{provider} sent b64_json that is not base64.",
                                  provider=provider) from None


def _decode(data: bytes, provider: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ProviderServerError(f"{provider} sent image data that could not be decoded: "
                                  f"{type(exc).__name__}: {exc}", provider=provider) from None
    return image


def _fetch(url: str, base_url: str, provider: str, index: int,
           request: GenerateRequest) -> bytes:
    """The bytes behind an image URL from the server at *base_url*.

    mmsdk's guarded fetcher (:func:`mmsdk.plugin.safe_fetch`), with this
    server's host allowed, so the caps and address rules are the core's.
    """
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.endswith(";base64"):
            raise ProviderServerError(f"{provider} sent a data: URL that is not base64.",
                                      provider=provider)
        return _b64(payload, provider)
    target = urljoin(base_url.rstrip("/") + "/", url)
    host = urlsplit(base_url).hostname
    allow = (host,) if host and urlsplit(target).hostname == host else ()
    try:
        return safe_fetch(target, label=f"{provider} image {index}", deadline=request.deadline,
                          allow_hosts=allow)
    except ProviderTimeoutError:
        raise
    except InvalidInputError as exc:  # the server's URL, not the caller's input
        raise ProviderServerError(f"{provider} answered with an image URL that could not be "
                                  f"fetched: {exc}", provider=provider) from None
