"""Drive `subagent mcp` with the official Python MCP SDK (PyPI `mcp` 2.3.0).

Runs every scenario of ../CONTRACT.md against one transport (`TRANSPORT=stdio`
or `TRANSPORT=http`) and writes the report to `$REPORT`:
`{"passed": [...], "task_ids": [...]}`. Exits 1 if any scenario failed; each
failure's name and reason go to stderr.

Each scenario opens its own connection (`mcp.Client`, default `mode="auto"`:
the SDK probes `server/discover` and speaks 2026-07-28 when the server offers
it, else falls back to the `initialize` handshake), so one scenario breaking
its connection cannot take the next one down. Over stdio every connection is a
fresh `subagent mcp` process; over HTTP one server serves them all.

Era notes (2026-07-28 vs the handshake era), all handled through the SDK:
- list_changed: on a 2026-07-28 connection notifications only flow inside a
  `subscriptions/listen` stream (`Client.listen(tools_list_changed=True)`); on a
  handshake-era connection they reach the `message_handler`.
- the tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) is declared
  with a `ClientExtension` carrying a `ResultClaim` for `resultType: "task"`.
  The SDK activates claims only on 2026-07-28 connections (a claimed shape
  cannot be parsed on a handshake-era wire: `tools/call` there is validated as
  a plain `CallToolResult`), so `mcp-tasks` needs a 2026-07-28 connection and
  fails, saying so, if the server only speaks the handshake era.
  `tasks/get` / `tasks/cancel` are sent with `ClientSession.send_request` using
  the SDK's `GetTaskRequest` / `CancelTaskRequest` with `name_param = "taskId"`
  (SEP-2663 mirrors the task id into the `Mcp-Name` HTTP header).
- logs: 2026-07-28 servers send `notifications/message` only to requests that
  opt in, so the client sets `log_level="info"` (stamped on every request).

`MCP_CLIENT_MODE` (default `auto`) overrides `Client(mode=...)` for debugging,
e.g. `legacy` to force the initialize handshake.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientSession
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

SCENARIO_TIMEOUT = 60.0
"""Seconds one scenario (connection included) may take."""

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
TOOLS = {"task", "await_tasks", "send_message", "task_stop", "task_output", "list_tasks", "list_subagents"}
TERMINAL = {"completed", "failed", "cancelled", "timed_out", "interrupted"}


class Failed(Exception):
    """A scenario's assertion did not hold."""


def check(condition: Any, message: str) -> None:
    if not condition:
        raise Failed(message)


# --------------------------------------------------------------------------
# The tasks extension (SEP-2663) through the SDK's extension surface
# --------------------------------------------------------------------------


class CreateTaskResult(types.Result):
    """`tools/call` answered with a task (`resultType: "task"`).

    SEP-2663 flattens the task's fields into the result (`taskId`, `status`,
    ...); a nested `task: {taskId, ...}` is accepted too.
    """

    result_type: Literal["task"]
    task_id: str | None = None
    status: str | None = None
    status_message: str | None = None
    poll_interval_ms: int | None = None
    task: dict[str, Any] | None = None

    def id(self) -> str | None:
        return self.task_id or (self.task or {}).get("taskId")


class TaskState(types.Result):
    """A `tasks/get` answer: the task and, by status, its `result` or `error`."""

    task_id: str | None = None
    status: str
    status_message: str | None = None
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class GetTask(types.GetTaskRequest):
    name_param = "taskId"


class CancelTask(types.CancelTaskRequest):
    name_param = "taskId"


async def get_task(session: ClientSession, task_id: str) -> TaskState:
    return await session.send_request(GetTask(params=types.GetTaskRequestParams(task_id=task_id)), TaskState)


async def cancel_task(session: ClientSession, task_id: str) -> None:
    await session.send_request(
        CancelTask(params=types.CancelTaskRequestParams(task_id=task_id)), types.EmptyResult
    )


