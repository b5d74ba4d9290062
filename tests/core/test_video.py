"""Video done properly: timed frames in the prompt, fps sampling, seeking, warnings,
chunked answering, and PyAV only for the providers that need frames."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel
from samples import write_clip

import mmsdk
import mmsdk._video as video_module
from mmsdk._requests import UnderstandRequest
from mmsdk._settings import Settings
from mmsdk._video import load_video, sample_frames
from mmsdk.plugin import MediaLimits
from mmsdk.testing import TestProvider

pytest.importorskip("av")

IMAGE_ONLY = {"schema", "stream", "max_tokens"}  # no "video": it gets frames


class Scene(BaseModel):
    summary: str
    changes: int


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2.0 s at 10 fps: 20 frames, getting redder."""
    return write_clip(tmp_path_factory.mktemp("video") / "clip.mp4", frames=20)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12.0 s at 10 fps, a keyframe every 12 frames (1.2 s): 120 frames, 10 keyframes."""
    return write_clip(tmp_path_factory.mktemp("video") / "long.mp4", frames=120, gop=12)


@pytest.fixture
def frames_only() -> Any:
    with TestProvider("frames", supports=IMAGE_ONLY) as provider:
        yield provider


def _red(request: UnderstandRequest) -> list[int]:
    return [int(np.asarray(image.image)[16, 16, 0]) for image in request.images]


# -- timestamps --------------------------------------------------------------------
def test_sampled_frames_reach_the_provider_with_their_timestamps(frames_only: TestProvider,
                                                                  clip: Path) -> None:
    result = mmsdk.understand("What changes?", video=clip, frames=4, provider="frames:m")
    [request] = frames_only.calls
    assert len(request.images) == 4 and request.video is None
    assert request.frame_times == pytest.approx([0.2, 0.7, 1.2, 1.7])
    assert request.prompt == (
        "The 4 images are frames of the video clip.mp4 (2.0 s long), in order: Frame 1 at "
        "0.2 s, Frame 2 at 0.7 s, Frame 3 at 1.2 s, Frame 4 at 1.7 s.\n\nWhat changes?")
    reds = _red(request)
    assert reds == sorted(reds) and reds[0] < reds[-1]
    assert result.warnings == []


def test_frames_follow_the_callers_own_images(frames_only: TestProvider, clip: Path,
                                              png_bytes: bytes) -> None:
    mmsdk.understand("Same scene?", images=[png_bytes], video=clip, frames=2,
                     provider="frames:m")
    [request] = frames_only.calls
    assert len(request.images) == 3 and request.images[0].sent.source != "clip.mp4 frame 0"
    assert request.prompt.startswith("The last 2 images are frames of the video clip.mp4")


def test_native_video_providers_get_the_file_and_a_warning_for_ignored_sampling(
        fake: TestProvider, clip: Path) -> None:
    result = mmsdk.understand("What changes?", video=clip, frames=4, fps=2.0,
                              provider="fake:m")
    [request] = fake.calls
    assert request.video is not None and request.images == [] and request.frame_times == []
    assert request.prompt == "What changes?"
    assert result.warnings == ["fake:m ignored frames=4: it reads the whole video itself",
                               "fake:m ignored fps=2: it reads the whole video itself"]


# -- fps, caps and warnings ------------------------------------------------------------
def test_fps_samples_by_time(frames_only: TestProvider, clip: Path) -> None:
    result = mmsdk.understand("What changes?", video=clip, fps=2, provider="frames:m")
    [request] = frames_only.calls
    assert request.frame_times == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert "Frame 4 at 1.5 s." in request.prompt and result.warnings == []


def test_fps_sampling_is_capped_at_frames_with_a_warning(frames_only: TestProvider,
                                                         clip: Path) -> None:
    result = mmsdk.understand("What changes?", video=clip, fps=5, frames=3, provider="frames:m")
    [request] = frames_only.calls
    assert len(request.images) == 3
    assert request.frame_times[-1] > 1.5  # spread over the whole clip, not its first 0.6 s
    assert result.warnings == ["fps=5 would sample 10 frames over 2.0 s; capped at frames=3 "
                               "(one every 0.67 s)."]


def test_frames_beyond_the_clip_are_capped_with_a_warning(frames_only: TestProvider,
                                                          clip: Path) -> None:
    result = mmsdk.understand("What changes?", video=clip, frames=50, provider="frames:m")
    assert len(frames_only.calls[0].images) == 20
    assert result.warnings == ["frames=50 is more than the video's 20 frames; sent all 20."]


def test_sparse_default_sampling_of_a_long_video_warns(frames_only: TestProvider,
                                                       tmp_path: Path) -> None:
    long = write_clip(tmp_path / "slow.mp4", frames=100, rate=1)  # 100 s
    result = mmsdk.understand("What happens?", video=long, provider="frames:m")
    assert len(frames_only.calls[0].images) == 8
    assert result.warnings == ["Sampled 8 frames (the default) from 100.0 s of video, one "
                               "every 12.5 s; pass frames= or fps= to sample more."]


@pytest.mark.parametrize(("kwargs", "fragment"), [
    pytest.param({"fps": 0}, "greater than 0", id="zero"),
    pytest.param({"fps": -1.0}, "greater than 0", id="negative"),
    pytest.param({"fps": 61}, "less than or equal to 60", id="too-high"),
    pytest.param({"fps": float("nan")}, "fps", id="nan"),
    pytest.param({"fps": "2"}, "fps must be a number", id="string"),
    pytest.param({"fps": True}, "fps must be a number", id="bool"),
], )
def test_bad_fps_is_invalid_input(frames_only: TestProvider, clip: Path,
                                  kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match=fragment):
        mmsdk.understand("x", video=clip, provider="frames:m", **kwargs)
    assert frames_only.calls == []


def test_fps_needs_a_video(frames_only: TestProvider) -> None:
    with pytest.raises(mmsdk.InvalidInputError, match="fps= needs a video="):
        mmsdk.understand("x", fps=1, provider="frames:m")


# -- decoding only what is needed -----------------------------------------------------------
@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The time of every frame decoded (through mmsdk._video._decode, the one decode site)."""
    seen: list[float] = []
    real = video_module._decode

    def counting(packet: Any) -> list[Any]:
        frames = real(packet)
        seen.extend(float(frame.time) for frame in frames)
        return frames

    monkeypatch.setattr(video_module, "_decode", counting)
    return seen


