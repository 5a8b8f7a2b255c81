"""The Python SDK's test guest: one component, one behaviour per prompt.

The first word of the prompt picks what it does (see `BEHAVIOURS`); the
tests in tests/all/python.rs drive it through the `subagent` CLI.
"""

import os
import sys

import subagent_sdk
from subagent_sdk import Failed, InvalidInput, Outcome, Subagent, children, log, messages, model, progress


def find_directory(name):
    raise ValueError(f"no such directory: {name}")


def raise_error(arg):
    # Two frames deep, so the logged traceback has something to show.
    find_directory(arg or "src")


def exit_with(arg):
    sys.exit(int(arg) if arg.lstrip("-").isdigit() else (arg or None))


def invalid(arg):
    raise InvalidInput(f"cannot do {arg!r}")


def failed(arg):
    raise Failed(arg or "gave up")


def write(arg):
    """Try to write `arg` (workspace-relative, or absolute); report what Python raised."""
    path = arg if arg.startswith("/") else os.path.join(subagent_sdk.WORKSPACE, arg)
    try:
        with open(path, "w") as file:
            file.write("written by the python guest\n")
    except OSError as error:
        return Outcome(
            f"could not write {arg}: {type(error).__name__}",
            data={"path": arg, "ok": False, "error": type(error).__name__, "errno": error.errno},
        )
    return Outcome(f"wrote {arg}", data={"path": arg, "ok": True})


def sdk(arg):
    """Every host call the SDK wraps, with the manifest granting nothing."""
    log.debug("debug line")
    log.info("info line")
    log.warn("warn line")
    log.error("error line")
    progress.note("a note")
    progress.round(1)
    progress.tool("read_file", {"path": "readme.txt"})
    data = {"python": sys.version.split()[0], "next": messages.next(), "waited": messages.wait(0.01)}
    data["cancelled"] = subagent_sdk.cancelled()
    try:
        children.launch("hello", "x")
    except children.SubagentError as error:
        data["launch"] = {"kind": error.kind, "text": str(error), "failed": isinstance(error, Failed)}
    try:
        model.complete([model.system("s"), model.user("u")], [model.tool("t", "d", {"type": "object"})])
    except model.ModelError as error:
        data["complete"] = {"kind": error.kind, "text": str(error)}
    return Outcome("sdk calls done", data=data)


def launch_children(arg):
    """Two `hello` children (needs `tools = ["subagents"]`), awaited together."""
    first = children.launch("hello", arg or "python")
    second = children.launch_with("hello", "again", description="the second", readonly=True, timeout=60)
    done = children.wait([first, second], timeout=60)
    by_id = {child.id: child for child in done.completed}
    try:
        children.send("t-not-a-child", "hi")
        refused = None
    except children.SubagentError as error:
        refused = error.kind
    return Outcome(
        "children done",
        data={
            "children": [
                {"status": children.status(by_id[i]), "summary": by_id[i].summary} for i in (first, second)
            ],
            "pending": done.pending,
            "missing": done.missing,
            "send": refused,
        },
    )


#: The facts the `lookup` tool of `chat` knows.
FACTS = {"capital of France": "Paris"}

LOOKUP = model.tool(
    "lookup",
    "Look a fact up.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


def answered(reply):
    """Everything a model reply carries, as JSON."""
    return {
        "content": reply.content,
        "tool_calls": [
            {"id": call.id, "name": call.name, "arguments": model.arguments(call)} for call in reply.tool_calls
        ],
        "stop_reason": reply.stop_reason.name.lower(),
        "usage": {"input": reply.usage.input_tokens, "output": reply.usage.output_tokens},
        "model": reply.model,
    }


def chat(arg):
    """Two model calls (needs `tools = ["model"]`): ask `arg` with the
    `lookup` tool, answer each tool call, then ask again with the results
    (and a temperature given as an int)."""
    history = [model.system("Answer in one word; look facts up first."), model.user(arg)]
    first = model.complete(history, [LOOKUP], max_tokens=64, temperature=0.2)
    history.append(model.assistant(first.content, first.tool_calls))
    for call in first.tool_calls:
        fact = FACTS.get(model.arguments(call).get("query"), "no such fact")
        history.append(model.tool_result(call.id, fact))
    second = model.complete(history, [LOOKUP], temperature=0)
    return Outcome(second.content, data={"rounds": [answered(first), answered(second)]})


def uncaught_model(arg):
    model.complete([model.user("hi")])


def returns_none(arg):
    return None


def bad_data(arg):
    return Outcome("s", data={"x": object()})


def wait_for_cancel(arg):
    """Wait for cancellation as a long loop would, then stop the Python way."""
    progress.note("waiting for cancel")
    while not subagent_sdk.cancelled():
        messages.wait(0.05)
    raise KeyboardInterrupt


def interrupt(arg):
    raise KeyboardInterrupt


BEHAVIOURS = {
    "raise": raise_error,
    "exit": exit_with,
    "invalid": invalid,
    "failed": failed,
    "write": write,
    "sdk": sdk,
    "children": launch_children,
    "chat": chat,
    "uncaught-model": uncaught_model,
    "none": returns_none,
    "bad-data": bad_data,
    "wait-for-cancel": wait_for_cancel,
    "interrupt": interrupt,
}


class Guest(Subagent):
    def run(self, task):
        word, _, arg = task.prompt.strip().partition(" ")
        if word not in BEHAVIOURS:
            raise InvalidInput(f"unknown behaviour {word!r}; one of: {', '.join(BEHAVIOURS)}")
        return BEHAVIOURS[word](arg.strip())


subagent_sdk.export(Guest)
