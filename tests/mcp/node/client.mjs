// The TypeScript-SDK test client for `subagent mcp` (the contract: ../CONTRACT.md).
//
// Drives the server with the official `@modelcontextprotocol/sdk` (1.32.2) client over one
// transport (`TRANSPORT=stdio`: StdioClientTransport; `TRANSPORT=http`: the server is spawned
// with `--listen 127.0.0.1:0` and reached with StreamableHTTPClientTransport), runs the
// contract's eleven scenarios, writes `{"passed": [...], "task_ids": [...]}` to `$REPORT`, and
// exits 1 if any scenario failed (each failure's name and reasons go to stderr).
//
// ESM resolves packages relative to this file, so it runs from the directory holding
// node_modules: `cp tests/mcp/node/client.mjs target/mcp-clients/node/ && node target/mcp-clients/node/client.mjs`.
//
// Everything goes through the SDK's client API: `Client.connect`, `listTools`, `callTool` (with
// `onprogress`, `signal` and `timeout`), `setLoggingLevel`, `setNotificationHandler`, and for
// the tasks extension the SDK's generic typed `Client.request(request, zodSchema)`. Two SDK
// matters:
//
// - `mcp-tasks` runs. SDK 1.32.2 implements only the older experimental tasks of protocol
//   2025-11-25 (`params.task`, `capabilities.tasks`, `tasks/result`), not the
//   `io.modelcontextprotocol/tasks` extension (SEP-2663), but it can speak the extension:
//   the client sends its capabilities object verbatim in `initialize` (the SDK's
//   ClientCapabilitiesSchema has `extensions`), which is how a session-mode peer declares it,
//   and `Protocol.request` sends any method (no capability check unless
//   `enforceStrictCapabilities`) and validates the answer with the zod schema given (zod is the
//   SDK's required peer dependency). SEP-2663 (final) flattens the task into the
//   CreateTaskResult (`{resultType: "task", taskId, status, …}`); an earlier draft nested it
//   (`task: {taskId}`): the client reads `taskId` and accepts the nested form too, saying so.
// - SDK 1.32.2 handles a response at once but defers notifications to a microtask, so progress
//   that arrives in the same read as its response is dropped as "unknown token"
//   (typescript-sdk#2580). Whether the server sent its progress before the result is judged
//   from a tap on the transport (`WireTap`), not from what reached `onprogress`.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
    CallToolResultSchema,
    LoggingMessageNotificationSchema,
    McpError,
    ToolListChangedNotificationSchema
} from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod/v4';

// ---------------------------------------------------------------------------------------------
// Configuration

const SCENARIO_TIMEOUT_MS = 120_000; // the whole scenario, whatever it waits on
const CALL_TIMEOUT_MS = 110_000; // a request that may wait on a task (the SDK's default is 60 s)
const SHORT_CALL_TIMEOUT_MS = 30_000; // a request that should answer at once
const CANCEL_WITHIN_MS = 10_000; // contract: a cancelled task shows `cancelled` within 10 s
const LIST_CHANGED_WITHIN_MS = 30_000; // contract: list_changed arrives within 30 s (1 s polls; slack for a loaded CI machine)
const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
const TOOLS = ['task', 'await_tasks', 'send_message', 'task_stop', 'task_output', 'list_tasks', 'list_subagents'];

