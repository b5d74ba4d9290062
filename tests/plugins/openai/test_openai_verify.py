"""verify_with= a cloud provider: the official openai SDK against a loopback server."""

from __future__ import annotations

import json

from loopback import LoopbackServer, Reply
from pydantic import BaseModel

import mmsdk
from mmsdk.testing import TestProvider


class Receipt(BaseModel):
    vendor: str
    total: float
    currency: str


MAIN = {"vendor": "ACME Corp", "total": 12.5, "currency": "EUR"}


def test_openai_cross_checks_a_local_answer(api: LoopbackServer, wire) -> None:
    api.queue(Reply(body=wire.chat(json.dumps({"vendor": " acme  corp", "total": 12.50001,
                                               "currency": "USD"}))))
    with TestProvider("main", answer=json.dumps(MAIN)) as main:
        result = mmsdk.understand("Read the receipt", images=[wire.png()], schema=Receipt,
                                  provider="main:m", verify_with=wire.PROVIDER)
    assert result.data == Receipt(**MAIN) and len(main.calls) == 1
    verification = result.verification
    assert verification is not None and verification.error is None
    assert verification.provider == wire.PROVIDER
    assert verification.data == Receipt(vendor=" acme  corp", total=12.50001, currency="USD")
    assert (verification.agree, verification.disagree) == (["vendor", "total"], ["currency"])
    # the same question reached the wire: prompt, the image, the schema
    [request] = api.received
    body = wire.body(request)
    parts = body["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"]
    assert parts[0]["text"] == "Read the receipt"
    assert body["response_format"]["json_schema"]["name"] == "Receipt"
    assert [(a.provider, a.outcome, a.verifier) for a in result.attempts] == [
        ("main:m", "ok", False), (wire.PROVIDER, "ok", True)]


def test_a_failing_cloud_verifier_is_reported_without_the_key(api: LoopbackServer, wire) -> None:
    api.queue(wire.error(401, f"Incorrect API key provided: {wire.KEY}",
                         code="invalid_api_key"))
    with TestProvider("main", answer=json.dumps(MAIN)):
        result = mmsdk.understand("Read the receipt", schema=Receipt, provider="main:m",
                                  verify_with=wire.PROVIDER)
    assert result.data == Receipt(**MAIN)
    verification = result.verification
    assert verification is not None and verification.data is None
    assert (verification.error or "").startswith("AuthenticationError: ")
    assert wire.KEY not in (verification.error or "") and wire.KEY not in repr(result)
    assert [(a.outcome, a.verifier) for a in result.attempts] == [("ok", False), ("error", True)]