async def poll_task(session: ClientSession, task_id: str, until: set[str], seen: list[str]) -> TaskState:
    """Poll `tasks/get` until the status is one of `until`; `seen` collects the statuses."""
    while True:
        state = await get_task(session, task_id)
        if not seen or seen[-1] != state.status:
            seen.append(state.status)
        if state.status in until:
            return state
        if state.status in {"completed", "failed", "cancelled"}:
            raise Failed(f"task {task_id} ended {state.status} while waiting for {sorted(until)}: {state}")
        interval = (state.poll_interval_ms or 200) / 1000
        await anyio.sleep(min(max(interval, 0.05), 1.0))


class TasksExtension(ClientExtension):
    """Declares the tasks extension and finishes a claimed task by polling `tasks/get`."""

    identifier = TASKS_EXTENSION

    def __init__(self, on_task: Callable[[str], None]) -> None:
        self.on_task = on_task
        self.resolved: list[tuple[str, list[str]]] = []
        """(task id, the statuses `tasks/get` reported) for each task resolved."""

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self._resolve)]

    async def _resolve(self, created: CreateTaskResult, ctx: ClaimContext) -> types.CallToolResult:
        task_id = created.id()
        if not task_id:
            raise Failed(f"CreateTaskResult without a task id: {created}")
        self.on_task(task_id)
        seen: list[str] = []
        try:
            state = await poll_task(ctx.session, task_id, {"completed"}, seen)
        except BaseException:
            # Abandoned (cancelled, or it failed): do not leave it running.
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await cancel_task(ctx.session, task_id)
            raise
        self.resolved.append((task_id, seen))
        check(state.result is not None, f"tasks/get {task_id}: completed without a result: {state}")
        return types.CallToolResult.model_validate(state.result)


# --------------------------------------------------------------------------
# Harness: environment, server, connections, report
# --------------------------------------------------------------------------


@dataclass
class Env:
    bin: str
    args: list[str]
    workspace: str
    agents_dir: Path
    extra_bundle: Path
    transport: str
    report: Path
    mode: str
    url: str | None = None
    task_ids: list[str] = field(default_factory=list)

    @staticmethod
    def from_environ() -> Env:
        def need(name: str) -> str:
            value = os.environ.get(name)
            if not value:
                sys.exit(f"client.py: ${name} is not set")
            return value

        transport = need("TRANSPORT")
        if transport not in ("stdio", "http"):
            sys.exit(f"client.py: TRANSPORT must be stdio or http, not {transport!r}")
        args = json.loads(os.environ.get("SUBAGENT_ARGS") or "[]")
        if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
            sys.exit("client.py: SUBAGENT_ARGS must be a JSON array of strings")
        return Env(
            bin=need("SUBAGENT_BIN"),
            args=args,
            workspace=need("WORKSPACE"),
            agents_dir=Path(need("AGENTS_DIR")),
            extra_bundle=Path(need("EXTRA_BUNDLE")),
            transport=transport,
            report=Path(need("REPORT")),
            mode=os.environ.get("MCP_CLIENT_MODE", "auto"),
        )

    def server_argv(self) -> list[str]:
        argv = [*self.args, "mcp", "--workspace", self.workspace]
        if self.transport == "http":
            argv += ["--listen", "127.0.0.1:0"]
        return argv

    def saw_task(self, task_id: Any) -> None:
        if isinstance(task_id, str) and task_id and task_id not in self.task_ids:
            self.task_ids.append(task_id)