function readEnv() {
    const need = name => {
        const value = process.env[name];
        if (!value) throw new Error(`environment variable ${name} is not set (see tests/mcp/CONTRACT.md)`);
        return value;
    };
    const args = JSON.parse(need('SUBAGENT_ARGS'));
    if (!Array.isArray(args) || !args.every(a => typeof a === 'string')) {
        throw new Error(`SUBAGENT_ARGS must be a JSON array of strings, got ${process.env.SUBAGENT_ARGS}`);
    }
    const transport = need('TRANSPORT');
    if (transport !== 'stdio' && transport !== 'http') throw new Error(`TRANSPORT must be stdio or http, got ${transport}`);
    return {
        bin: need('SUBAGENT_BIN'),
        args,
        workspace: need('WORKSPACE'),
        agentsDir: need('AGENTS_DIR'),
        extraBundle: need('EXTRA_BUNDLE'),
        transport,
        report: need('REPORT')
    };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

class AssertionFailed extends Error {}

function assert(cond, message) {
    if (!cond) throw new AssertionFailed(message);
}

function assertEq(actual, expected, what) {
    const a = JSON.stringify(actual);
    const e = JSON.stringify(expected);
    assert(a === e, `${what}: expected ${e}, got ${a}`);
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

function brief(value, max = 400) {
    const s = typeof value === 'string' ? value : JSON.stringify(value);
    return s === undefined ? String(value) : s.length > max ? `${s.slice(0, max)}…` : s;
}

function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s (${what})`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `probe` until it returns a truthy value or `ms` pass; returns that value or undefined. */
async function pollUntil(ms, interval, probe) {
    const deadline = Date.now() + ms;
    for (;;) {
        const value = await probe();
        if (value) return value;
        if (Date.now() >= deadline) return undefined;
        await sleep(interval);
    }
}

/** Text of a CallToolResult's text contents. */
function textOf(result) {
    return (result.content ?? [])
        .filter(c => c.type === 'text')
        .map(c => c.text)
        .join('\n');
}

/** Human form of an error a request rejected with, with the JSON-RPC error's data if any. */
function errorText(e) {
    if (e instanceof McpError) return e.data === undefined ? e.message : `${e.message} ${JSON.stringify(e.data)}`;
    return e instanceof Error ? e.message : String(e);
}

/** The SDK rejects a result whose structuredContent breaks the tool's outputSchema: a server bug. */
function isOutputSchemaViolation(e) {
    return e instanceof McpError && /Structured content does not match the tool's output schema|Failed to validate structured content|has an output schema but did not return structured content/.test(e.message);
}

/** `out` as a word (a path `/workspace/out`, `` `out` ``), not inside "outside" or "without". */
const NAMES_OUT = /(^|[^A-Za-z0-9_])out([^A-Za-z0-9_]|$)/;

// ---------------------------------------------------------------------------------------------
// The server and its clients

/** Keeps the last lines of the server's stderr, shown when something failed. */
class Tail {
    constructor(max = 200) {
        this.max = max;
        this.lines = [];
    }
    push(line) {
        this.lines.push(line);
        if (this.lines.length > this.max) this.lines.shift();
    }
    follow(stream, prefix = '') {
        readline.createInterface({ input: stream }).on('line', line => this.push(prefix + line));
    }
}

/**
 * Starts the server for the chosen transport. Returns `{connect(options), close()}`, where
 * `connect` gives a new connected SDK `Client` and its `WireTap` (over stdio a new server
 * process, over HTTP a new session with the one server).
 */
async function startServer(env, tail) {
    const baseArgs = [...env.args, 'mcp', '--workspace', env.workspace];
    const transports = [];

    if (env.transport === 'stdio') {
        let n = 0;
        return {
            async connect(clientOptions) {
                const transport = new StdioClientTransport({
                    command: env.bin,
                    args: baseArgs,
                    env: { ...process.env },
                    stderr: 'pipe'
                });
                tail.follow(transport.stderr, `[server ${++n}] `);
                transports.push(transport);
                return connectClient(transport, clientOptions);
            },
            async close() {
                // Closing a stdio transport ends the server's stdin, then SIGTERM, then SIGKILL.
                await Promise.allSettled(transports.map(t => t.close()));
            }
        };
    }

    // http: spawn the server ourselves; its first stderr line says where it listens.
    const child = spawn(env.bin, [...baseArgs, '--listen', '127.0.0.1:0'], {
        env: process.env,
        stdio: ['ignore', 'pipe', 'pipe']
    });
    tail.follow(child.stdout, '[server stdout] ');
    const exited = new Promise(resolve => child.once('exit', (code, signal) => resolve({ code, signal })));
    const listening = withTimeout(
        new Promise((resolve, reject) => {
            let first = true;
            readline.createInterface({ input: child.stderr }).on('line', line => {
                tail.push(`[server] ${line}`);
                if (!first) return;
                first = false;
                const m = /^subagent mcp: listening on (http:\/\/\S+)$/.exec(line.trim());
                if (m) resolve(m[1]);
                else reject(new Error(`the server's first stderr line is not "subagent mcp: listening on http://…/mcp": ${brief(line)}`));
            });
            child.once('error', reject);
            exited.then(({ code, signal }) => reject(new Error(`the server exited (code ${code}, signal ${signal}) before saying where it listens`)));
        }),
        30_000,
        'waiting for the server to listen'
    );
    let url;
    try {
        url = await listening;
    } catch (e) {
        child.kill('SIGKILL');
        throw e;
    }
    return {
        url,
        async connect(clientOptions) {
            const transport = new StreamableHTTPClientTransport(new URL(url));
            transports.push(transport);
            return connectClient(transport, clientOptions);
        },
        async close() {
            for (const t of transports) {
                await t.terminateSession().catch(() => {});
                await t.close().catch(() => {});
            }
            if (child.exitCode === null && child.signalCode === null) {
                child.kill('SIGTERM');
                const done = await Promise.race([exited, sleep(5_000).then(() => null)]);
                if (!done) {
                    child.kill('SIGKILL');
                    await exited;
                }
            }
        }
    };
}

/**
 * Watches what a client receives in arrival order, before the SDK dispatches it. SDK 1.32.2
 * handles a response at once but defers each notification to a microtask, so a progress
 * notification that arrives in the same read as its response reaches `onprogress` after the
 * response retired the token, and is dropped as "unknown token" (typescript-sdk#2580). What the
 * server sent, and whether before its response, is therefore judged here; `onprogress` still
 * gets what the SDK delivers. (`Protocol.connect` chains a transport's existing `onmessage`.)
 */
