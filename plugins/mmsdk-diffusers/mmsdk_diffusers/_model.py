"""The diffusers Generate model: one mmsdk request -> one diffusers pipeline call.

Mapping: ``steps`` -> ``num_inference_steps``, ``guidance`` -> ``guidance_scale``,
``n`` -> ``num_images_per_prompt``, ``seed`` -> ``torch.Generator(device).manual_seed(seed)``
(a random seed is drawn and reported in ``result.seed`` when none is given),
``image``/``strength`` -> img2img, ``image``/``mask`` -> inpainting,
``control_image``/``control_scale`` -> a ControlNet pipeline with
``controlnet_conditioning_scale``, ``reference_image``/``reference_scale`` ->
IP-Adapter with ``set_ip_adapter_scale``, ``options["lora"]``/``["lora_scale"]`` ->
``load_lora_weights`` (once) and ``set_adapters``. Parameters left ``None`` keep the
pipeline's own defaults, except what a distilled checkpoint needs (Flux
schnell: 4 steps, guidance 0; SD-Turbo: 1 step, guidance 0).

Cancel a running call with ``options={"cancel_event": event}`` and
``event.set()`` from another thread: the denoising loop stops at the next step
and :class:`GenerationCancelledError` is raised. ``request.timeout`` (from
``Policy(timeout=...)``) is checked at every step the same way.
"""

from __future__ import annotations

import inspect
import math
import secrets
import time
from collections.abc import Mapping
from typing import Any

from mmsdk.plugin import (
    CapabilityError,
    Generate,
    GenerateRequest,
    GenerateResult,
    InvalidInputError,
    ModelInfo,
    ProviderTimeoutError,
    Usage,
)

from ._errors import GenerationCancelledError, Stopped, mapped_errors
from ._source import parse_source

__all__ = ["DiffusersModel"]


_PARAMS: dict[type[Any], frozenset[str]] = {}


def _call_params(cls: type[Any]) -> frozenset[str]:
    """The keyword arguments a pipeline class's ``__call__`` takes (memoised)."""
    params = _PARAMS.get(cls)
    if params is None:
        params = _PARAMS[cls] = frozenset(inspect.signature(cls.__call__).parameters)
    return params


def _cancel_event(options: Mapping[str, Any]) -> Any:
    event = options.get("cancel_event")
    if event is not None and not callable(getattr(event, "is_set", None)):
        raise InvalidInputError("options['cancel_event'] must be a threading.Event (or any "
                                f"object with is_set()), got {type(event).__name__}.")
    return event


def _check_pairs(request: GenerateRequest) -> None:
    """Arguments that mean nothing without their partner are the caller's mistake."""
    if request.control_image is None and (request.control_type or request.control_scale
                                          is not None):
        raise InvalidInputError("control_type / control_scale need a control_image=.")
    if request.reference_image is None and request.reference_scale is not None:
        raise InvalidInputError("reference_scale needs a reference_image= (IP-Adapter).")


