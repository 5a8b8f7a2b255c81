"""{{name}}: a subagent written in Python.

Build:  subagent build .          (componentize-py builds {{name}}.wasm from this file)
Run:    subagent run . "your task" --workspace /path/to/project --build
"""

import os

import subagent_sdk
from subagent_sdk import InvalidInput, Outcome, Subagent, log, progress


class Agent(Subagent):
    def run(self, task):
        # task.prompt is what to do; the workspace is read-only at /workspace
        # (task.writable_dirs lists what the manifest lets it write).
        if not task.prompt.strip():
            raise InvalidInput("say what to do")
        log.info(f"task {task.id} started")

        entries = sorted(os.listdir(subagent_sdk.WORKSPACE))
        progress.note(f"found {len(entries)} top-level entries")
        subagent_sdk.check_cancelled()

        # Return a summary (a str), or an Outcome with JSON data. Any uncaught
        # exception fails the task with its message, e.g. "ValueError: ...".
        return Outcome(
            f"Hello from {{name}}! The workspace has {len(entries)} top-level entries.",
            data={"prompt": task.prompt, "entries": entries},
        )


subagent_sdk.export(Agent)