class WireTap {
    constructor() {
        this.responded = new Set(); // ids of the responses received
        this.idByTaskId = new Map(); // host task id in a tool result → the request's id
        this.progress = new Map(); // progress token → [{progress, message, beforeResponse}]
    }
    see(message) {
        if ('id' in message && ('result' in message || 'error' in message)) {
            this.responded.add(message.id);
            const taskId = message.result?.structuredContent?.task_id;
            if (typeof taskId === 'string') this.idByTaskId.set(taskId, message.id);
        } else if (message.method === 'notifications/progress') {
            const { progressToken, progress, message: text } = message.params ?? {};
            if (!this.progress.has(progressToken)) this.progress.set(progressToken, []);
            this.progress.get(progressToken).push({ progress, message: text, beforeResponse: !this.responded.has(progressToken) });
        }
    }
}

const sdkErrors = [];
let closing = false; // once set, transport errors are the connections going down

/** A connected SDK client on `transport`: `{client, wire}`. */
async function connectClient(transport, { capabilities = {}, name = 'subagent-mcp-ts-test' } = {}) {
    const client = new Client({ name, version: '1.0.0' }, { capabilities });
    client.onerror = e => {
        // The SDK's own ordering race (see WireTap), judged from the wire instead.
        if (closing || /Received a progress notification for an unknown token/.test(errorText(e))) return;
        sdkErrors.push(`[sdk ${name}] ${errorText(e)}`);
    };
    const wire = new WireTap();
    transport.onmessage = message => wire.see(message);
    await withTimeout(client.connect(transport, { timeout: SHORT_CALL_TIMEOUT_MS }), 60_000, 'connecting');
    return { client, wire };
}

// ---------------------------------------------------------------------------------------------
// The scenario context: the main client, what it has seen, and tool-call helpers

class Context {
    constructor(env, server, { client, wire }) {
        this.env = env;
        this.server = server;
        this.client = client;
        this.wire = wire;
        this.taskIds = new Set();
        this.soft = []; // failed checks of the running scenario that did not stop it
        this.logs = []; // notifications/message params
        this.listChanged = []; // arrival times of notifications/tools/list_changed
        this.listChangedWaiters = [];
        client.setNotificationHandler(LoggingMessageNotificationSchema, n => this.logs.push(n.params));
        client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
            this.listChanged.push(Date.now());
            for (const wake of this.listChangedWaiters.splice(0)) wake();
        });
    }

    /** A check that fails the scenario but lets it go on (to report every problem at once). */
    expect(cond, message) {
        if (!cond) this.soft.push(message);
        return !!cond;
    }

    /** Records a host task id the server handed out. */
    saw(id) {
        if (typeof id === 'string' && id) this.taskIds.add(id);
    }

    /** Calls a tool; returns the CallToolResult (which may be `isError`). A JSON-RPC error rejects. */
    async call(name, args, options = {}) {
        let result;
        try {
            result = await this.client.callTool({ name, arguments: args }, CallToolResultSchema, {
                timeout: CALL_TIMEOUT_MS,
                ...options
            });
        } catch (e) {
            if (isOutputSchemaViolation(e)) throw new AssertionFailed(`${name} ${brief(args)}: the server's result breaks its own outputSchema: ${errorText(e)}`);
            throw e;
        }
        const sc = result.structuredContent;
        // Every id a `task` call returns is a host task the server made; other tools echo ids
        // given to them, so only their successful answers count.
        if (sc && (name === 'task' || !result.isError)) {
            this.saw(sc.task_id);
            for (const done of Array.isArray(sc.completed) ? sc.completed : []) this.saw(done?.task_id);
        }
        return result;
    }

    /** Calls a tool that must succeed; returns its structuredContent. */
    async ok(name, args, options) {
        const result = await this.call(name, args, options);
        assert(!result.isError, `${name} ${brief(args)}: unexpected tool error: ${brief(textOf(result))}`);
        assert(result.structuredContent && typeof result.structuredContent === 'object', `${name} ${brief(args)}: no structuredContent in ${brief(result)}`);
        const content = result.content ?? [];
        this.expect(content.length === 1 && content[0].type === 'text', `${name} ${brief(args)}: expected one text content, got ${brief(content)}`);
        return result.structuredContent;
    }

    /** Calls a tool that must answer a tool error (`isError: true`); returns its text. */
    async toolError(name, args) {
        let result;
        try {
            result = await this.call(name, args, { timeout: SHORT_CALL_TIMEOUT_MS });
        } catch (e) {
            if (e instanceof AssertionFailed) throw e;
            throw new AssertionFailed(`${name} ${brief(args)}: expected a tool error (isError), got a JSON-RPC error: ${errorText(e)}`);
        }
        assert(result.isError === true, `${name} ${brief(args)}: expected isError, got ${brief(result)}`);
        const text = textOf(result);
        assert(text.trim().length > 0, `${name} ${brief(args)}: the tool error has no text: ${brief(result)}`);
        return text;
    }

    /** Calls a tool that must be refused, by a tool error or a JSON-RPC error; returns the message. */
    async refused(name, args) {
        let result;
        try {
            result = await this.call(name, args, { timeout: SHORT_CALL_TIMEOUT_MS });
        } catch (e) {
            if (e instanceof AssertionFailed) throw e;
            if (e instanceof McpError && e.code !== -32001 /* the SDK's own request timeout */) return errorText(e);
            throw e;
        }
        assert(result.isError === true, `${name} ${brief(args)}: expected an error, got ${brief(result)}`);
        const text = textOf(result);
        assert(text.trim().length > 0, `${name} ${brief(args)}: the tool error has no text: ${brief(result)}`);
        return text;
    }

    /** Waits for a list_changed notification that arrives after `since`. */
    async waitListChanged(since, ms) {
        const arrived = () => this.listChanged.some(t => t >= since);
        if (arrived()) return true;
        await Promise.race([new Promise(resolve => this.listChangedWaiters.push(resolve)), sleep(ms)]);
        return arrived();
    }
}

