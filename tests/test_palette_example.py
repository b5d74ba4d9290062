"""The example plugin (examples/mmsdk-palette) on the plugin contract: streaming, native
async, listed models and a declared alias."""

from __future__ import annotations

import asyncio
import threading

import pytest
from PIL import Image

import mmsdk
from mmsdk.plugin import Capability, Feature, capabilities_of

palette = pytest.importorskip("mmsdk_palette", reason="installed by the development install")

RED = Image.new("RGB", (8, 8), (250, 5, 5))
NAVY = Image.new("RGB", (6, 4), (0, 0, 128))


def test_capabilities_come_from_the_model_class() -> None:
    assert capabilities_of(palette.PaletteModel) == {Capability.CLASSIFY, Capability.EMBED,
                                                     Capability.UNDERSTAND}
    info = mmsdk._registry.get_registry().resolve("palette:basic").info
    assert info.capabilities == capabilities_of(palette.PaletteModel)
    assert info.supports == {Feature.MULTI_LABEL, Feature.STREAM}


def test_understand_streams_one_image_at_a_time() -> None:
    stream = mmsdk.understand("colours?", images=[RED, NAVY], provider="palette", stream=True)
    chunks = list(stream)
    assert chunks == ["image 1: 8x8, mean colour #fa0505", "; image 2: 6x4, mean colour #000080"]
    assert stream.result.text == "".join(chunks) and stream.result.provider == "palette:basic"
    assert stream.result.usage.images == 2


def test_aunderstand_is_native_async() -> None:
    threads: list[str] = []
    understand = palette.PaletteModel.understand

    def spy(self: palette.PaletteModel, request: object) -> mmsdk.UnderstandResult:
        threads.append(threading.current_thread().name)
        return understand(self, request)

    async def ask() -> mmsdk.UnderstandResult:
        threads.append(threading.current_thread().name)
        return await mmsdk.aunderstand("colours?", images=[NAVY], provider="palette:named")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(palette.PaletteModel, "understand", spy)
        answer = asyncio.run(ask())
    assert answer.text == "image 1: 6x4, mean colour navy"
    assert threads[0] == threads[-1]  # answered on the loop's thread, not in a worker


def test_async_stream_uses_the_default_twin() -> None:
    async def collect() -> list[str]:
        stream = await mmsdk.aunderstand("colours?", images=[RED], provider="palette",
                                         stream=True)
        return [chunk async for chunk in stream]

    assert asyncio.run(collect()) == ["image 1: 8x8, mean colour #fa0505"]


def test_the_declared_alias_and_the_listed_models() -> None:
    assert mmsdk.understand("c", images=[RED], provider="colours").provider == "palette:named"
    [status] = [s for s in mmsdk.providers() if s.name == "palette"]
    assert status.models == ["basic", "named"] and status.usable
    with pytest.raises(mmsdk.InvalidInputError, match="has no model 'sepia'"):
        mmsdk.understand("c", images=[RED], provider="palette:sepia")
