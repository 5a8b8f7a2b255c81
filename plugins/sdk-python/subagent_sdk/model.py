"""Model calls, for subagents whose manifest grants `tools = ["model"]`.

The host brokers every call: the guest names no model, key or URL; the host
uses the task's effective model and counts its tokens.

    from subagent_sdk import model

    answer = model.complete([
        model.system("Answer in one word."),
        model.user("Capital of France?"),
    ])
    print(answer.content)

`complete` raises `ModelError` (a `Failed`: uncaught, it fails the task with
"denied: ..." and the like) when the host or the provider refuses.
"""

import json
from typing import Iterable, List, Optional

from ._bindings import Err, model as _wit
from ._run import Failed

#: The generated records, for type hints and `isinstance`.
Role = _wit.Role
Message = _wit.Message
ToolCall = _wit.ToolCall
ToolDefinition = _wit.ToolDefinition
ChatRequest = _wit.ChatRequest
ChatResponse = _wit.ChatResponse
StopReason = _wit.StopReason
Usage = _wit.Usage

_KINDS = {
    _wit.ModelError_Auth: "auth",
    _wit.ModelError_RateLimited: "rate limited",
    _wit.ModelError_Timeout: "timeout",
    _wit.ModelError_BadRequest: "bad request",
    _wit.ModelError_Unavailable: "unavailable",
    _wit.ModelError_Denied: "denied",
    _wit.ModelError_BudgetExceeded: "budget exceeded",
}


class ModelError(Failed):
    """A model call failed. `kind` is one of "auth", "rate limited",
    "timeout", "bad request", "unavailable", "denied", "budget exceeded";
    `retry_after_ms` is set when a rate-limited provider said how long to
    wait; `str(error)` is "kind: message"."""

    def __init__(self, kind: str, message: str, retry_after_ms: Optional[int] = None):
        text = f"{kind}: {message}"
        if retry_after_ms is not None:
            text += f" (retry after {retry_after_ms} ms)"
        super().__init__(text)
        self.kind = kind
        self.message = message
        self.retry_after_ms = retry_after_ms


def system(text: str) -> Message:
    """A system message."""
    return Message(role=Role.SYSTEM, content=text, tool_calls=[], tool_call_id=None)


def user(text: str) -> Message:
    """A user message."""
    return Message(role=Role.USER, content=text, tool_calls=[], tool_call_id=None)


def assistant(text: str, tool_calls: Iterable[ToolCall] = ()) -> Message:
    """An assistant message: echo a response's `content` and `tool_calls`
    back into the history."""
    return Message(role=Role.ASSISTANT, content=text, tool_calls=list(tool_calls), tool_call_id=None)


def tool_result(call_id: str, text: str) -> Message:
    """The result of the tool call with id `call_id`."""
    return Message(role=Role.TOOL, content=text, tool_calls=[], tool_call_id=call_id)


def tool(name: str, description: str, schema: dict) -> ToolDefinition:
    """A tool whose arguments object is described by the JSON Schema `schema`."""
    return ToolDefinition(name=name, description=description, parameters=json.dumps(schema))


def arguments(call: ToolCall) -> dict:
    """A tool call's arguments, parsed (`{}` when the model sent none).
    Raises `ValueError` when they are not JSON."""
    if not call.arguments.strip():
        return {}
    return json.loads(call.arguments)


def complete(
    messages: List[Message],
    tools: Iterable[ToolDefinition] = (),
    *,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
) -> ChatResponse:
    """One chat completion with the task's effective model.

    Raises `ModelError`: "denied" without the `model` grant, "budget
    exceeded" once `limits.tokens` is used up, and the provider's failures."""
    request = ChatRequest(
        messages=list(messages),
        tools=list(tools),
        max_tokens=max_tokens,
        temperature=temperature,
    )
    try:
        return _wit.complete(request)
    except Err as err:
        value = err.value
        if isinstance(value, _wit.ModelError_RateLimited):
            raise ModelError("rate limited", value.value.message, value.value.retry_after_ms) from None
        raise ModelError(_KINDS.get(type(value), "error"), str(value.value)) from None