/** The result of the `task` tool for a foreground run; checks it ended as `expected`. */
function checkTaskResult(ctx, result, expected, what) {
    const sc = result.structuredContent;
    assert(sc && typeof sc === 'object', `${what}: no structuredContent in ${brief(result)}`);
    assertEq(sc.status, expected, `${what}: status (error: ${brief(sc.error)})`);
    assertEq(!!result.isError, expected !== 'completed', `${what}: isError`);
    const missing = ['task_id', 'subagent', 'status', 'summary', 'data', 'error', 'files', 'limits_hit', 'output', 'usage', 'model'].filter(key => !(key in sc));
    ctx.expect(missing.length === 0, `${what}: the result lacks ${missing.map(k => `\`${k}\``).join(', ')}: ${brief(sc)}`);
    return sc;
}

// ---------------------------------------------------------------------------------------------
// Scenarios, one function each (names as in the contract)

async function listTools(ctx) {
    const { tools } = await ctx.client.listTools(undefined, { timeout: SHORT_CALL_TIMEOUT_MS });
    assertEq(tools.map(t => t.name).sort(), [...TOOLS].sort(), 'tool names');
    const task = tools.find(t => t.name === 'task');
    const description = task.description ?? '';
    for (const name of ['echo', 'hello']) {
        assert(new RegExp(`(^|\\n)\\s*- ${name}: `).test(description), `task's description does not list \`- ${name}: …\`: ${brief(description, 1000)}`);
    }
    const props = task.inputSchema?.properties ?? {};
    for (const key of ['subagent', 'prompt', 'description', 'run_in_background', 'write_dirs', 'model', 'timeout', 'workspace']) {
        assert(key in props, `task's inputSchema has no \`${key}\`: ${brief(task.inputSchema)}`);
    }
    for (const key of ['subagent', 'prompt']) {
        assert((task.inputSchema.required ?? []).includes(key), `task's inputSchema does not require \`${key}\``);
    }
}

async function listSubagents(ctx) {
    const sc = await ctx.ok('list_subagents', {}, { timeout: SHORT_CALL_TIMEOUT_MS });
    assert(Array.isArray(sc.subagents), `list_subagents: no subagents array: ${brief(sc)}`);
    const byName = Object.fromEntries(sc.subagents.map(s => [s.name, s]));
    assert(byName.echo, `list_subagents has no echo: ${brief(sc)}`);
    assert(byName.hello, `list_subagents has no hello: ${brief(sc)}`);
    assertEq(byName.echo.permission_mode, 'default', 'echo permission_mode');
    assertEq(byName.hello.permission_mode, 'readonly', 'hello permission_mode');
    for (const key of ['name', 'description', 'permission_mode', 'write_dirs', 'tools', 'model', 'path']) {
        assert(key in byName.echo, `echo's entry has no \`${key}\`: ${brief(byName.echo)}`);
    }
    assert(
        Array.isArray(byName.echo.write_dirs) && byName.echo.write_dirs.length === 1 && NAMES_OUT.test(byName.echo.write_dirs[0]),
        `echo's write_dirs should be [out]: ${brief(byName.echo.write_dirs)}`
    );
    assert(typeof byName.hello.description === 'string' && /hello/i.test(byName.hello.description), `hello's description: ${brief(byName.hello.description)}`);
}