def test_sampling_seeks_and_decodes_only_near_the_frames_wanted(long_clip: Path,
                                                                decoded: list[float]) -> None:
    sampled = sample_frames(load_video(long_clip, Settings()), 4)
    # frames 15, 45, 75, 105: each decoded from the keyframe before it (12, 36, 72, 96)
    assert sampled.times == pytest.approx([1.5, 4.5, 7.5, 10.5])
    assert len(decoded) == sampled.decoded == 28  # of 120: 4 + 10 + 4 + 10
    assert sampled.seeks == 3
    assert decoded[:4] == pytest.approx([1.2, 1.3, 1.4, 1.5])
    assert max(decoded) <= 10.6  # nothing after the last frame wanted
    reds = [int(np.asarray(frame.image)[16, 16, 0]) for frame in sampled.frames]
    assert [round(red / 2) for red in reds] == pytest.approx([15, 45, 75, 105], abs=3)


def test_frames_after_one_picked_are_decoded_only_if_the_next_one_needs_them(
        long_clip: Path, decoded: list[float]) -> None:
    sampled = sample_frames(load_video(long_clip, Settings()), fps=1)  # 0.0, 1.0, ... 11.0 s
    assert sampled.times == pytest.approx([float(s) for s in range(12)])
    assert len(decoded) == sampled.decoded == 70  # of 120; keyframes every 1.2 s
    shown = {round(t, 1) for t in decoded}
    assert {1.1, 2.1, 2.2, 3.1, 3.5}.isdisjoint(shown)  # after a pick, before the next keyframe
    assert {1.2, 1.9, 2.4, 2.9} <= shown  # from the keyframe before each target to it


def test_dense_sampling_decodes_each_frame_once(long_clip: Path, decoded: list[float]) -> None:
    sampled = sample_frames(load_video(long_clip, Settings()), fps=2)
    assert len(sampled.frames) == 24
    assert len(decoded) == len(set(decoded)) == sampled.decoded  # no frame decoded twice


def test_a_call_decodes_a_fraction_of_a_longer_clip(frames_only: TestProvider, long_clip: Path,
                                                    decoded: list[float]) -> None:
    mmsdk.understand("What happens?", video=long_clip, frames=4, provider="frames:m")
    assert len(frames_only.calls[0].images) == 4
    assert len(decoded) == 28


# -- chunked answering -----------------------------------------------------------------
def _numbered(request: UnderstandRequest) -> str:
    """Partial answers name the frames they saw; the combining call answers JSON."""
    if request.response_schema is not None:
        return '{"summary": "it gets redder", "changes": 1}'
    return "saw " + ",".join(str(image.sent.source.rsplit(" ", 1)[-1]) for image in request.images)


@pytest.fixture
def small() -> Any:
    """An image-only provider that takes 3 images per request."""
    with TestProvider("small", supports=IMAGE_ONLY, answer=_numbered,
                      limits=MediaLimits(max_images=3)) as provider:
        yield provider


