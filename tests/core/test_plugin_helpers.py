"""Helpers in mmsdk.plugin that several plugins rely on."""

from __future__ import annotations

import socket

import pytest

from mmsdk.plugin import (
    classification_schema,
    host_reachable,
    missing_packages,
    scores_from_answer,
)


def test_host_reachable_probes_once_and_remembers(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert host_reachable("127.0.0.1", port)
    connects: list[object] = []
    monkeypatch.setattr(socket, "create_connection",
                        lambda *a, **k: connects.append(a) or (_ for _ in ()).throw(OSError()))
    assert host_reachable("127.0.0.1", port)  # remembered: no new connect
    assert not host_reachable("127.0.0.1", port, remember=0)
    assert len(connects) == 1
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert host_reachable("127.0.0.1", port, remember=0)  # a proxy decides, not a direct connect


def test_missing_packages_names_the_install() -> None:
    assert missing_packages("json", install="x").ok
    result = missing_packages("surely_not_installed_pkg", install="'mmsdk[local]'")
    assert not result.ok and result.fix == "pip install 'mmsdk[local]'"


@pytest.mark.parametrize("multi_label", [False, True], ids=["single", "multi"])
def test_classification_answers_become_scores(multi_label: bool) -> None:
    labels = ["cat", "dog", "car"]
    schema = classification_schema(labels, multi_label)
    key = "present" if multi_label else "label"
    assert key in schema["properties"]
    answer = '{"present": ["cat", "car"]}' if multi_label else 'Sure: {"label": "dog"}'
    expected = {"cat": 1.0, "dog": 0.0, "car": 1.0} if multi_label else \
        {"cat": 0.0, "dog": 1.0, "car": 0.0}
    assert scores_from_answer(answer, labels, multi_label) == expected


def test_logprob_scores_are_a_softmax_over_labels() -> None:
    scores = scores_from_answer("", ["a", "b"], False, logprobs={"a": -0.1, "b": -2.4})
    assert abs(sum(scores.values()) - 1) < 1e-9 and scores["a"] > scores["b"]
