"""Loaded pipelines: one load per checkpoint and settings, shared by every task.

A :class:`Loaded` holds the pipeline built from ``model_index.json`` plus the
pipelines derived from it with ``AutoPipelineFor*.from_pipe`` (img2img,
inpainting, ControlNet variants), which reuse the same UNet / transformer,
VAE and text encoders instead of loading them twice.

:data:`CACHE` keeps the most recently used few (``MMSDK_DIFFUSERS_MAX_PIPELINES``,
default 2) and releases the least recently used one *before* loading another,
so peak accelerator memory stays at the bound.

Concurrency: each :class:`Loaded` has one lock, held for the whole of a call.
A scheduler copy per call would protect only the scheduler, but a call also
changes state shared by all pipelines of one checkpoint (which scheduler is
plugged in, IP-Adapter attention processors and scale, active LoRA, progress-bar
settings), and a single accelerator gains nothing from two denoising loops of
the same weights at once. Different checkpoints run in parallel.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from ._presets import call_defaults, family_of
from ._runtime import LoadSettings, dtype_kwarg
from ._source import Source, hub_cache_dir, local_files_only, read_json

__all__ = ["CACHE", "OWN_CONTROLNET", "Loaded", "PipelineCache", "detect_family", "load_pipeline"]

TASKS = ("text2img", "img2img", "inpaint")
_AUTO_CLASS = {"text2img": "AutoPipelineForText2Image", "img2img": "AutoPipelineForImage2Image",
               "inpaint": "AutoPipelineForInpainting"}
_AUTO_MAPPING = {"text2img": "AUTO_TEXT2IMAGE_PIPELINES_MAPPING",
                 "img2img": "AUTO_IMAGE2IMAGE_PIPELINES_MAPPING",
                 "inpaint": "AUTO_INPAINT_PIPELINES_MAPPING"}
MAX_CONTROLNETS = 2
OWN_CONTROLNET = "<the checkpoint's own ControlNet>"
"""The key of pipelines derived with the ControlNet a ControlNet pipeline folder ships."""


def _is_task_pipeline(cls: type[Any], task: str) -> bool:
    from diffusers.pipelines import auto_pipeline

    mapping = getattr(auto_pipeline, _AUTO_MAPPING[task], {})
    return cls in mapping.values()


@dataclass(eq=False)
class Loaded:
    """One checkpoint loaded with one :class:`LoadSettings`, and what hangs off it.

    Attributes:
        settings: how it was loaded (the cache key).
        source: where it came from.
        pipe: the pipeline ``model_index.json`` names.
        family: ``"sd"``, ``"sdxl"``, ``"flux"``, ...
        defaults: sampling settings the checkpoint needs beyond its pipeline's defaults.
        scheduler: the checkpoint's own scheduler, put back after every call.
        lock: held for the whole of a call (see the module docstring).
        derived: ``(task, controlnet location)`` -> pipeline made with ``from_pipe``.
        controlnets: loaded ControlNet models by location, most recent last.
        ip_adapter: the IP-Adapter whose weights are in the UNet, or ``None``.
        ip_adapter_scale: the scale last set on it.
        loras: LoRA weights loaded into the shared modules (``LoraSpec.key`` -> adapter
            name), least recently used first.
        schedulers: schedulers asked for by name, made once from :attr:`scheduler`'s
            config. Reusing one is as safe as diffusers' own reuse of the checkpoint's
            scheduler: ``set_timesteps`` resets its state at the start of every call,
            and :attr:`lock` keeps calls apart.
        step_checks: ``(scheduler name, steps)`` -> why that schedule cannot run
            (``None``: it can), found once by a dry run.
    """

    settings: LoadSettings
    source: Source
    pipe: Any
    family: str
    defaults: dict[str, Any]
    scheduler: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    derived: dict[tuple[str, str | None], Any] = field(default_factory=dict)
    controlnets: OrderedDict[str, Any] = field(default_factory=OrderedDict)
    ip_adapter: tuple[str, str, str] | None = None
    ip_adapter_scale: float | None = None
    loras: OrderedDict[str, str] = field(default_factory=OrderedDict)
    schedulers: dict[str, Any] = field(default_factory=dict)
    step_checks: dict[tuple[str | None, int], str | None] = field(default_factory=dict)

    @property
    def generator_device(self) -> str:
        """Where ``torch.Generator`` lives: the device the latents are drawn on."""
        return self.settings.device

    def pipelines(self) -> list[Any]:
        """The base pipeline and every derived one (they share modules)."""
        return [self.pipe, *self.derived.values()]

    def task_pipe(self, task: str, controlnet: Any = None, controlnet_key: str | None = None
                  ) -> Any:
        """The pipeline for *task* (optionally with a ControlNet), built once with ``from_pipe``.

        A checkpoint that is itself a ControlNet pipeline serves its own task with
        its own ControlNet as it is, and the other tasks with or without it.
        Call with :attr:`lock` held.
        """
        own = getattr(self.pipe, "controlnet", None)
        if controlnet is own and _is_task_pipeline(type(self.pipe), task):
            return self.pipe
        key = (task, controlnet_key)
        pipe = self.derived.get(key)
        if pipe is None:
            import diffusers

            auto = getattr(diffusers, _AUTO_CLASS[task])
            # from_pipe keeps a ControlNet pipeline's ControlNet unless told None
            extra = {"controlnet": controlnet} if controlnet is not None or own is not None \
                else {}
            pipe = auto.from_pipe(self.pipe, **extra)
            if self.settings.cpu_offload:
                pipe.enable_model_cpu_offload(device=self.settings.device)
            self.derived[key] = pipe
        return pipe

    def controlnet(self, source: Source) -> Any:
        """A ControlNet model for this checkpoint, loaded once (the last two are kept).

        Call with :attr:`lock` held.
        """
        from ._control import load_controlnet

        key = source.location
        model = self.controlnets.get(key)
        if model is not None:
            self.controlnets.move_to_end(key)
            return model
        while len(self.controlnets) >= MAX_CONTROLNETS:
            old, _ = self.controlnets.popitem(last=False)
            for derived_key in [k for k in self.derived if k[1] == old]:
                del self.derived[derived_key]
        device = None if self.settings.cpu_offload else self.settings.device
        model = load_controlnet(source, self.family, self.settings.dtype, device,
                                self.settings.allow_pickle, hub_cache_dir())
        self.controlnets[key] = model
        return model

    def release(self) -> None:
        """Drop every reference to the weights and return accelerator memory.

        Waits for a call running on this entry to finish; a later call finds
        :attr:`pipe` is ``None`` and asks the cache again.
        """
        with self.lock:
            self.derived.clear()
            self.controlnets.clear()
            self.schedulers.clear()
            self.step_checks.clear()
            self.loras.clear()
            self.pipe = None
            self.scheduler = None
        # Only a GPU needs its memory back at once; on CPU reference counting frees the
        # weights, and a forced full collection would hold the GIL (~150 ms) and stall
        # every event loop in the process.
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            gc.collect()
            torch.cuda.empty_cache()


def detect_family(source: Source) -> str:
    """The checkpoint's family from its ``model_index.json`` (fetched if allowed).

    A hub repo that is not cached yet gets just that small file downloaded
    (``from_pretrained`` would fetch it first anyway), so the dtype can be
    chosen before the weights load.
    """
    index = read_json(source, "model_index.json")
    if index is None and not source.local and not local_files_only(source):
        from huggingface_hub import hf_hub_download

        hf_hub_download(str(source.repo_id), "model_index.json", cache_dir=hub_cache_dir())
        index = read_json(source, "model_index.json")
    return family_of(str((index or {}).get("_class_name", "")))


def load_pipeline(source: Source, settings: LoadSettings) -> Loaded:
    """Load *source* with *settings*: the one place pipeline weights are read."""
    import diffusers

    kwargs: dict[str, Any] = {
        **dtype_kwarg(settings.dtype),
        # None: prefer safetensors, fall back to pickle; True: safetensors or fail
        "use_safetensors": None if settings.allow_pickle else True,
    }
    if settings.variant:
        kwargs["variant"] = settings.variant
    if not source.local:
        kwargs |= {"cache_dir": hub_cache_dir(), "local_files_only": local_files_only(source)}
    # DiffusionPipeline picks the class model_index.json names (AutoPipelineForText2Image
    # would too, but warns through huggingface-hub about a deprecated argument).
    pipe = diffusers.DiffusionPipeline.from_pretrained(
        source.location, **kwargs)
    if settings.cpu_offload:
        pipe.enable_model_cpu_offload(device=settings.device)
    else:
        pipe.to(settings.device)
    pipe.set_progress_bar_config(disable=True)
    family = family_of(type(pipe).__name__)
    transformer = getattr(pipe, "transformer", None)
    transformer_config = dict(transformer.config) if transformer is not None else None
    defaults = call_defaults(source.repo_id, family, transformer_config)
    return Loaded(settings=settings, source=source, pipe=pipe, family=family, defaults=defaults,
                  scheduler=pipe.scheduler)


class PipelineCache:
    """Loaded pipelines, least recently used first; thread-safe; loads each key once."""

    def __init__(self) -> None:
        self._entries: OrderedDict[LoadSettings, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[LoadSettings, threading.Lock] = {}

    @property
    def max_size(self) -> int:
        """``MMSDK_DIFFUSERS_MAX_PIPELINES`` (default 2, at least 1)."""
        try:
            return max(1, int(os.environ.get("MMSDK_DIFFUSERS_MAX_PIPELINES", "2")))
        except ValueError:
            return 2

    def _hit(self, settings: LoadSettings) -> Loaded | None:
        entry = self._entries.get(settings)
        if entry is not None:
            self._entries.move_to_end(settings)
        return entry

    def get(self, source: Source, settings: LoadSettings,
            hold: Callable[[threading.Lock], AbstractContextManager[Any]] | None = None) -> Loaded:
        """The loaded pipeline for *settings*, loading it (once, even under concurrency).

        Args:
            source: where the weights are.
            settings: how to load them (the cache key).
            hold: how to wait for another call loading the same key (default: as long
                as it takes); a request's ``holding`` gives up at its deadline.
        """
        with self._lock:
            entry = self._hit(settings)
            if entry is not None:
                return entry
            key_lock = self._loading.setdefault(settings, threading.Lock())
        with hold(key_lock) if hold is not None else key_lock:
            with self._lock:
                entry = self._hit(settings)
                if entry is not None:
                    return entry
                evicted = []
                while len(self._entries) >= self.max_size:
                    evicted.append(self._entries.popitem(last=False)[1])
            for old in evicted:  # before loading: keep peak memory at the bound
                old.release()
            entry = load_pipeline(source, settings)
            with self._lock:
                self._entries[settings] = entry
                self._loading.pop(settings, None)
        return entry

    def evict(self, location: str | None = None) -> int:
        """Release the pipelines loaded from *location* (all when ``None``); returns how many."""
        with self._lock:
            keys = [k for k in self._entries if location is None or k.location == location]
            entries = [self._entries.pop(k) for k in keys]
        for entry in entries:
            entry.release()
        return len(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, settings: object) -> bool:
        return settings in self._entries


CACHE = PipelineCache()
