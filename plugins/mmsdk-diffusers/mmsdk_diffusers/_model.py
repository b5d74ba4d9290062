"""The diffusers Generate model: one mmsdk request -> one diffusers pipeline call.

Mapping: ``steps`` -> ``num_inference_steps``, ``guidance`` -> ``guidance_scale``,
``n`` -> ``num_images_per_prompt``, ``seed`` -> ``torch.Generator(device).manual_seed(seed)``
(a random seed is drawn and reported in ``result.seed`` when none is given),
``image``/``strength`` -> img2img, ``image``/``mask`` -> inpainting,
``control_image``/``control_scale`` -> a ControlNet pipeline with
``controlnet_conditioning_scale`` (a checkpoint that is itself a ControlNet
pipeline, its ``model_index.json`` naming a ``controlnet``, uses its own unless
``options["controlnet"]`` names another; ``control_type`` then only says how to
prepare the image), ``reference_image``/``reference_scale`` ->
IP-Adapter with ``set_ip_adapter_scale``, ``options["lora"]``/``["lora_scale"]`` ->
``load_lora_weights`` (once) and ``set_adapters``. Parameters left ``None`` keep the
pipeline's own defaults, except what a distilled checkpoint needs (Flux
schnell: 4 steps, guidance 0; SD-Turbo: 1 step, guidance 0).

Bounds: ``Policy(timeout=...)`` counts from the start of the attempt
(``request.deadline``), so waiting for a busy pipeline and loading it count
too; a call queued behind a busy pipeline fails with
:class:`ProviderTimeoutError` when its time is up. Cancelling (routing's
``request.cancel``: a cancelled ``await``, a lost hedge; or
``options={"cancel_event": event}`` set from another thread) stops the
denoising loop at the next step with :class:`GenerationCancelledError`.

Steps a scheduler cannot run (more than its training schedule allows, or so
few that ``strength`` leaves none) are an :class:`InvalidInputError` before
the first step.
"""

from __future__ import annotations

import inspect
import math
import secrets
from collections.abc import Mapping
from typing import Any