class HttpServer:
    """`subagent mcp --listen 127.0.0.1:0`: the URL comes from its first stderr line."""

    def __init__(self, env: Env) -> None:
        self.process = subprocess.Popen(
            [env.bin, *env.server_argv()],
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.process.stderr is not None
            first = True
            for line in self.process.stderr:
                if first:
                    lines.put(line)
                    first = False
                sys.stderr.write(f"[subagent mcp] {line}")
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        try:
            first_line = lines.get(timeout=30)
        except queue.Empty:
            self.stop()
            raise RuntimeError("subagent mcp --listen: no line on stderr within 30 s")
        prefix = "subagent mcp: listening on "
        if first_line is None or not first_line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"subagent mcp --listen: first stderr line is {first_line!r}, wanted {prefix!r}URL")
        self.url = first_line[len(prefix) :].strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Conn:
    """One connection and what arrived on it outside of replies."""

    client: Client
    env: Env
    logs: list[types.LoggingMessageNotificationParams] = field(default_factory=list)
    tools_changed: anyio.Event = field(default_factory=anyio.Event)
    extension: TasksExtension | None = None

    @property
    def modern(self) -> bool:
        return self.client.protocol_version in MODERN_PROTOCOL_VERSIONS


@asynccontextmanager
async def connect(env: Env, *, tasks: bool = False) -> AsyncIterator[Conn]:
    """A connected `mcp.Client`, declaring the tasks extension when `tasks`."""
    holder: list[Conn] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        holder[0].logs.append(params)

    async def on_message(message: types.ServerNotification | Exception) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            holder[0].tools_changed.set()
        elif isinstance(message, Exception):
            print(f"  transport error: {message!r}", file=sys.stderr)

    extension = TasksExtension(env.saw_task) if tasks else None
    if env.transport == "stdio":
        server: Any = StdioServerParameters(command=env.bin, args=env.server_argv(), env=dict(os.environ))
    else:
        assert env.url is not None
        server = env.url
    client = Client(
        server,
        mode=env.mode,
        client_info=types.Implementation(name="subagent-mcp-test-python", version="1"),
        logging_callback=on_log,
        log_level="info",
        message_handler=on_message,
        extensions=[extension] if extension else None,
    )
    conn = Conn(client=client, env=env, extension=extension)
    holder.append(conn)
    async with client:
        yield conn


# --------------------------------------------------------------------------
# Tool-call helpers
# --------------------------------------------------------------------------


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def structured(result: types.CallToolResult, what: str) -> dict[str, Any]:
    data = result.structured_content
    check(isinstance(data, dict), f"{what}: no structuredContent object (text: {text_of(result)!r})")
    return data


async def call(conn: Conn, tool: str, args: dict[str, Any], **kwargs: Any) -> types.CallToolResult:
    result = await conn.client.call_tool(tool, args, **kwargs)
    if isinstance(result.structured_content, dict) and tool == "task":
        conn.env.saw_task(result.structured_content.get("task_id"))
    return result