class DiffusersModel(Generate):
    """A diffusers checkpoint (hub repo id or local folder) behind :func:`mmsdk.generate`.

    Example:
        >>> import mmsdk
        >>> result = mmsdk.generate("a watercolor Japanese garden", provider="local:sdxl",
        ...                         negative_prompt="blurry", steps=30, guidance=7.5,
        ...                         scheduler="dpm++", seed=7)  # doctest: +SKIP
        >>> result.images[0].save("garden.png")  # doctest: +SKIP
    """

    def __init__(self, provider: str, info: ModelInfo, model: str) -> None:
        super().__init__(provider, info)
        self.model = model
        self.source = parse_source(model)
        self._family: str | None = None

    # -- loading -----------------------------------------------------------------
    def _loaded(self, options: Mapping[str, Any]) -> Any:
        from ._pipelines import CACHE, detect_family
        from ._runtime import load_settings

        with mapped_errors(self.provider, self.source, loading=True):
            family = self._family or detect_family(self.source)
            if family != "other":  # known for good; "other" may be a not-yet-fetched index
                self._family = family
            settings = load_settings(self.source.location, family, options)
            return CACHE.get(self.source, settings)

    def pipeline(self, options: Mapping[str, Any] | None = None) -> Any:
        """The loaded diffusers pipeline (as ``model_index.json`` names it), for direct use.

        Args:
            options: load options (``device``, ``dtype``, ``variant``, ``cpu_offload``,
                ``allow_pickle``); the same options give the same cached pipeline.
        """
        return self._loaded(options or {}).pipe

    def close(self) -> None:
        """Release this checkpoint's pipelines (all load settings)."""
        from ._pipelines import CACHE

        CACHE.evict(self.source.location)

    # -- generating --------------------------------------------------------------
    def generate(self, request: GenerateRequest) -> GenerateResult:
        started = time.monotonic()
        deadline = started + request.timeout if request.timeout else None
        options = request.options
        cancel = _cancel_event(options)
        _check_pairs(request)
        if request.scheduler:
            from ._schedulers import resolve_scheduler

            resolve_scheduler(request.scheduler)  # unknown names fail before any loading
        from ._lora import lora_spec

        lora = lora_spec(options)  # a bad lora path fails before any loading too
        while True:
            entry = self._loaded(options)
            wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            if not entry.lock.acquire(timeout=wait):
                raise ProviderTimeoutError(f"{self.provider} was busy with other calls past the "
                                           "timeout.", provider=self.provider)
            try:
                if entry.pipe is not None:  # else: evicted meanwhile, load again
                    return self._run(entry, request, cancel, deadline, lora)
            finally:
                entry.lock.release()

    def _run(self, entry: Any, request: GenerateRequest, cancel: Any,
             deadline: float | None, lora: Any) -> GenerateResult:
        """One pipeline call; ``entry.lock`` is held."""
        from ._control import controlnet_source, prepare_control_image
        from ._ip_adapter import apply_ip_adapter, ip_adapter_spec
        from ._lora import apply_lora

        options = request.options
        task = "inpaint" if request.mask is not None else \
            "img2img" if request.image is not None else "text2img"
        controlnet = control_key = None
        if request.control_image is not None:
            cn_source = controlnet_source(entry.family, request.control_type,
                                          options.get("controlnet"))
            with mapped_errors(self.provider, cn_source, loading=True):
                controlnet, control_key = entry.controlnet(cn_source), cn_source.location
        with mapped_errors(self.provider, self.source, loading=True):
            pipe = entry.task_pipe(task, controlnet, control_key)
        spec = ip_adapter_spec(entry.family, options.get("ip_adapter")) \
            if request.reference_image is not None else None
        with mapped_errors(self.provider, parse_source(spec[0]) if spec else self.source,
                           loading=True):
            apply_ip_adapter(entry, pipe, spec, request.reference_scale)
        with mapped_errors(self.provider, parse_source(lora.location) if lora else self.source,
                           loading=True):
            apply_lora(entry, pipe, lora)
        with mapped_errors(self.provider, self.source):
            control = prepare_control_image(request.control_image.image,
                                            request.control_type) \
                if request.control_image is not None else None
            kwargs, seed, notes = _call_kwargs(pipe, entry, request, control)
            if cancel is not None or deadline is not None:
                kwargs.update(_stopper(pipe, cancel, deadline, notes))
            if cancel is not None and cancel.is_set():
                raise GenerationCancelledError(f"{self.provider}: generation cancelled before "
                                               "it started.", provider=self.provider)
            scheduler = _scheduler(request.scheduler, entry, pipe)
            if scheduler is not pipe.scheduler:
                pipe.scheduler = scheduler
            pipe.set_progress_bar_config(disable=not request.progress)
            try:
                output = pipe(**kwargs)
            finally:
                if pipe.scheduler is not entry.scheduler:
                    pipe.scheduler = entry.scheduler
        images = list(output.images)
        flagged = getattr(output, "nsfw_content_detected", None) or []
        notes += [f"image {i} was blacked out by the checkpoint's safety checker"
                  for i, hit in enumerate(flagged) if hit]
        return GenerateResult(images=images, seed=seed, model=self.model,
                              usage=Usage(images=len(images)), warnings=notes)