async function foregroundProgress(ctx) {
    // Progress: each guest report is a notifications/progress on our token, before the result.
    const delivered = [];
    const result = await ctx.call('task', { subagent: 'echo', prompt: 'progress 3' }, { onprogress: p => delivered.push(p) });
    const sc = checkTaskResult(ctx, result, 'completed', 'task echo "progress 3"');
    assertEq(sc.summary, '3 rounds', 'summary');
    ctx.expect(textOf(result).includes('3 rounds'), `the text content is not the summary: ${brief(textOf(result))}`);
    const token = ctx.wire.idByTaskId.get(sc.task_id);
    assert(token !== undefined, `the wire tap saw no response carrying ${sc.task_id}`);
    const sent = ctx.wire.progress.get(token) ?? [];
    const before = sent.filter(p => p.beforeResponse);
    ctx.expect(before.length >= 3, `expected ≥ 3 progress notifications before the result, got ${before.length} (onprogress got ${delivered.length}): ${brief(sent)}`);
    ctx.expect(before.length === sent.length, `${sent.length - before.length} progress notifications came after the result (token no longer active): ${brief(sent)}`);
    ctx.expect(
        sent.every((p, i) => i === 0 || p.progress > sent[i - 1].progress),
        `progress does not increase: ${brief(sent)}`
    );
    const messages = before.map(p => p.message ?? '');
    for (const word of ['round 1', 'read_file', 'done']) {
        ctx.expect(messages.some(m => m.includes(word)), `no progress message (before the result) mentions "${word}": ${brief(messages)}`);
    }
    // What the SDK handed to onprogress is some of what came before the result, in order.
    ctx.expect(
        delivered.every(d => before.some(p => p.progress === d.progress && p.message === d.message)) &&
            delivered.every((d, i) => i === 0 || d.progress > delivered[i - 1].progress),
        `onprogress got ${brief(delivered)}, not a part of what the server sent before the result ${brief(before)}`
    );

    // Logs: a foreground task's log lines are notifications/message from logger subagent/echo.
    if (ctx.client.getServerCapabilities()?.logging) await ctx.client.setLoggingLevel('debug', { timeout: SHORT_CALL_TIMEOUT_MS });
    const logsBefore = ctx.logs.length;
    const logged = checkTaskResult(ctx, await ctx.call('task', { subagent: 'echo', prompt: 'log' }), 'completed', 'task echo "log"');
    assertEq(logged.summary, 'logged', 'summary of "log"');
    const mine = () => ctx.logs.slice(logsBefore).filter(l => l.logger === 'subagent/echo');
    const has = word => mine().some(l => brief(l.data, Infinity).includes(word));
    await pollUntil(3_000, 50, () => has('info line') && has('warn line'));
    ctx.expect(has('info line') && has('warn line'), `expected notifications/message from logger subagent/echo with "info line" and "warn line", got ${brief(ctx.logs.slice(logsBefore), 600)}`);
}

async function backgroundAwaitOutput(ctx) {
    const started = await ctx.ok('task', { subagent: 'echo', prompt: 'log', run_in_background: true }, { timeout: SHORT_CALL_TIMEOUT_MS });
    const id = started.task_id;
    assert(typeof id === 'string' && id.startsWith('t-'), `background task: no task id: ${brief(started)}`);
    assertEq(started.subagent, 'echo', 'background task: subagent');
    assert(typeof started.status === 'string', `background task: no status: ${brief(started)}`);

    const awaited = await ctx.ok('await_tasks', { task_ids: [id], timeout: 60 });
    assertEq(awaited.pending, [], 'await_tasks pending');
    assertEq(awaited.missing, [], 'await_tasks missing');
    const done = (awaited.completed ?? []).find(c => c.task_id === id);
    assert(done, `await_tasks did not complete ${id}: ${brief(awaited)}`);
    assertEq(done.status, 'completed', 'awaited status');
    assertEq(done.summary, 'logged', 'awaited summary');

    const out = await ctx.ok('task_output', { task_id: id }, { timeout: SHORT_CALL_TIMEOUT_MS });
    assertEq(out.task_id, id, 'task_output task_id');
    assertEq(out.status, 'completed', 'task_output status');
    assertEq(out.offset, 0, 'task_output offset');
    assert(typeof out.total === 'number' && out.total >= 0, `task_output total: ${brief(out)}`);
    assert(typeof out.next_offset === 'number' && out.next_offset >= 0, `task_output next_offset: ${brief(out)}`);
    assert(typeof out.output === 'string', `task_output output: ${brief(out)}`);
    assert(out.total === 0 || out.output.length > 0, `task_output: total ${out.total} but no output`);
    assert('dropped' in out, `task_output has no dropped: ${brief(out)}`);

    const listed = await ctx.ok('list_tasks', { subagent: 'echo', status: 'completed' }, { timeout: SHORT_CALL_TIMEOUT_MS });
    const entry = (listed.tasks ?? []).find(t => t.task_id === id);
    assert(entry, `list_tasks does not include ${id}: ${brief(listed)}`);
    assertEq(entry.subagent, 'echo', 'list_tasks entry subagent');
    assertEq(entry.status, 'completed', 'list_tasks entry status');
}

async function sendMessage(ctx) {
    const started = await ctx.ok('task', { subagent: 'echo', prompt: 'collect 2', run_in_background: true }, { timeout: SHORT_CALL_TIMEOUT_MS });
    const id = started.task_id;
    assert(typeof id === 'string', `background task: no task id: ${brief(started)}`);
    for (const message of ['a', 'b']) {
        const sent = await ctx.ok('send_message', { task_id: id, message }, { timeout: SHORT_CALL_TIMEOUT_MS });
        assertEq(sent.task_id, id, `send_message ${message}: task_id`);
        assertEq(sent.delivered, true, `send_message ${message}: delivered`);
    }
    const awaited = await ctx.ok('await_tasks', { task_ids: [id], timeout: 60 });
    const done = (awaited.completed ?? []).find(c => c.task_id === id);
    assert(done, `await_tasks did not complete ${id}: ${brief(awaited)}`);
    assertEq(done.status, 'completed', 'status');
    assertEq(done.summary, 'a|b', 'summary');
    const text = await ctx.toolError('send_message', { task_id: id, message: 'c' });
    assert(text.includes('not running'), `send_message to a finished task: the error does not say "not running": ${brief(text)}`);
}