async def ok(conn: Conn, tool: str, args: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Call `tool`; it must succeed; its structuredContent."""
    what = f"{tool} {json.dumps(args)}"
    result = await call(conn, tool, args, **kwargs)
    check(not result.is_error, f"{what}: isError: {text_of(result)!r}")
    check(len(result.content) >= 1 and text_of(result), f"{what}: no text content")
    return structured(result, what)


def has_words(message: str, words: list[str | tuple[str, ...]]) -> str | None:
    """The first of `words` missing from `message` (a tuple: any one of them), case-insensitively."""
    lower = message.lower()
    for word in words:
        choices = word if isinstance(word, tuple) else (word,)
        if not any(choice.lower() in lower for choice in choices):
            return " or ".join(repr(c) for c in choices)
    return None


async def rejected(
    conn: Conn,
    tool: str,
    args: dict[str, Any],
    words: list[str | tuple[str, ...]],
    *,
    rpc_error: bool | None = False,
) -> str:
    """Call `tool`; it must be refused with a message naming `words`.

    `rpc_error`: False wants a tool result with isError, True a JSON-RPC error,
    None either. Returns the message.
    """
    what = f"{tool} {json.dumps(args)}"
    try:
        result = await call(conn, tool, args)
    except MCPError as error:
        check(rpc_error is not False, f"{what}: JSON-RPC error {error.code} {error.message!r}, wanted a tool error")
        if rpc_error is None:
            print(f"  note: {what} was refused with JSON-RPC error {error.code}, not a tool error", file=sys.stderr)
        message = f"{error.message} {json.dumps(error.data) if error.data is not None else ''}"
    else:
        check(rpc_error is not True, f"{what}: answered a tool result, wanted a JSON-RPC error: {text_of(result)!r}")
        check(result.is_error, f"{what}: accepted, wanted an error: {text_of(result)!r}")
        message = text_of(result)
        check(message.strip(), f"{what}: isError without a text message")
    missing = has_words(message, words)
    check(missing is None, f"{what}: the error {message!r} does not mention {missing}")
    return message


async def list_tasks(conn: Conn, **args: Any) -> list[dict[str, Any]]:
    tasks = (await ok(conn, "list_tasks", args)).get("tasks")
    check(isinstance(tasks, list), f"list_tasks {args}: no `tasks` list")
    return tasks


async def await_one(conn: Conn, task_id: str) -> dict[str, Any]:
    """`await_tasks [task_id]`: it must complete; its entry in `completed`."""
    data = await ok(conn, "await_tasks", {"task_ids": [task_id], "timeout": 30})
    completed = [t for t in data.get("completed", []) if t.get("task_id") == task_id]
    check(completed, f"await_tasks [{task_id}]: not in `completed`: {data}")
    check(data.get("pending") == [] and data.get("missing") == [], f"await_tasks [{task_id}]: {data}")
    return completed[0]


async def background(conn: Conn, prompt: str, **extra: Any) -> str:
    data = await ok(conn, "task", {"subagent": "echo", "prompt": prompt, "run_in_background": True, **extra})
    task_id = data.get("task_id")
    check(isinstance(task_id, str) and task_id, f"background task {prompt!r}: no task_id: {data}")
    check(data.get("subagent") == "echo", f"background task {prompt!r}: subagent {data.get('subagent')!r}")
    # Its status when the call answered: a quick task may already have ended.
    statuses = {"queued", "running", "completed", "failed", "cancelled", "timed_out", "interrupted"}
    check(data.get("status") in statuses, f"background task {prompt!r}: status {data.get('status')!r}")
    return task_id


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------


async def list_tools(env: Env) -> None:
    async with connect(env) as conn:
        tools = (await conn.client.list_tools()).tools
        names = {tool.name for tool in tools}
        check(names == TOOLS, f"tools: {sorted(names)}, wanted {sorted(TOOLS)}")
        task = next(tool for tool in tools if tool.name == "task")
        description = task.description or ""
        for name in ("echo", "hello"):
            check(f"- {name}:" in description, f"task's description does not list `- {name}:`: {description!r}")
        check("Says hello" in description, f"task's description lacks hello's description: {description!r}")
        required = set((task.input_schema or {}).get("required", []))
        check({"subagent", "prompt"} <= required, f"task's input schema requires {sorted(required)}")


async def list_subagents(env: Env) -> None:
    async with connect(env) as conn:
        subagents = (await ok(conn, "list_subagents", {})).get("subagents")
        check(isinstance(subagents, list), "list_subagents: no `subagents` list")
        by_name = {s.get("name"): s for s in subagents}
        check({"echo", "hello"} <= set(by_name), f"list_subagents: {sorted(by_name)}")
        echo, hello = by_name["echo"], by_name["hello"]
        check(echo.get("permission_mode") == "default", f"echo's permission_mode: {echo.get('permission_mode')!r}")
        check(
            hello.get("permission_mode") == "readonly",
            f"hello's permission_mode: {hello.get('permission_mode')!r}, wanted readonly",
        )
        write_dirs = echo.get("write_dirs")
        check(
            isinstance(write_dirs, list) and len(write_dirs) == 1 and Path(write_dirs[0]).name == "out",
            f"echo's write_dirs: {write_dirs!r}, wanted [out]",
        )
        check(not hello.get("write_dirs"), f"hello (readonly) has write_dirs {hello.get('write_dirs')!r}")
        check(echo.get("description", "").startswith("Echoes"), f"echo's description: {echo.get('description')!r}")
        for s in (echo, hello):
            for key in ("tools", "model", "path"):
                check(key in s, f"list_subagents: {s.get('name')} lacks `{key}`")


async def foreground_progress(env: Env) -> None:
    async with connect(env) as conn:
        reports: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            reports.append((progress, total, message))

        result = await call(conn, "task", {"subagent": "echo", "prompt": "progress 3"}, progress_callback=on_progress)
        data = structured(result, "task progress 3")
        check(not result.is_error, f"task progress 3: isError: {text_of(result)!r}")
        check(data.get("status") == "completed", f"task progress 3: status {data.get('status')!r}: {data.get('error')}")
        check(data.get("summary") == "3 rounds", f"task progress 3: summary {data.get('summary')!r}")
        check("3 rounds" in text_of(result), f"task progress 3: text content {text_of(result)!r}")
        for key in ("task_id", "subagent", "data", "error", "files", "limits_hit", "output", "usage", "model"):
            check(key in data, f"task progress 3: the result lacks `{key}`")
        check(len(reports) >= 3, f"{len(reports)} progress notifications, wanted >= 3: {reports}")
        values = [p for p, _, _ in reports]
        check(all(a < b for a, b in zip(values, values[1:])), f"progress does not increase: {values}")
        messages = [m or "" for _, _, m in reports]
        check(any(m.startswith("round") for m in messages), f"no `round N` progress message: {messages}")


async def background_await_output(env: Env) -> None:
    async with connect(env) as conn:
        task_id = await background(conn, "log", description="py log")
        done = await await_one(conn, task_id)
        check(done.get("status") == "completed", f"await_tasks: status {done.get('status')!r}: {done.get('error')}")
        check(done.get("summary") == "logged", f"await_tasks: summary {done.get('summary')!r}")
        out = await ok(conn, "task_output", {"task_id": task_id})
        check(out.get("task_id") == task_id, f"task_output: task_id {out.get('task_id')!r}")
        check(out.get("status") == "completed", f"task_output: status {out.get('status')!r}")
        for key in ("offset", "next_offset", "total", "dropped", "output"):
            check(key in out, f"task_output: lacks `{key}`: {out}")
        check(isinstance(out["total"], int) and out["total"] >= 0, f"task_output: total {out['total']!r}")
        check(out["offset"] == 0 and out["next_offset"] >= 0, f"task_output: offsets {out['offset']}..{out['next_offset']}")
        check(isinstance(out["output"], str), f"task_output: output {out['output']!r}")
        listed = {t.get("task_id"): t for t in await list_tasks(conn)}
        check(task_id in listed, f"list_tasks does not list {task_id}")
        entry = listed[task_id]
        check(entry.get("subagent") == "echo" and entry.get("status") == "completed", f"list_tasks entry: {entry}")
        check(entry.get("description") == "py log", f"list_tasks: description {entry.get('description')!r}")


async def send_message(env: Env) -> None:
    async with connect(env) as conn:
        task_id = await background(conn, "collect 2")
        for message in ("a", "b"):
            data = await ok(conn, "send_message", {"task_id": task_id, "message": message})
            check(data.get("task_id") == task_id and data.get("delivered") is True, f"send_message {message}: {data}")
        done = await await_one(conn, task_id)
        check(done.get("status") == "completed", f"await_tasks: status {done.get('status')!r}: {done.get('error')}")
        check(done.get("summary") == "a|b", f"await_tasks: summary {done.get('summary')!r}, wanted 'a|b'")
        await rejected(conn, "send_message", {"task_id": task_id, "message": "c"}, ["not running"])


async def task_stop(env: Env) -> None:
    async with connect(env) as conn:
        task_id = await background(conn, "until-cancel")
        data = await ok(conn, "task_stop", {"task_id": task_id})
        check(data.get("task_id") == task_id, f"task_stop: task_id {data.get('task_id')!r}")
        check(data.get("status") == "cancelled", f"task_stop: status {data.get('status')!r}, wanted cancelled")
        listed = {t.get("task_id"): t for t in await list_tasks(conn, subagent="echo", limit=200)}
        check(listed.get(task_id, {}).get("status") == "cancelled", f"list_tasks after task_stop: {listed.get(task_id)}")


async def cancel_notification(env: Env) -> None:
    async with connect(env) as conn:
        description = f"py cancel {uuid.uuid4().hex[:8]}"
        outcome: list[str] = []

        async def foreground(scope: anyio.CancelScope) -> None:
            with scope:
                result = await call(conn, "task", {"subagent": "echo", "prompt": "until-cancel", "description": description})
                outcome.append(f"the call returned before it was cancelled: {text_of(result)!r}")

        task_id: str | None = None
        async with anyio.create_task_group() as tg:
            scope = anyio.CancelScope()
            tg.start_soon(foreground, scope)
            with anyio.move_on_after(20):
                while task_id is None and not outcome:
                    for t in await list_tasks(conn, subagent="echo", status="running", limit=1000):
                        if t.get("description") == description:
                            task_id = t.get("task_id")
                    await anyio.sleep(0.2)
            # Abandon the request: the SDK sends notifications/cancelled (on a
            # 2026-07-28 streamable-HTTP connection it aborts the request's POST instead).
            scope.cancel()
        check(not outcome, outcome[0] if outcome else "")
        check(task_id is not None, "the foreground task never showed in list_tasks {subagent: echo, status: running}")
        env.saw_task(task_id)
        status = None
        with anyio.move_on_after(10):
            while status != "cancelled":
                listed = {t.get("task_id"): t for t in await list_tasks(conn, subagent="echo", limit=1000)}
                status = listed.get(task_id, {}).get("status")
                if status in TERMINAL:
                    break
                await anyio.sleep(0.2)
        check(status == "cancelled", f"task {task_id} is {status!r} 10 s after the client cancelled its call")


async def mcp_tasks(env: Env) -> None:
    async with connect(env, tasks=True) as conn:
        check(
            conn.modern,
            f"negotiated {conn.client.protocol_version}: the SDK activates result claims (the tasks "
            "extension's CreateTaskResult) only on 2026-07-28 connections",
        )
        extension = conn.extension
        assert extension is not None
        # 1. A foreground `task` becomes an MCP task; the extension's claim polls
        #    tasks/get to `completed` and hands back its CallToolResult.
        result = await call(conn, "task", {"subagent": "echo", "prompt": "progress 2"})
        check(extension.resolved, "`task` did not answer with a task (resultType: \"task\") to a client declaring the extension")
        task_id, statuses = extension.resolved[-1]
        check(statuses and statuses[-1] == "completed", f"tasks/get {task_id}: statuses {statuses}")
        data = structured(result, "tasks/get result")
        check(not result.is_error, f"tasks/get result: isError: {text_of(result)!r}")
        check(data.get("summary") == "2 rounds", f"tasks/get result: summary {data.get('summary')!r}")
        check(data.get("task_id") == task_id, f"the MCP task id {task_id} is not the host task id {data.get('task_id')}")
        env.saw_task(task_id)

        # 2. Take the task handle itself, cancel it with tasks/cancel.
        created = await conn.client.session.call_tool(
            "task", {"subagent": "echo", "prompt": "until-cancel"}, allow_claimed=True
        )
        check(isinstance(created, CreateTaskResult), f"`task` until-cancel answered {type(created).__name__}, wanted a task")
        assert isinstance(created, CreateTaskResult)
        cancel_id = created.id()
        check(cancel_id, f"CreateTaskResult without a task id: {created}")
        assert cancel_id is not None
        env.saw_task(cancel_id)
        check(created.status in (None, "working"), f"a new task's status is {created.status!r}")
        first = await get_task(conn.client.session, cancel_id)
        check(first.status == "working", f"tasks/get {cancel_id} before cancelling: {first.status!r}")
        await cancel_task(conn.client.session, cancel_id)
        seen: list[str] = []
        with anyio.move_on_after(15):
            await poll_task(conn.client.session, cancel_id, {"cancelled"}, seen)
        check(seen and seen[-1] == "cancelled", f"tasks/get {cancel_id} 15 s after tasks/cancel: statuses {seen}")


async def list_changed(env: Env) -> None:
    target = env.agents_dir / "late-arrival"
    if target.exists():  # left by an earlier run: take it away and let the watcher settle
        shutil.rmtree(target)
        await anyio.sleep(1.5)
    try:
        async with connect(env) as conn:
            description = await task_description(conn)
            check("late-arrival" not in description, "`late-arrival` is listed before it arrived")
            if conn.modern:
                # 2026-07-28: change notifications flow only inside a subscriptions/listen stream.
                async with conn.client.listen(tools_list_changed=True) as subscription:
                    check(
                        subscription.honored.tools_list_changed,
                        f"subscriptions/listen did not honor toolsListChanged: {subscription.honored}",
                    )
                    shutil.copytree(env.extra_bundle, target)

                    async def next_change() -> None:
                        await subscription.__anext__()

                    await wait_for_arrival(conn, next_change)
            else:
                conn.tools_changed = anyio.Event()
                shutil.copytree(env.extra_bundle, target)

                async def next_change() -> None:
                    await conn.tools_changed.wait()
                    conn.tools_changed = anyio.Event()

                await wait_for_arrival(conn, next_change)
    finally:
        shutil.rmtree(target, ignore_errors=True)


async def task_description(conn: Conn) -> str:
    tools = (await conn.client.list_tools(cache_mode="refresh")).tools
    task = [tool for tool in tools if tool.name == "task"]
    check(task, "tools/list has no `task` tool")
    return task[0].description or ""


async def wait_for_arrival(conn: Conn, next_change: Callable[[], Awaitable[None]]) -> None:
    """Within 30 s a tools/list_changed arrives after which `task` lists late-arrival."""
    notifications = 0
    description = ""
    with anyio.move_on_after(30):
        while True:
            await next_change()
            notifications += 1
            description = await task_description(conn)
            if "late-arrival" in description:
                break
    check(notifications > 0, "no notifications/tools/list_changed within 30 s of adding late-arrival")
    check(
        "- late-arrival: Arrived late" in description,
        f"{notifications} list_changed notification(s), but `task` does not list late-arrival: {description!r}",
    )


async def write_escalation(env: Env) -> None:
    async with connect(env) as conn:
        for dirs in (["/etc"], ["elsewhere"]):
            await rejected(conn, "task", {"subagent": "echo", "prompt": "task", "write_dirs": dirs}, ["out"])
        data = await ok(conn, "task", {"subagent": "echo", "prompt": "task", "write_dirs": ["out"]})
        check(data.get("status") == "completed", f"write_dirs [out]: status {data.get('status')!r}: {data.get('error')}")
        seen = (data.get("data") or {}).get("writable_dirs")
        check(
            isinstance(seen, list) and len(seen) == 1 and Path(seen[0]).name == "out",
            f"write_dirs [out]: the guest's writable_dirs are {seen!r}, wanted only out",
        )


async def malformed(env: Env) -> None:
    async with connect(env) as conn:
        echo = {"subagent": "echo"}
        suggests = ("did you mean", "similar", "perhaps")
        await rejected(conn, "task", {"subagent": "ech", "prompt": "x"}, [suggests, "echo"], rpc_error=None)
        await rejected(conn, "task", echo, ["prompt"], rpc_error=None)
        await rejected(conn, "task", {**echo, "prompt": 5}, ["prompt", "string"], rpc_error=None)
        await rejected(conn, "task", {**echo, "prompt": "x", "timeout": "soon"}, ["timeout", "soon"], rpc_error=None)
        await rejected(conn, "task", {**echo, "prompt": "x", "timeout": -1}, ["timeout", "-1"], rpc_error=None)
        await rejected(conn, "await_tasks", {"task_ids": []}, ["task_ids"], rpc_error=None)
        data = await ok(conn, "await_tasks", {"task_ids": ["t-no-such-task"], "timeout": 1})
        check(data.get("missing") == ["t-no-such-task"], f"await_tasks an unknown id: {data}")
        check(data.get("completed") == [] and data.get("pending") == [], f"await_tasks an unknown id: {data}")
        await rejected(conn, "send_message", {"task_id": "t-no-such-task", "message": "hi"}, ["t-no-such-task"], rpc_error=None)
        await rejected(conn, "task_output", {"task_id": "t-no-such-task", "offset": -5}, ["offset"], rpc_error=None)
        await rejected(conn, "no_such_tool", {}, [("no_such_tool", "not found", "unknown tool")], rpc_error=True)
        await rejected(conn, "task", {**echo, "prompt": "x", "workspace": "/"}, ["workspace"], rpc_error=None)
        subagents = (await ok(conn, "list_subagents", {})).get("subagents") or []
        check({"echo", "hello"} <= {s.get("name") for s in subagents}, "list_subagents after the malformed calls")


SCENARIOS: list[tuple[str, Callable[[Env], Awaitable[None]]]] = [
    ("list-tools", list_tools),
    ("list-subagents", list_subagents),
    ("foreground-progress", foreground_progress),
    ("background-await-output", background_await_output),
    ("send-message", send_message),
    ("task-stop", task_stop),
    ("cancel-notification", cancel_notification),
    ("mcp-tasks", mcp_tasks),
    ("list-changed", list_changed),
    ("write-escalation", write_escalation),
    ("malformed", malformed),
]


def reason(error: BaseException) -> str:
    """The innermost first error of an exception group, as one line."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, Failed):
        return str(error)
    if isinstance(error, TimeoutError):
        return f"timed out: {error}" if str(error) else "timed out"
    if isinstance(error, MCPError):
        return f"JSON-RPC error {error.code}: {error.message} {error.data if error.data is not None else ''}".strip()
    return f"{type(error).__name__}: {error}"


async def run(env: Env, only: set[str] | None) -> list[str]:
    passed: list[str] = []
    for name, scenario in SCENARIOS:
        if only and name not in only:
            continue
        started = time.monotonic()
        try:
            with anyio.move_on_after(SCENARIO_TIMEOUT) as limit:
                await scenario(env)
            check(not limit.cancelled_caught, f"did not finish within {SCENARIO_TIMEOUT:g} s")
        except Exception as error:  # noqa: BLE001 - every failure is reported, then the next scenario runs
            print(f"FAIL {name} ({env.transport}): {reason(error)}", file=sys.stderr)
            if os.environ.get("MCP_CLIENT_TRACE"):
                traceback.print_exception(error)
            continue
        passed.append(name)
        print(f"ok   {name} ({env.transport}, {time.monotonic() - started:.1f} s)", file=sys.stderr)
    return passed


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="[python mcp] %(levelname)s %(name)s: %(message)s")
    env = Env.from_environ()
    only = set(sys.argv[1:]) or None  # scenario names, to run a subset while debugging
    server: HttpServer | None = None
    passed: list[str] = []
    try:
        if env.transport == "http":
            server = HttpServer(env)
            env.url = server.url
        passed = anyio.run(run, env, only)
    except Exception as error:  # noqa: BLE001 - the report is still written, naming nothing as passed
        print(f"FAIL: the run did not start: {reason(error)}", file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
        env.report.parent.mkdir(parents=True, exist_ok=True)
        env.report.write_text(json.dumps({"passed": passed, "task_ids": env.task_ids}, indent=2) + "\n")
    wanted = [name for name, _ in SCENARIOS if not only or name in only]
    return 0 if passed == wanted else 1


if __name__ == "__main__":
    sys.exit(main())
