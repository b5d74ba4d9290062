"""Scheduler names users type, mapped to diffusers scheduler classes.

``scheduler="dpm++"`` (or ``"euler"``, ``"euler_a"``, ``"ddim"``, ``"unipc"``, ...,
or any diffusers class name such as ``"DPMSolverMultistepScheduler"``) builds
the scheduler with ``Class.from_config(checkpoint_scheduler.config)``, exactly
like the diffusers documentation does. ``None`` keeps the checkpoint's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmsdk.plugin import InvalidInputError

__all__ = ["SCHEDULER_NAMES", "make_scheduler", "resolve_scheduler"]

# name -> (diffusers class, extra config). Spaces and dashes count as underscores.
SCHEDULER_NAMES: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "dpm++": ("DPMSolverMultistepScheduler", {}),
    "dpm++_2m": ("DPMSolverMultistepScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}),
    "dpmsolver": ("DPMSolverMultistepScheduler", {}),
    "dpm++_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "dpm++_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "dpm++_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
    "flow_euler": ("FlowMatchEulerDiscreteScheduler", {}),
    "flow_heun": ("FlowMatchHeunDiscreteScheduler", {}),
}


def _normalise(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


def resolve_scheduler(name: str) -> tuple[type[Any], dict[str, Any]]:
    """The scheduler class and config overrides *name* stands for.

    Raises:
        InvalidInputError: *name* is neither a known name nor a diffusers scheduler class.
    """
    import diffusers

    entry = SCHEDULER_NAMES.get(_normalise(name))
    class_name, extra = (entry[0], dict(entry[1])) if entry else (name.strip(), {})
    cls = getattr(diffusers, class_name, None) if class_name.endswith("Scheduler") else None
    if not isinstance(cls, type) or not issubclass(cls, diffusers.SchedulerMixin):
        raise InvalidInputError(
            f"Unknown scheduler {name!r}. Use one of {', '.join(sorted(SCHEDULER_NAMES))}, or a "
            "diffusers scheduler class name such as 'DPMSolverMultistepScheduler'.")
    return cls, extra


def make_scheduler(name: str, current: Any, pipeline_name: str) -> Any:
    """A new scheduler of the kind *name* names, configured from *current*'s config.

    Raises:
        InvalidInputError: unknown name, or a scheduler this pipeline cannot use
            (e.g. a noise-prediction scheduler for flow-matching Flux).
    """
    cls, extra = resolve_scheduler(name)
    compatible = {type(current).__name__} | {c.__name__ for c in current.compatibles}
    if cls.__name__ not in compatible:
        names = sorted(n for n, (c, _) in SCHEDULER_NAMES.items() if c in compatible)
        raise InvalidInputError(
            f"Scheduler {name!r} ({cls.__name__}) does not work with {pipeline_name}, whose "
            f"checkpoint uses {type(current).__name__}. Compatible: "
            f"{', '.join(names + sorted(compatible))}.")
    return cls.from_config(current.config, **extra)