def _scheduler(name: str | None, entry: Any, pipe: Any) -> Any:
    """The scheduler for this call: the checkpoint's own, or one per name, made once."""
    if not name:
        return entry.scheduler
    scheduler = entry.schedulers.get(name)
    if scheduler is None:
        from ._schedulers import make_scheduler

        scheduler = entry.schedulers[name] = make_scheduler(name, entry.scheduler,
                                                            type(pipe).__name__)
    return scheduler


def _stopper(pipe: Any, cancel: Any, deadline: float | None, notes: list[str]
             ) -> dict[str, Any]:
    """A step callback that stops the loop on cancel or timeout, where the pipeline has one."""
    if "callback_on_step_end" not in _call_params(type(pipe)):
        notes.append(f"{type(pipe).__name__} has no step callback: cancel_event and timeout "
                     "are only checked before it starts")
        return {}

    def on_step_end(_pipe: Any, step: int, _timestep: Any,
                    tensors: dict[str, Any]) -> dict[str, Any]:
        if cancel is not None and cancel.is_set():
            raise Stopped("cancelled", step + 1)
        if deadline is not None and time.monotonic() > deadline:
            raise Stopped("timeout", step + 1)
        return tensors

    return {"callback_on_step_end": on_step_end}


def _call_kwargs(pipe: Any, entry: Any, request: GenerateRequest, control: Any
                 ) -> tuple[dict[str, Any], int, list[str]]:
    """The pipeline's keyword arguments for *request*, the seed used, and notes."""
    import torch

    params = _call_params(type(pipe))
    name = type(pipe).__name__
    kwargs: dict[str, Any] = {"prompt": request.prompt}
    notes: list[str] = []

    def put(key: str, value: Any, feature: str) -> None:
        if key not in params:
            raise CapabilityError(f"{name} does not take {feature}.")
        kwargs[key] = value

    defaults = entry.defaults
    steps = request.steps if request.steps is not None else defaults.get("num_inference_steps")
    if request.steps is None and steps and request.strength:
        # a distilled default (1 step) times strength must still leave one step to run
        steps = max(steps, math.ceil(1 / request.strength))
    guidance = request.guidance if request.guidance is not None else \
        defaults.get("guidance_scale")
    if request.negative_prompt is not None:
        put("negative_prompt", request.negative_prompt, "negative_prompt")
        if "true_cfg_scale" in params:
            notes.append(f"{name} applies negative_prompt only with true CFG "
                         "(true_cfg_scale > 1), which mmsdk leaves off")
    if steps is not None:
        put("num_inference_steps", steps, "steps")
    if guidance is not None:
        put("guidance_scale", guidance, "guidance")
    init = request.image.image.convert("RGB") if request.image is not None else None
    mask = request.mask.image.convert("L") if request.mask is not None else None
    if "width" in params and "height" in params:
        # img2img / inpainting: the input's size unless told otherwise (some of these
        # pipelines would otherwise fall back to the checkpoint's default size)
        width = request.width or (init.width if init is not None else None)
        height = request.height or (init.height if init is not None else None)
        if width is not None:
            kwargs["width"] = width
        if height is not None:
            kwargs["height"] = height
    elif request.width is not None or request.height is not None:
        if init is not None:  # SD img2img takes the size of the input image
            size = (request.width or init.width, request.height or init.height)
            init = init.resize(size)
            mask = mask.resize(size) if mask is not None else None
        else:
            raise CapabilityError(f"{name} does not take width/height.")
    if request.n > 1:
        put("num_images_per_prompt", request.n, "n")
    if init is not None:
        put("image", init, "image")
    if request.strength is not None:
        put("strength", request.strength, "strength")
    if mask is not None:
        put("mask_image", mask, "mask")
    if control is not None:
        put("control_image" if "control_image" in params else "image", control, "control_image")
    if request.control_scale is not None:
        put("controlnet_conditioning_scale", request.control_scale, "control_scale")
    if request.reference_image is not None:
        put("ip_adapter_image", request.reference_image.image.convert("RGB"), "reference_image")
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
    kwargs["generator"] = torch.Generator(entry.generator_device).manual_seed(seed)
    kwargs["output_type"] = "pil"
    return kwargs, seed, notes

