"""An openai-only app imports the openai plugin and no other (each plugin only when named)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from loopback import LoopbackServer, Reply

SCRIPT = """
import json, sys
import mmsdk
answer = mmsdk.understand("hi", provider="openai:gpt-5.5")
print(json.dumps({"text": answer.text,
                  "plugins": sorted(m for m in sys.modules if m.startswith("mmsdk_") and "." not in m),
                  "sdks": sorted(m for m in ("anthropic", "google.genai", "torch", "diffusers",
                                            "transformers") if m in sys.modules)}))
"""


def test_a_first_openai_call_imports_no_other_plugin(loopback: LoopbackServer, wire: Any) -> None:
    loopback.default = Reply(body=wire.chat("Hello."))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MMSDK_PLUGINS"))}
    env |= {"OPENAI_API_KEY": wire.KEY, "OPENAI_BASE_URL": loopback.url + "/v1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["text"] == "Hello."
    assert seen["plugins"] == ["mmsdk_openai"]
    assert seen["sdks"] == []