async function taskStop(ctx) {
    const started = await ctx.ok('task', { subagent: 'echo', prompt: 'until-cancel', run_in_background: true }, { timeout: SHORT_CALL_TIMEOUT_MS });
    const id = started.task_id;
    assert(typeof id === 'string', `background task: no task id: ${brief(started)}`);
    const stopped = await ctx.ok('task_stop', { task_id: id });
    assertEq(stopped.task_id, id, 'task_stop task_id');
    assertEq(stopped.status, 'cancelled', 'task_stop status');
}

async function cancelNotification(ctx) {
    const description = `ts cancel ${process.pid}-${Date.now()}`;
    const abort = new AbortController();
    const call = ctx.call('task', { subagent: 'echo', prompt: 'until-cancel', description }, { signal: abort.signal });
    const outcome = call.then(
        result => ({ result }),
        error => ({ error })
    );

    // Find the host task by its description while it runs.
    let seen = [];
    const entry = await pollUntil(30_000, 200, async () => {
        const early = await Promise.race([outcome, sleep(0).then(() => null)]);
        if (early) throw new AssertionFailed(`the foreground until-cancel task ended before it was cancelled: ${brief(early.result ?? errorText(early.error))}`);
        const listed = await ctx.ok('list_tasks', { subagent: 'echo', status: 'running' }, { timeout: SHORT_CALL_TIMEOUT_MS });
        seen = listed.tasks ?? [];
        return seen.find(t => t.description === description);
    });
    assert(entry, `list_tasks {subagent: echo, status: running} never showed a task described "${description}"; it showed ${brief(seen)}`);
    const id = entry.task_id;
    ctx.saw(id);

    abort.abort('the TS client cancels');
    const ended = await outcome;
    assert(ended.error, `the aborted call resolved instead of rejecting: ${brief(ended.result)}`);

    let last;
    const cancelled = await pollUntil(CANCEL_WITHIN_MS, 200, async () => {
        const listed = await ctx.ok('list_tasks', { subagent: 'echo' }, { timeout: SHORT_CALL_TIMEOUT_MS });
        last = (listed.tasks ?? []).find(t => t.task_id === id);
        return last?.status === 'cancelled';
    });
    assert(cancelled, `${id} is not cancelled ${CANCEL_WITHIN_MS / 1000} s after notifications/cancelled; list_tasks shows ${brief(last)}`);
}

// The tasks extension, spoken through the SDK's generic `request` with these schemas.
const TaskStatus = z.enum(['working', 'input_required', 'completed', 'failed', 'cancelled']);
const CreateTaskResult = z.looseObject({
    resultType: z.string(),
    taskId: z.string().optional(), // SEP-2663 final: the task flattened into the result
    task: z.looseObject({ taskId: z.string() }).optional(), // an earlier draft: nested
    status: TaskStatus.optional(),
    pollIntervalMs: z.number().optional()
});
const GetTaskResult = z.looseObject({
    taskId: z.string(),
    status: TaskStatus,
    pollIntervalMs: z.number().optional(),
    result: z.looseObject({}).optional(),
    error: z.looseObject({}).optional()
});
const TaskAck = z.looseObject({});

