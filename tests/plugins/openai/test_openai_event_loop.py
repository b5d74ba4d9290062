"""The async twins never block the event loop: first call (imports), big images, unload.

The calls run in a fresh process (tests/loop_stall.py), so the first call really
imports the SDK and builds its client, as in an app that has just started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from loopback import LoopbackServer, Reply
from PIL import Image

SCRIPT = Path(__file__).parents[2] / "loop_stall.py"
# A blocking implementation stalls 300 ms to 2 s here (imports, a 12 MP decode and
# resize, unloading); a loop that never blocks shows a few ms. The bound is generous
# so a busy 2-core machine cannot fail it, and far below what blocking costs.
STALL_BOUND = 0.15


def test_async_calls_never_stall_the_event_loop(loopback: LoopbackServer, tmp_path: Path,
                                                wire: Any) -> None:
    loopback.default = Reply(body=wire.chat("A photo."))
    photo = tmp_path / "photo.jpg"  # 12 MP: OpenAI's limits make mmsdk resize it
    noise = np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(photo, quality=90)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MMSDK_"))}
    env |= {"OPENAI_API_KEY": wire.KEY, "OPENAI_BASE_URL": loopback.url + "/v1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "understand", f"openai:{wire.MODEL}",
                           str(photo)], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    stalls = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"longest event-loop stalls (s): {stalls}")  # the README quotes these (-s shows them)
    assert stalls["answers"] == ["A photo."] * 4
    assert len(loopback.received) == 4
    assert stalls["first"] < STALL_BOUND, stalls
    assert stalls["warm"] < STALL_BOUND, stalls
    assert stalls["unload"] < STALL_BOUND, stalls
