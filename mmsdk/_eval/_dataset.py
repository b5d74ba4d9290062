"""The examples an evaluation runs: an ImageFolder on disk or an iterable given in code.

A folder holds one subfolder per label (``pets/cat/1.png``, ``pets/dog/2.jpg``);
every subfolder name is a label the providers choose among, and every image
under it (at any depth) is an example of that label. Files that are not
images by their extension, and hidden files, are left out; an image that
cannot be read is still an example, and fails when a provider is asked about
it (a per-example failure, not a crash).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from .._errors import InvalidInputError

__all__ = ["IMAGE_SUFFIXES", "Example", "Task", "load_examples"]

Task = Literal["classify", "understand"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff",
                            ".avif", ".heic"})


@dataclass(frozen=True)
class Example:
    """One labelled input.

    Attributes:
        id: stable within the data set (a folder example's path relative to
            the folder); the resume file records work under it.
        image: what the provider is given (a path, bytes, a PIL image, ...).
        expected: the label (classify) or the expected answer (understand:
            a string, or with a schema a mapping / model instance).
        prompt: the question (understand).
    """

    id: str
    image: Any
    expected: Any
    prompt: str | None = None


def load_examples(dataset: Any, task: Task, *, labels: Sequence[str] | None = None,
                  prompt: str | None = None,
                  schema: type[BaseModel] | None = None) -> tuple[list[Example], list[str] | None]:
    """The examples of *dataset* and, for ``classify``, the labels to offer.

    Raises:
        InvalidInputError: a missing or empty folder, fewer than two labels, an
            example without an image or expected answer, an expected label not
            among ``labels``.
    """
    if task not in ("classify", "understand"):
        raise InvalidInputError(f"task must be 'classify' or 'understand', got {task!r}.")
    if prompt is not None and not isinstance(prompt, str):
        raise InvalidInputError(f"prompt must be a string, got {type(prompt).__name__}.")
    if schema is not None and not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise InvalidInputError("schema must be a pydantic model class, got "
                                f"{type(schema).__name__}.")
    if task == "classify" and schema is not None:
        raise InvalidInputError("schema= applies to task='understand'; classify compares the "
                                "top label with the expected one.")
    if isinstance(dataset, (str, os.PathLike)):
        examples, found = _folder(Path(dataset), task, prompt)
    elif isinstance(dataset, (bytes, bytearray, Mapping)) or not isinstance(dataset, Iterable):
        raise InvalidInputError(
            "dataset must be a folder with one subfolder per label, or an iterable of examples "
            "((image, label) or {'image': ..., 'label': ...}; for task='understand' "
            f"(image, prompt, answer) or {{'image', 'prompt', 'answer'}}); got "
            f"{type(dataset).__name__}.")
    else:
        examples = [_example(item, index, task, prompt, schema)
                    for index, item in enumerate(dataset)]
        if not examples:
            raise InvalidInputError("dataset has no examples; give at least one.")
        found = sorted({str(e.expected) for e in examples}) if task == "classify" else []
    if len({e.id for e in examples}) != len(examples):
        raise InvalidInputError("two examples have the same 'id'; give each a unique id (the "
                                "resume file records work by id).")
    if task == "understand":
        if labels is not None:
            raise InvalidInputError("labels= applies to task='classify'.")
        return examples, None
    chosen = _labels(labels, found)
    return examples, chosen


def _labels(given: Sequence[str] | None, found: list[str]) -> list[str]:
    if given is None:
        chosen = found
    elif isinstance(given, str) or not all(isinstance(label, str) for label in given):
        raise InvalidInputError("labels must be a list of strings, e.g. ['cat', 'dog'].")
    else:
        chosen = list(dict.fromkeys(given))
        missing = sorted(set(found) - set(chosen))
        if missing:
            raise InvalidInputError(f"expected labels {missing} are not among labels={chosen}; "
                                    "add them (a provider could never be right about them).")
    if len(chosen) < 2:
        raise InvalidInputError(
            f"classify needs at least two labels to choose among, found {chosen}; add a "
            "subfolder (or examples) for another label, or pass labels=[...].")
    return chosen


def _folder(root: Path, task: Task, prompt: str | None) -> tuple[list[Example], list[str]]:
    if not root.exists():
        raise InvalidInputError(f"dataset folder {root} does not exist; give a folder with one "
                                "subfolder per label (e.g. pets/cat/*.png, pets/dog/*.png).")
    if not root.is_dir():
        raise InvalidInputError(f"dataset {root} is not a folder; give a folder with one "
                                "subfolder per label (e.g. pets/cat/*.png, pets/dog/*.png).")
    if task == "understand" and prompt is None:
        raise InvalidInputError("task='understand' on a folder needs prompt=, the question whose "
                                "expected answer is each image's subfolder name.")
    labels = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    examples: list[Example] = []
    for label in labels:
        for path in sorted((root / label).rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() \
                    and not any(part.startswith(".") for part in path.relative_to(root).parts):
                examples.append(Example(id=path.relative_to(root).as_posix(), image=str(path),
                                        expected=label, prompt=prompt))
    if not examples:
        raise InvalidInputError(
            f"dataset folder {root} holds no images in label subfolders; put them in one "
            f"subfolder per label ({root}/cat/1.png, {root}/dog/2.png, ...); image "
            f"extensions: {', '.join(sorted(IMAGE_SUFFIXES))}.")
    return examples, labels


_FIELDS = {"classify": ("image", "label"), "understand": ("image", "prompt", "answer")}


def _example(item: Any, index: int, task: Task, prompt: str | None,
             schema: type[BaseModel] | None) -> Example:
    names = _FIELDS[task]
    if isinstance(item, Mapping):
        unknown = set(item) - {*names, "id"}
        if unknown:
            raise InvalidInputError(f"example {index} has unknown keys {sorted(unknown)}; "
                                    f"task={task!r} takes {list(names)} and an optional 'id'.")
        values = dict(item)
    elif isinstance(item, tuple) and len(item) == len(names):
        values = dict(zip(names, item, strict=True))
    elif isinstance(item, tuple) and task == "understand" and len(item) == 2:
        values = {"image": item[0], "answer": item[1]}  # the question comes from prompt=
    else:
        shape = "(image, label)" if task == "classify" else "(image, prompt, answer)"
        shape += "" if task == "classify" else " or (image, answer) with prompt="
        raise InvalidInputError(f"example {index} must be a tuple {shape} or a dict with keys "
                                f"{list(names)}, got {type(item).__name__}.")
    if values.get("image") is None:
        raise InvalidInputError(f"example {index} has no image.")
    expected = values.get(names[-1])
    if expected is None:
        raise InvalidInputError(f"example {index} has no expected {names[-1]}.")
    if task == "classify" and not isinstance(expected, str):
        raise InvalidInputError(f"example {index}: the label must be a string, got "
                                f"{type(expected).__name__}.")
    if task == "understand":
        expected = _expected_answer(expected, index, schema)
    question = values.get("prompt", prompt)
    if task == "understand" and not isinstance(question, str):
        raise InvalidInputError(f"example {index} has no prompt; give one per example or "
                                "prompt= for all.")
    given_id = values.get("id")
    image = values["image"]
    if given_id is None and isinstance(image, (str, os.PathLike)):
        given_id = os.fspath(image) if task == "classify" else f"{os.fspath(image)} | {question}"
    elif given_id is None:
        given_id = f"#{index}"
    return Example(id=str(given_id), image=image, expected=expected, prompt=question)


def _expected_answer(expected: Any, index: int, schema: type[BaseModel] | None) -> Any:
    """A string, or with a schema an instance of it (validated here, before any call)."""
    if schema is None:
        if not isinstance(expected, str):
            raise InvalidInputError(f"example {index}: the expected answer is a "
                                    f"{type(expected).__name__}; give a string, or pass "
                                    "schema= to compare structured answers field by field.")
        return expected
    if isinstance(expected, schema):
        return expected
    try:
        return schema.model_validate(expected.model_dump() if isinstance(expected, BaseModel)
                                     else expected)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}"
                             for e in exc.errors()[:3])
        raise InvalidInputError(f"example {index}: the expected answer does not fit "
                                f"{schema.__name__} ({problems}); fix the example.") from None
