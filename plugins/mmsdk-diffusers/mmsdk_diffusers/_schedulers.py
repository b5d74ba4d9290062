"""Scheduler names users type, mapped to diffusers scheduler classes.

``scheduler="dpm++"`` (or ``"euler"``, ``"euler_a"``, ``"ddim"``, ``"unipc"``, ...,
or any diffusers class name such as ``"DPMSolverMultistepScheduler"``) builds
the scheduler with ``Class.from_config(checkpoint_scheduler.config)``, exactly
like the diffusers documentation does. ``None`` keeps the checkpoint's own.

:func:`dry_run` finds step counts a scheduler cannot run. The limit is not one
number: with ``timestep_spacing="leading"`` and ``steps_offset=1`` (SD 1.5's
config) DDIM, DDPM and PNDM index past their 1,000-entry tables at 1,000 steps,
the multistep solvers (DPM-Solver++, UniPC, DEIS) collapse onto repeated
timesteps and give NaN at 999 or fail at the very last step, and with
``"trailing"`` spacing UniPC and DEIS hit a repeated timestep at 97 of 100,
while Euler, Heun and the Karras-sigma variants run any count up to the
table's size. So the scheduler itself is asked, on a one-pixel sample.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mmsdk.plugin import InvalidInputError

__all__ = ["SCHEDULER_NAMES", "dry_run", "make_scheduler", "resolve_scheduler"]

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


def dry_run(scheduler: Any, steps: int) -> str | None:
    """Why *scheduler* cannot denoise in *steps* steps, or ``None`` when it can.

    Runs a copy of the scheduler through the whole schedule on a one-pixel
    sample with a zero noise prediction (microseconds a step): an index past
    the training schedule, a failed assertion or a non-finite result means the
    real run would fail or produce NaN images. Flow-matching schedulers (Flux,
    SD3) take their schedule from the pipeline (``sigmas``, ``mu``) and have no
    table to run past: they are not checked, nor is anything the dry run cannot
    reproduce (the real call reports it).
    """
    import torch

    if type(scheduler).__name__.startswith("FlowMatch"):
        return None
    limit = getattr(scheduler.config, "num_train_timesteps", None)
    if isinstance(limit, int) and steps > limit:
        return f"its training schedule has {limit} timesteps"
    trial = copy.deepcopy(scheduler)
    try:
        trial.set_timesteps(steps, device="cpu")
    except ValueError as exc:  # e.g. LCM: more steps than original_inference_steps
        return str(exc)
    except Exception:  # needs arguments only the pipeline knows: not checkable here
        return None
    sample = torch.ones(1, 1, 1, 1)
    noise = torch.zeros(1, 1, 1, 1)
    try:
        with torch.inference_mode():
            for timestep in trial.timesteps:
                trial.scale_model_input(sample, timestep)
                sample = trial.step(noise, timestep, sample).prev_sample
    except (IndexError, AssertionError, ZeroDivisionError) as exc:
        return f"{type(exc).__name__} inside the scheduler at this many steps"
    except Exception:
        return None
    if not bool(torch.isfinite(sample).all()):
        return "its timesteps repeat at this many steps and the result is NaN"
    return None