async function mcpTasks(ctx) {
    const { client } = await ctx.server.connect({ name: 'subagent-mcp-ts-tasks', capabilities: { extensions: { [TASKS_EXTENSION]: {} } } });
    try {
        const ext = client.getServerCapabilities()?.extensions?.[TASKS_EXTENSION];
        assert(ext, `the server does not declare the ${TASKS_EXTENSION} extension: ${brief(client.getServerCapabilities())}`);

        const start = async prompt => {
            const created = await client.request(
                { method: 'tools/call', params: { name: 'task', arguments: { subagent: 'echo', prompt } } },
                CreateTaskResult,
                { timeout: SHORT_CALL_TIMEOUT_MS }
            );
            assertEq(created.resultType, 'task', `tools/call task echo "${prompt}" with the tasks extension: resultType`);
            let taskId = created.taskId;
            if (taskId === undefined && created.task) {
                taskId = created.task.taskId;
                console.error(`note: CreateTaskResult nests the task (\`task.taskId\`); SEP-2663 final flattens it (\`taskId\`)`);
            }
            assert(typeof taskId === 'string' && taskId.startsWith('t-'), `CreateTaskResult has no host task id: ${brief(created)}`);
            ctx.saw(taskId);
            return { taskId, interval: created.pollIntervalMs };
        };
        const get = taskId => client.request({ method: 'tasks/get', params: { taskId } }, GetTaskResult, { timeout: SHORT_CALL_TIMEOUT_MS });
        const pollTo = async (taskId, interval, wanted, ms) => {
            let last;
            const reached = await pollUntil(ms, Math.min(Math.max(interval ?? 200, 50), 1_000), async () => {
                last = await get(taskId);
                assertEq(last.taskId, taskId, 'tasks/get taskId');
                if (last.status !== wanted && ['completed', 'failed', 'cancelled'].includes(last.status)) {
                    throw new AssertionFailed(`tasks/get ${taskId}: ended ${last.status}, expected ${wanted}: ${brief(last)}`);
                }
                return last.status === wanted;
            });
            assert(reached, `tasks/get ${taskId} did not reach ${wanted} in ${ms / 1000} s: ${brief(last)}`);
            return last;
        };

        // A task that completes: its result is the `task` tool's CallToolResult.
        const first = await start('progress 2');
        const done = await pollTo(first.taskId, first.interval, 'completed', 60_000);
        assert(done.result, `a completed task has no result: ${brief(done)}`);
        const result = CallToolResultSchema.parse(done.result);
        assertEq(result.structuredContent?.summary, '2 rounds', 'the completed task\'s structuredContent.summary');
        assertEq(result.structuredContent?.task_id, first.taskId, 'the completed task\'s structuredContent.task_id');
        assert(!result.isError, `the completed task's result isError: ${brief(result)}`);

        // A task cancelled with tasks/cancel.
        const second = await start('until-cancel');
        await client.request({ method: 'tasks/cancel', params: { taskId: second.taskId } }, TaskAck, { timeout: SHORT_CALL_TIMEOUT_MS });
        await pollTo(second.taskId, second.interval, 'cancelled', 30_000);
    } finally {
        client.onerror = () => {}; // the connection going down is no news
        await client.transport?.terminateSession?.().catch(() => {});
        await client.close().catch(() => {});
    }
}

async function listChanged(ctx) {
    const caps = ctx.client.getServerCapabilities();
    assert(caps?.tools?.listChanged === true, `the server does not declare tools.listChanged: ${brief(caps)}`);
    const target = path.join(ctx.env.agentsDir, 'late-arrival');
    assert(!fs.existsSync(target), `${target} exists already (left from an earlier run?)`);

    const since = Date.now();
    fs.cpSync(ctx.env.extraBundle, target, { recursive: true });
    const deadline = since + LIST_CHANGED_WITHIN_MS;
    let description = '';
    let notified = false;
    // A copy is not atomic: a first notification may come before the whole bundle is there, so
    // look again after each later notification, all within the contract's 30 s.
    for (let after = since; Date.now() < deadline;) {
        if (!(await ctx.waitListChanged(after, deadline - Date.now()))) break;
        notified = true;
        after = Date.now();
        const { tools } = await ctx.client.listTools(undefined, { timeout: SHORT_CALL_TIMEOUT_MS });
        description = tools.find(t => t.name === 'task')?.description ?? '';
        if (/(^|\n)\s*- late-arrival: /.test(description)) return;
    }
    assert(notified, `no notifications/tools/list_changed within ${LIST_CHANGED_WITHIN_MS / 1000} s of adding ${target}`);
    throw new AssertionFailed(`after notifications/tools/list_changed, task's description does not list \`- late-arrival: …\`: ${brief(description, 1000)}`);
}

async function writeEscalation(ctx) {
    for (const dir of ['/etc', 'elsewhere']) {
        try {
            const text = await ctx.toolError('task', { subagent: 'echo', prompt: 'task', write_dirs: [dir] });
            ctx.expect(NAMES_OUT.test(text), `write_dirs ["${dir}"]: the error does not name the grant (out): ${brief(text)}`);
        } catch (e) {
            if (!(e instanceof AssertionFailed)) throw e;
            ctx.expect(false, `write_dirs ["${dir}"]: ${e.message}`);
        }
    }
    const sc = checkTaskResult(ctx, await ctx.call('task', { subagent: 'echo', prompt: 'task', write_dirs: ['out'] }), 'completed', 'write_dirs ["out"]');
    const dirs = sc.data?.writable_dirs;
    assert(Array.isArray(dirs) && dirs.length === 1 && path.posix.basename(dirs[0]) === 'out', `data.writable_dirs should list only out: ${brief(dirs)}`);
}