def test_more_frames_than_a_request_takes_are_answered_in_chunks(small: TestProvider,
                                                                 clip: Path) -> None:
    result = mmsdk.understand("What changes?", video=clip, frames=8, schema=Scene,
                              provider="small:m")
    assert len(small.calls) == 4  # 3 chunks (3 + 2 + 3 frames), then the combining call
    chunks, combining = small.calls[:3], small.calls[3]
    assert [len(c.images) for c in chunks] == [3, 2, 3]
    assert [c.response_schema for c in chunks] == [None, None, None]
    assert chunks[1].prompt.startswith(
        "The 2 images are frames 4-5 of the 8 sampled from the video clip.mp4, in order: "
        "Frame 4 at 0.8 s, Frame 5 at 1.1 s.\nThis is part 2 of 3 of the video")
    assert chunks[1].prompt.endswith("\n\nWhat changes?")
    assert combining.images == [] and combining.response_schema is Scene
    assert "Part 1 (frames 1-3, 0.1 s to 0.6 s): saw 0,1,2" in combining.prompt
    assert "Part 3 (frames 6-8, 1.3 s to 1.8 s): saw 5,6,7" in combining.prompt
    assert combining.prompt.endswith("to this request:\n\nWhat changes?")
    assert result.data == Scene(summary="it gets redder", changes=1)
    assert result.usage.images == 8  # every request's usage counted
    assert len(result.attempts) == 1 and result.attempts[0].outcome == "ok"
    assert result.warnings == ["small:m takes 3 image(s) per request: the 8 frames were "
                               "answered in 3 parts, then combined."]
    assert len(result.sent) == 8


async def test_chunks_are_answered_async_too(small: TestProvider, clip: Path) -> None:
    result = await mmsdk.aunderstand("What changes?", video=clip, frames=5,
                                     provider="small:m")
    assert [len(c.images) for c in small.calls] == [2, 3, 0]
    assert result.text.startswith("saw ")  # the combining call's answer (no schema: text)


def test_chunks_leave_room_for_the_callers_images(small: TestProvider, clip: Path,
                                                  png_bytes: bytes) -> None:
    mmsdk.understand("Same?", images=[png_bytes], video=clip, frames=4, provider="small:m")
    assert [len(c.images) for c in small.calls] == [3, 3, 1]
    assert all(c.images[0].sent.source == small.calls[0].images[0].sent.source
               for c in small.calls)
    assert small.calls[0].prompt.startswith(
        "The last 2 images are frames 1-2 of the 4 sampled from the video clip.mp4")


def test_a_provider_with_room_for_no_frame_is_skipped(clip: Path, png_bytes: bytes) -> None:
    with TestProvider("one", supports=IMAGE_ONLY,
                      limits=MediaLimits(max_images=1)) as one, \
            pytest.raises(mmsdk.CapabilityError, match="leave no room for video frames"):
        mmsdk.understand("Same?", images=[png_bytes], video=clip, provider="one:m")
    assert one.calls == []


def test_a_chunked_answer_cannot_stream(small: TestProvider, clip: Path) -> None:
    with pytest.raises(mmsdk.CapabilityError, match="cannot stream"):
        mmsdk.understand("x", video=clip, frames=8, provider="small:m", stream=True)
    assert small.calls == []


def test_chunking_is_per_provider(small: TestProvider, clip: Path) -> None:
    small.failures = [mmsdk.AuthenticationError]
    with TestProvider("roomy", supports=IMAGE_ONLY,
                      limits=MediaLimits(max_images=8)) as roomy:
        result = mmsdk.understand("x", video=clip, frames=8, provider=["small:m", "roomy:m"])
    assert len(small.calls) == 1  # failed on its first chunk: the route moved on
    assert [len(c.images) for c in roomy.calls] == [8]  # roomy takes all 8 in one request
    assert roomy.calls[0].prompt.startswith("The 8 images are frames of the video clip.mp4")
    assert result.provider == "roomy:m" and result.warnings == []


# -- without PyAV ---------------------------------------------------------------------
def test_without_pyav_only_providers_that_need_frames_are_skipped(
        monkeypatch: pytest.MonkeyPatch, frames_only: TestProvider, fake: TestProvider,
        clip: Path) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av now fails
    result = mmsdk.understand("What changes?", video=clip, provider=["frames:m", "fake:m"])
    assert result.provider == "fake:m" and frames_only.calls == []
    skipped = result.attempts[0]
    assert (skipped.provider, skipped.outcome) == ("frames:m", "skipped")
    assert "needs PyAV" in (skipped.error or "")
    assert fake.calls[0].video is not None

    with pytest.raises(mmsdk.ProviderUnavailableError, match="needs PyAV") as caught:
        mmsdk.understand("What changes?", video=clip, provider="frames:m")
    assert "mmsdk[video]" in str(caught.value.fix)


def test_frames_are_sampled_once_for_every_candidate(
        monkeypatch: pytest.MonkeyPatch, clip: Path, decoded: list[float]) -> None:
    with TestProvider("first", supports=IMAGE_ONLY, failures=[mmsdk.AuthenticationError]), \
            TestProvider("second", supports=IMAGE_ONLY) as second:
        asyncio.run(mmsdk.aunderstand("x", video=clip, frames=2,
                                      provider=["first:m", "second:m"]))
    assert len(second.calls[0].images) == 2
    assert len(decoded) == len(set(decoded))
