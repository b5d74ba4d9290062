"""Evaluate providers on your own data: :func:`evaluate` returns an :class:`EvalReport`.

One module per job: ``_dataset`` (ImageFolder or examples in code),
``_scoring`` (what counts as right; percentiles), ``_store`` (the resume
file), ``_report`` (the report, its table and plot), ``_run`` (the calls).
"""

from ._report import EvalFailure, EvalReport, ExampleResult, ProviderEval
from ._run import aevaluate, evaluate

__all__ = ["EvalFailure", "EvalReport", "ExampleResult", "ProviderEval", "aevaluate", "evaluate"]