async function malformed(ctx) {
    // A real task id, for the task_output case (so the offset is what is wrong).
    const hello = checkTaskResult(ctx, await ctx.call('task', { subagent: 'hello', prompt: 'hi' }), 'completed', 'task hello');
    assert(/hello/i.test(hello.summary ?? ''), `hello's summary does not greet: ${brief(hello.summary)}`);

    const unknownId = 't-000000000000-000000';
    const cases = [
        ['unknown subagent `ech`', () => ctx.refused('task', { subagent: 'ech', prompt: 'x' }), /\becho\b/],
        ['missing prompt', () => ctx.refused('task', { subagent: 'echo' }), /prompt/],
        ['prompt a number', () => ctx.refused('task', { subagent: 'echo', prompt: 42 }), /prompt/],
        ['timeout "soon"', () => ctx.refused('task', { subagent: 'echo', prompt: 'task', timeout: 'soon' }), /timeout|soon/],
        ['timeout -1', () => ctx.refused('task', { subagent: 'echo', prompt: 'task', timeout: -1 }), /timeout/],
        ['await_tasks []', () => ctx.refused('await_tasks', { task_ids: [] }), /task_ids|empty|at least/i],
        [
            'await_tasks unknown id',
            async () => {
                const sc = await ctx.ok('await_tasks', { task_ids: [unknownId], timeout: 1 }, { timeout: SHORT_CALL_TIMEOUT_MS });
                assertEq(sc.missing, [unknownId], 'missing');
                assertEq(sc.completed, [], 'completed');
                assertEq(sc.pending, [], 'pending');
                return null;
            }
        ],
        ['send_message unknown id', () => ctx.refused('send_message', { task_id: unknownId, message: 'x' }), new RegExp(`${unknownId}|unknown|not found|no such`, 'i')],
        ['task_output offset -5', () => ctx.refused('task_output', { task_id: hello.task_id, offset: -5 }), /offset/],
        [
            'unknown tool no_such_tool',
            async () => {
                try {
                    const result = await ctx.client.callTool({ name: 'no_such_tool', arguments: {} }, CallToolResultSchema, { timeout: SHORT_CALL_TIMEOUT_MS });
                    throw new AssertionFailed(`expected a JSON-RPC error, got ${brief(result)}`);
                } catch (e) {
                    if (e instanceof AssertionFailed) throw e;
                    assert(e instanceof McpError, `expected a JSON-RPC error, got ${errorText(e)}`);
                    return errorText(e);
                }
            },
            /no_such_tool|unknown tool|not found/i
        ],
        ['workspace "/"', () => ctx.refused('task', { subagent: 'echo', prompt: 'task', workspace: '/' }), /workspace/]
    ];

    const failures = [];
    for (const [what, run, expected] of cases) {
        try {
            const message = await run();
            if (expected) assert(expected.test(message), `the message does not match ${expected}: ${brief(message)}`);
        } catch (e) {
            failures.push(`${what}: ${errorText(e)}`);
        }
    }
    // The server still answers.
    try {
        const sc = await ctx.ok('list_subagents', {}, { timeout: SHORT_CALL_TIMEOUT_MS });
        assert(Array.isArray(sc.subagents) && sc.subagents.some(s => s.name === 'echo'), `list_subagents afterwards: ${brief(sc)}`);
    } catch (e) {
        failures.push(`list_subagents afterwards: ${errorText(e)}`);
    }
    assert(failures.length === 0, failures.join('; '));
}

const SCENARIOS = [
    ['list-tools', listTools],
    ['list-subagents', listSubagents],
    ['foreground-progress', foregroundProgress],
    ['background-await-output', backgroundAwaitOutput],
    ['send-message', sendMessage],
    ['task-stop', taskStop],
    ['cancel-notification', cancelNotification],
    ['mcp-tasks', mcpTasks],
    ['list-changed', listChanged],
    ['write-escalation', writeEscalation],
    ['malformed', malformed]
];

// ---------------------------------------------------------------------------------------------
// The harness

async function main() {
    const env = readEnv();
    const tail = new Tail();
    const passed = [];
    const failed = [];
    let ctx;
    let server;

    // A scenario that timed out leaves its requests behind; they must not kill the run.
    process.on('unhandledRejection', e => sdkErrors.push(`unhandled rejection: ${errorText(e)}`));

    try {
        server = await startServer(env, tail);
        ctx = new Context(env, server, await server.connect());
    } catch (e) {
        console.error(`FAIL setup (${env.transport}): ${errorText(e)}`);
        failed.push('setup');
    }

    if (ctx) {
        for (const [name, run] of SCENARIOS) {
            const started = Date.now();
            ctx.soft = [];
            try {
                await withTimeout(run(ctx), SCENARIO_TIMEOUT_MS, name);
                if (ctx.soft.length > 0) throw new AssertionFailed(ctx.soft.join('; '));
                passed.push(name);
                console.error(`ok   ${name} (${env.transport}, ${Date.now() - started} ms)`);
            } catch (e) {
                failed.push(name);
                console.error(`FAIL ${name} (${env.transport}): ${errorText(e)}`);
            }
        }
    }

    closing = true;
    await server?.close().catch(e => console.error(`closing the server: ${errorText(e)}`));

    fs.writeFileSync(env.report, JSON.stringify({ passed, task_ids: [...(ctx?.taskIds ?? [])] }, null, 2) + '\n');

    if (failed.length > 0) {
        if (sdkErrors.length > 0) console.error(`--- SDK errors:\n${sdkErrors.slice(-40).join('\n')}`);
        if (tail.lines.length > 0) console.error(`--- last lines of the server's stderr:\n${tail.lines.slice(-80).join('\n')}`);
        console.error(`${failed.length} failed (${env.transport}): ${failed.join(', ')}`);
        return 1;
    }
    console.error(`all ${passed.length} scenarios passed (${env.transport})`);
    return 0;
}

main().then(
    code => process.exit(code),
    e => {
        console.error(`client crashed: ${e?.stack ?? e}`);
        process.exit(1);
    }
);
