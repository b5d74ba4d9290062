"""mmsdk provider for OpenAI and for OpenAI-compatible endpoints.

Providers:

- ``openai:MODEL``: GPT image models generate (``images.generate``: ``size``,
  ``n``, and ``options`` ``quality``, ``background``, ``output_format``,
  ``output_compression``, ``moderation``) and edit / inpaint
  (``images.edit`` with ``image=`` and ``mask=``; also ``input_fidelity``).
  Chat models understand through Chat Completions (images inline as base64
  data URLs, ``detail``, several images, streaming with usage, ``schema=`` as a
  strict ``json_schema`` response format, ``options={"seed": ...}`` and
  ``top_p``, ``stop``, ``reasoning_effort``, ``safety_identifier``) and
  classify (a JSON answer whose labels are an enum; scores from logprobs where
  the API returns them, else chosen labels 1.0 and the others 0.0;
  ``multi_label=True``; ``options={"logprobs": False}`` turns logprobs off).
  Reasoning models (o-series, ``gpt-5.x``, ``gpt-6``) take no ``temperature``
  (a ``CapabilityError`` before any request) and classify by the rule.
  Model lifecycles follow the shutdown dates in the installed SDK's docstrings
  (``LIFECYCLE``): from its shutdown date a name (``dall-e-3``,
  ``gpt-image-1``, ``gpt-5`` from 2026-12-11, ``gpt-4.1`` and ``gpt-4o`` from
  2027-01-14, ...) fails before any request, naming the successor; before it,
  calls carry a note in ``result.warnings``, and a ``ModelDeprecationWarning``
  within 30 days of it. The date is ``mmsdk.plugin.today()``.
- ``NAME:MODEL`` for every OpenAI-compatible server you register: chat
  servers (vLLM, SGLang, TGI, Ollama, LM Studio) understand and classify, so
  VLM traffic can move to a serving engine you already run; image servers
  (SGLang Diffusion, vLLM-Omni; ``capabilities=["generate"]``) generate
  through ``POST /v1/images/generations``: ``size`` (or ``width`` and
  ``height``) as ``size`` ``"WxH"``, ``n``, and ``steps``, ``guidance``,
  ``seed``, ``negative_prompt`` as the extra fields those servers read
  (``num_inference_steps``, ``guidance_scale``, ``seed``,
  ``negative_prompt``); ``image=`` edits through ``/v1/images/edits``
  (vLLM-Omni). Images come back as ``b64_json`` (asked for by default;
  ``options={"response_format": "url"}`` asks for URLs), or as URLs fetched by
  mmsdk's guarded fetcher, which may reach the answering server's own host
  even when it is private, and no other private host. Anything else
  (``mask``, ``strength``, ``control_image``, ``scheduler``, ...) is a
  ``CapabilityError`` before any request; ``result.seed`` echoes the seed.

Configuration (nothing here overrides what the SDK's own variables set):

- ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` (also ``OPENAI_ORG_ID``,
  ``OPENAI_PROJECT_ID``), or explicitly
  ``mmsdk_openai.configure(api_key=..., base_url=...)``. Without a key the
  ``openai`` provider is unavailable (fix: ``export OPENAI_API_KEY=...``) and
  no request is made. ``mmsdk.Router(..., credentials={"openai": KEY})`` sends
  that router's own key instead (the provider is then available without
  ``OPENAI_API_KEY``); an endpoint's name takes a router key the same way
  (``credentials={"vllm": TOKEN}``), sent as its bearer token.
- What bare ``"openai"`` means: ``gpt-image-2`` (generate) and ``gpt-5.5``
  (understand, classify), current models with no announced shutdown; override
  with ``MMSDK_OPENAI_GENERATE_MODEL``, ``MMSDK_OPENAI_UNDERSTAND_MODEL``,
  ``MMSDK_OPENAI_CLASSIFY_MODEL`` or
  ``configure(generate_model=..., understand_model=..., classify_model=...)``.
- OpenAI-compatible endpoints, in code::

      import mmsdk_openai
      mmsdk_openai.add_endpoint("vllm", ["http://gpu1:8000/v1", "http://gpu2:8000/v1"],
                                models=["Qwen/Qwen2.5-VL-7B-Instruct"])
      mmsdk.understand("Describe", images=["x.png"], provider="vllm")   # or "vllm:MODEL"

      mmsdk_openai.add_endpoint("sglang", "http://gpu3:30000/v1", capabilities=["generate"])
      mmsdk.generate("a lighthouse", provider="sglang", size="1024x768", steps=28, seed=7)

  or in the environment, read when plugins load (``;`` between endpoints;
  ``(CAPABILITY,...)`` after the name, default understand and classify;
  ``#MODEL`` optional)::

      MMSDK_OPENAI_COMPATIBLE="vllm#Qwen/Qwen2.5-VL-7B-Instruct=http://gpu1:8000/v1,http://gpu2:8000/v1;ollama=http://localhost:11434/v1;sglang(generate)=http://gpu3:30000/v1"

  Without ``models=`` (or ``#MODEL``), the server's ``GET /v1/models`` is
  asked once, when bare ``"NAME"`` or ``mmsdk providers`` first needs it
  (never for ``"NAME:MODEL"``), within 5 seconds; the first model listed is
  what bare ``"NAME"`` means. A server that does not answer leaves the
  endpoint unavailable, saying why, and is asked again 30 seconds later. Such
  endpoints are not on the ``provider=None`` route: name them.

  Calls go round-robin over an endpoint's base URLs; a connection failure
  (refused, reset, dropped) moves the call to the next URL. The bearer token
  is ``api_key=`` or ``<NAME>_API_KEY`` (e.g. ``VLLM_API_KEY``), never
  ``OPENAI_API_KEY``. An endpoint whose URLs are all loopback counts as local
  (kept by ``Policy(local_only=True)``); pass ``local=`` to say otherwise.

The SDK's retries are off (``max_retries=0``): mmsdk's router retries and
falls back. Each attempt's ``Policy(timeout=...)`` is the SDK call's timeout.
"""

from __future__ import annotations

from collections.abc import Callable

from mmsdk.plugin import ProviderSpec, hookimpl

from ._config import (
    DEFAULT_MODELS,
    LIFECYCLE,
    LIFECYCLE_CHECKED,
    RETIRED,
    OpenAISettings,
    configure,
)
from ._endpoints import Endpoint, add_endpoint, register_all, remove_endpoint

__all__ = ["DEFAULT_MODELS", "LIFECYCLE", "LIFECYCLE_CHECKED", "RETIRED", "Endpoint",
           "OpenAISettings", "add_endpoint", "configure", "register_providers", "remove_endpoint"]


@hookimpl
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register ``openai`` and the endpoints named in ``MMSDK_OPENAI_COMPATIBLE``."""
    register_all(register)