from mmsdk.plugin import (
    CancelledError,
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
from ._pipelines import OWN_CONTROLNET
from ._source import parse_source

__all__ = ["DiffusersModel"]


_PARAMS: dict[type[Any], dict[str, Any]] = {}


def _call_defaults(cls: type[Any]) -> dict[str, Any]:
    """The keyword arguments a pipeline class's ``__call__`` takes, with defaults (memoised)."""
    params = _PARAMS.get(cls)
    if params is None:
        params = _PARAMS[cls] = {name: param.default for name, param in
                                 inspect.signature(cls.__call__).parameters.items()}
    return params


def _call_params(cls: type[Any]) -> frozenset[str]:
    """The keyword arguments a pipeline class's ``__call__`` takes."""
    return frozenset(_call_defaults(cls))


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
    def _loaded(self, options: Mapping[str, Any], request: GenerateRequest | None = None) -> Any:
        from ._pipelines import CACHE, detect_family
        from ._runtime import load_settings

        with mapped_errors(self.provider, self.source, loading=True):
            family = self._family or detect_family(self.source)
            if family != "other":  # known for good; "other" may be a not-yet-fetched index
                self._family = family
            settings = load_settings(self.source.location, family, options)
            # waiting for another call's load of the same weights counts against the timeout
            hold = (lambda lock: request.holding(lock, self.provider)) if request else None
            return CACHE.get(self.source, settings, hold=hold)

    def pipeline(self, options: Mapping[str, Any] | None = None) -> Any:
        """The loaded diffusers pipeline (as ``model_index.json`` names it), for direct use.

        Args:
            options: load options (``device``, ``dtype``, ``variant``, ``cpu_offload``,
                ``allow_pickle``); the same options give the same cached pipeline.
        """
        return self._loaded(options or {}).pipe

    def preload(self) -> None:
        """Load the pipeline with the default load settings (:func:`mmsdk.preload`)."""
        self._loaded({})

    def close(self) -> None:
        """Release this checkpoint's pipelines (all load settings)."""
        from ._pipelines import CACHE

        CACHE.evict(self.source.location)

    # -- generating --------------------------------------------------------------
    def generate(self, request: GenerateRequest) -> GenerateResult:
        try:
            return self._generate(request)
        except CancelledError as exc:  # one type for every way of cancelling a generation
            if isinstance(exc, GenerationCancelledError):
                raise
            raise GenerationCancelledError(exc.message, provider=self.provider) from None

    def _generate(self, request: GenerateRequest) -> GenerateResult:
        from ._bounds import bounded

        request = bounded(request, _cancel_event(request.options))
        options = request.options
        _check_pairs(request)
        if request.scheduler:
            from ._schedulers import resolve_scheduler

            resolve_scheduler(request.scheduler)  # unknown names fail before any loading
        from ._lora import lora_spec

        lora = lora_spec(options)  # a bad lora path fails before any loading too
        self._raise_if_stopped(request, "before it started")
        while True:
            entry = self._loaded(options, request)
            request.raise_if_stopped(self.provider, "loading the model")
            with request.holding(entry.lock, self.provider):
                if entry.pipe is not None:  # else: evicted meanwhile, load again
                    return self._run(entry, request, lora)

    def _raise_if_stopped(self, request: GenerateRequest, when: str) -> None:
        reason = request.stop_reason()
        if reason == "cancelled":
            raise GenerationCancelledError(f"{self.provider}: generation cancelled {when}.",
                                           provider=self.provider)
        if reason == "timeout":
            raise ProviderTimeoutError(f"{self.provider} ran past its {request.timeout}s timeout "
                                       f"{when}; raise Policy(timeout=...).",
                                       provider=self.provider)

    def _run(self, entry: Any, request: GenerateRequest, lora: Any) -> GenerateResult:
        """One pipeline call; ``entry.lock`` is held."""
        from ._control import controlnet_source, prepare_control_image
        from ._ip_adapter import apply_ip_adapter, ip_adapter_spec
        from ._lora import apply_lora

        options = request.options
        task = "inpaint" if request.mask is not None else \
            "img2img" if request.image is not None else "text2img"
        controlnet = control_key = None
        if request.control_image is not None:
            own = getattr(entry.pipe, "controlnet", None)
            if own is not None and not options.get("controlnet"):
                controlnet, control_key = own, OWN_CONTROLNET  # the folder is a ControlNet pipeline
            else:
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
            scheduler = _scheduler(request.scheduler, entry, pipe)
            _check_steps(entry, request, scheduler, kwargs.get("num_inference_steps"))
            if request.cancel is not None or request.deadline is not None:
                kwargs.update(_stopper(pipe, request, notes))
            self._raise_if_stopped(request, "before it started")
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


def _check_steps(entry: Any, request: GenerateRequest, scheduler: Any, steps: int | None) -> None:
    """Steps the scheduler cannot run are the caller's mistake, found before the first step.

    A schedule with more steps than its checkpoint's training timesteps allow
    fails deep inside diffusers (an ``IndexError`` at the first or the *last*
    step, or NaN images); the scheduler is tried on a one-pixel sample first,
    once per scheduler and step count.
    """
    if request.steps is None or steps is None:
        return  # the checkpoint's own default works
    key = (request.scheduler, steps)
    if key not in entry.step_checks:
        from ._schedulers import dry_run

        entry.step_checks[key] = dry_run(scheduler, steps)
    problem = entry.step_checks[key]
    if problem:
        raise InvalidInputError(f"steps={steps} is more than {type(scheduler).__name__} can run "
                                f"on this checkpoint ({problem}); ask for fewer steps or another "
                                "scheduler=.")


def _stopper(pipe: Any, request: GenerateRequest, notes: list[str]) -> dict[str, Any]:
    """A step callback that stops the loop on cancel or timeout, where the pipeline has one."""
    if "callback_on_step_end" not in _call_params(type(pipe)):
        notes.append(f"{type(pipe).__name__} has no step callback: cancel and timeout are only "
                     "checked before it starts")
        return {}

    def on_step_end(_pipe: Any, step: int, _timestep: Any,
                    tensors: dict[str, Any]) -> dict[str, Any]:
        reason = request.stop_reason()
        if reason is not None:
            raise Stopped(reason, step + 1)
        return tensors

    return {"callback_on_step_end": on_step_end}


def _denoising_steps(pipe: Any, steps: int, strength: float) -> int:
    """How many steps img2img / inpainting runs for *steps* at *strength*.

    Flux pipelines keep the fraction (at least one step); the Stable Diffusion
    ones truncate ``steps * strength`` to an integer.
    """
    if type(pipe).__name__.startswith("Flux"):
        return steps - int(max(steps - steps * strength, 0))
    return min(int(steps * strength), steps)


def _fewest_steps(pipe: Any, strength: float) -> int:
    """The smallest step count that leaves *strength* at least one denoising step."""
    steps = max(1, math.ceil(1 / strength))
    while _denoising_steps(pipe, steps, strength) < 1:  # float rounding: 3 * 0.3333 < 1
        steps += 1
    return steps


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
    strength = request.strength if request.strength is not None else \
        _call_defaults(type(pipe)).get("strength") if request.image is not None else None
    if isinstance(strength, float) and strength > 0:
        if request.steps is None and steps:
            # a distilled default (1 step) times strength must still leave one step to run
            steps = max(steps, _fewest_steps(pipe, strength))
        ran = steps if steps is not None else _call_defaults(type(pipe)).get("num_inference_steps")
        if isinstance(ran, int) and _denoising_steps(pipe, ran, strength) < 1:
            raise InvalidInputError(
                f"steps={ran} at strength={strength} leaves no denoising step ({name} runs "
                f"steps x strength of them); ask for steps={_fewest_steps(pipe, strength)} or "
                "more, or a higher strength.")
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

