// The JavaScript SDK for subagent-host: write a subagent as an ES module,
// build it with componentize-js against the `subagent-js` world (wit/).
//
//   import { subagent, log, fs } from "./subagent-sdk/index.js";
//
//   export const run = subagent((task) => {
//     log.info(`task ${task.id} started`);
//     return `Hello, ${task.prompt}! ${fs.list(".").length} top-level entries.`;
//   });
//
// Mirrors the Rust SDK (plugins/sdk): log, progress, messages, cancelled,
// children, model, and `fs` for the workspace mounted at /workspace.
// Nothing here runs at import time: componentize-js evaluates the module
// once while building (under Wizer), where no host exists yet.

import * as host from "subagent:plugin/host@0.1.0";
import * as subagents from "subagent:plugin/subagents@0.1.0";
import * as wasiModel from "subagent:plugin/model@0.1.0";
import { getDirectories } from "wasi:filesystem/preopens@0.2.12";

/** Where the host mounts the workspace inside the guest. */
export const WORKSPACE = "/workspace";

// ---------------------------------------------------------------------------
// Errors

/** Throw it from `run`: the task cannot be done as asked (run-error `invalid-input`). */
export class InvalidInput extends Error {
  constructor(message) {
    super(message);
    this.name = "InvalidInput";
  }
}

/** Throw it from `run` after seeing `cancelled()` (run-error `cancelled`). */
export class Cancelled extends Error {
  constructor(message = "cancelled") {
    super(message);
    this.name = "Cancelled";
  }
}

/** A `children` call failed; `kind` is the WIT case (`denied`, `not-found`, …). */
export class SubagentError extends Error {
  constructor(kind, detail) {
    super(`${kind.replaceAll("-", " ")}: ${detail}`);
    this.name = "SubagentError";
    this.kind = kind;
    this.detail = detail;
  }
}

/** A `model.complete` call failed; `kind` is the WIT case (`denied`, `rate-limited`, …). */
export class ModelError extends Error {
  constructor(kind, detail, retryAfterMs) {
    const wait = retryAfterMs === undefined ? "" : ` (retry after ${retryAfterMs} ms)`;
    super(`${kind.replaceAll("-", " ")}: ${detail}${wait}`);
    this.name = "ModelError";
    this.kind = kind;
    this.detail = detail;
    this.retryAfterMs = retryAfterMs;
  }
}

/** A file operation failed; `code` is the WASI error code (`not-permitted`, `no-entry`, …). */
export class FsError extends Error {
  constructor(op, path, code, hint) {
    const what = FS_CODES[code] ?? code;
    super(`cannot ${op} ${path}: ${what} (${code})${hint ? `; ${hint}` : ""}`);
    this.name = "FsError";
    this.op = op;
    this.path = path;
    this.code = code;
  }
}

const FS_CODES = {
  access: "permission denied",
  "not-permitted": "not permitted",
  "read-only": "read-only file system",
  "no-entry": "no such file or directory",
  exist: "already exists",
  "is-directory": "is a directory",
  "not-directory": "not a directory",
  "not-empty": "directory not empty",
  "insufficient-space": "no space left (limits.disk)",
  quota: "quota exceeded (limits.files or limits.open_files)",
  "name-too-long": "name too long",
  loop: "too many symbolic links",
  "illegal-byte-sequence": "not valid UTF-8",
  io: "I/O error",
  invalid: "invalid argument",
};

const DENIED = new Set(["access", "not-permitted", "read-only"]);

/** The payload of an error thrown by a generated binding (a `ComponentError`). */
function payload(err) {
  if (err !== null && typeof err === "object" && "payload" in err) return err.payload;
  throw err;
}

// ---------------------------------------------------------------------------
// run

/** The task being run (one per instance), for error hints. */
let current = null;

/**
 * Wrap `handler(task)` as the component's `run` export:
 *
 *   export const run = subagent((task) => ...);
 *
 * `handler` may be async. It returns a summary string or
 * `{ summary, data }` (data: any JSON-serializable value). Throwing
 * `InvalidInput` ends the task `invalid-input`, `Cancelled` ends it
 * `cancelled`; any other thrown value ends it `failed` with the error's
 * headline (`TypeError: x is undefined`), and its stack is logged.
 */
export function subagent(handler) {
  if (typeof handler !== "function") {
    throw new TypeError("subagent(handler): handler must be a function (task) => outcome");
  }
  return async function run(task) {
    current = task;
    try {
      return { tag: "ok", val: outcome(await handler(task)) };
    } catch (err) {
      return { tag: "err", val: runError(err) };
    }
  };
}

function outcome(value) {
  if (typeof value === "string") return { summary: value, data: undefined };
  if (value !== null && typeof value === "object" && typeof value.summary === "string") {
    if (value.data === undefined || value.data === null) {
      return { summary: value.summary, data: undefined };
    }
    const data = JSON.stringify(value.data);
    if (data === undefined) {
      throw new TypeError("the outcome's data is not JSON-serializable");
    }
    return { summary: value.summary, data };
  }
  throw new TypeError(
    `run returned ${describe(value)}; return a summary string or { summary, data }`,
  );
}

function runError(err) {
  if (err instanceof InvalidInput) return { tag: "invalid-input", val: err.message };
  if (err instanceof Cancelled) return { tag: "cancelled" };
  const headline = headlineOf(err);
  // The stack, without the frames of the generated bindings.
  const stack =
    err instanceof Error && typeof err.stack === "string"
      ? err.stack
          .split("\n")
          .filter((line) => line.trim() !== "" && !line.includes("/sources/initializer.js"))
          .join("\n")
      : "";
  host.log("error", stack ? `${headline}\n${stack}` : headline);
  return { tag: "failed", val: headline };
}

function headlineOf(err) {
  if (err instanceof Error) {
    try {
      return String(err);
    } catch {
      return err.name || "Error";
    }
  }
  return `uncaught ${describe(err)}`;
}

function describe(value) {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || typeof value !== "object") return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

// ---------------------------------------------------------------------------
// host: log, progress, messages, cancellation

/** Log lines, recorded in the task's event stream. */
export const log = {
  debug: (message) => host.log("debug", String(message)),
  info: (message) => host.log("info", String(message)),
  warn: (message) => host.log("warn", String(message)),
  error: (message) => host.log("error", String(message)),
};

/** Progress events, shown live by the CLI. */
export const progress = {
  /** A free-form note, such as "scanned 120 files". */
  note: (text) => host.progress({ tag: "note", val: String(text) }),
  /** An agent loop starts round `n` (1-based). */
  round: (n) => host.progress({ tag: "round", val: n >>> 0 }),
  /** The subagent calls tool `name` with `args` (any JSON-serializable value). */
  tool: (name, args = {}) =>
    host.progress({ tag: "tool", val: { name: String(name), args: JSON.stringify(args) ?? "null" } }),
};

/** Follow-up messages sent to this task while it runs. */
export const messages = {
  /** The next waiting message, or `undefined`; never blocks. */
  next: () => host.nextMessage() ?? undefined,
  /** Wait up to `timeoutMs` for a message; `undefined` on timeout or once cancelled. */
  wait: (timeoutMs) => host.waitMessage(u64(timeoutMs, "timeoutMs")) ?? undefined,
};

/** True once the task has been asked to stop: throw `new Cancelled()` soon after. */
export function cancelled() {
  return host.cancelled();
}

function u64(ms, name) {
  if (typeof ms === "bigint") return ms < 0n ? 0n : ms;
  if (typeof ms !== "number" || Number.isNaN(ms)) {
    throw new TypeError(`${name} must be a number of milliseconds, not ${describe(ms)}`);
  }
  if (ms === Infinity) return 0xffff_ffff_ffff_ffffn;
  return BigInt(Math.max(0, Math.floor(ms)));
}

// ---------------------------------------------------------------------------
// children

function subagentCall(f) {
  try {
    return f();
  } catch (err) {
    const e = payload(err);
    throw new SubagentError(e.tag, e.val);
  }
}

/** Child subagents, for subagents whose manifest grants `tools = ["subagents"]`. */
export const children = {
  /**
   * Launch `name` on `prompt` in the background; returns its task id.
   * `options`: { description, writeDirs, readonly, timeoutMs, model }.
   */
  launch(name, prompt, options = {}) {
    const request = {
      subagent: String(name),
      prompt: String(prompt),
      description: options.description,
      writeDirs: options.writeDirs,
      readonly: Boolean(options.readonly),
      timeoutMs: options.timeoutMs === undefined ? undefined : u64(options.timeoutMs, "timeoutMs"),
      model: options.model,
    };
    return subagentCall(() => subagents.launch(request));
  },

  /**
   * Wait until all `ids` have finished, or `timeoutMs` passes (default: no
   * limit but the task's own). Returns { completed, pending, missing };
   * each completed child is { id, status, summary, data, errorKind, errorMessage }
   * with `data` parsed from JSON.
   */
  wait(ids, timeoutMs) {
    const timeout = timeoutMs === undefined ? undefined : u64(timeoutMs, "timeoutMs");
    const answer = subagentCall(() => subagents.awaitTasks(ids.map(String), timeout));
    return {
      completed: answer.completed.map((child) => ({
        ...child,
        data: child.data === undefined ? undefined : JSON.parse(child.data),
      })),
      pending: answer.pending,
      missing: answer.missing,
    };
  },

  /** Cancel a child and its descendants. */
  cancel(id) {
    subagentCall(() => subagents.cancel(String(id)));
  },

  /** Send a follow-up message to a queued or running child. */
  send(id, text) {
    subagentCall(() => subagents.send(String(id), String(text)));
  },
};

// ---------------------------------------------------------------------------
// model

function message(role, content, toolCalls = [], toolCallId = undefined) {
  return { role, content: String(content), toolCalls, toolCallId };
}

/** Model calls, for subagents whose manifest grants `tools = ["model"]`. */
export const model = {
  /** A system message. */
  system: (text) => message("system", text),
  /** A user message. */
  user: (text) => message("user", text),
  /** An assistant message: echo a response's `content` and `toolCalls` into the history. */
  assistant: (text, toolCalls = []) => message("assistant", text, toolCalls),
  /** The result of the tool call with id `callId`. */
  toolResult: (callId, text) => message("tool", text, [], String(callId)),
  /** A tool whose arguments object is described by the JSON Schema `schema`. */
  tool: (name, description, schema) => ({
    name: String(name),
    description: String(description),
    parameters: typeof schema === "string" ? schema : JSON.stringify(schema),
  }),
  /** A tool call's arguments, parsed (`{}` when the model sent none). */
  args: (call) => (call.arguments.trim() === "" ? {} : JSON.parse(call.arguments)),

  /**
   * One chat completion with the task's effective model.
   * `request`: { messages, tools?, maxTokens?, temperature? }.
   * Returns { content, toolCalls, stopReason, usage: { inputTokens, outputTokens }, model }.
   * Throws `ModelError` (`denied` without the grant, `budget-exceeded`, …).
   */
  complete(request) {
    const wire = {
      messages: request.messages.map((m) =>
        message(m.role, m.content, m.toolCalls ?? [], m.toolCallId),
      ),
      tools: request.tools ?? [],
      maxTokens: request.maxTokens,
      temperature: request.temperature,
    };
    let response;
    try {
      response = wasiModel.complete(wire);
    } catch (err) {
      const e = payload(err);
      if (e.tag === "rate-limited") {
        const after = e.val.retryAfterMs === undefined ? undefined : Number(e.val.retryAfterMs);
        throw new ModelError(e.tag, e.val.message, after);
      }
      throw new ModelError(e.tag, e.val);
    }
    return {
      ...response,
      usage: {
        inputTokens: Number(response.usage.inputTokens),
        outputTokens: Number(response.usage.outputTokens),
      },
    };
  },
};

// ---------------------------------------------------------------------------
// fs: the workspace, through wasi:filesystem

const dispose = Symbol.dispose ?? Symbol.for("dispose");
const CHUNK = 64 * 1024;

/** Directory names `fs.walk` leaves out unless told otherwise. */
export const SKIPPED_DIRS = [".git", "target", "node_modules"];

/** The preopened directories, longest path first; fetched once per task. */
let preopened = null;

function preopens() {
  if (preopened === null) {
    preopened = getDirectories()
      .map(([descriptor, path]) => ({ descriptor, path: normalize(path) }))
      .sort((a, b) => b.path.length - a.path.length);
  }
  return preopened;
}

/** `path` as an absolute guest path without `.`, `..` or repeated `/`. */
function normalize(path) {
  const parts = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** Resolve `path` (absolute, or relative to /workspace) to an absolute guest path. */
function resolve(path) {
  if (typeof path !== "string" || path === "") {
    throw new TypeError(`a path must be a non-empty string, not ${describe(path)}`);
  }
  return normalize(path.startsWith("/") ? path : `${WORKSPACE}/${path}`);
}

function writeHint() {
  const dirs = current?.writableDirs ?? [];
  return dirs.length === 0
    ? "this subagent may not write anything (readonly)"
    : `this subagent may write only under ${dirs.join(", ")}`;
}

/**
 * Call `f(dir, rel)` with the preopen that holds `path` (the longest match,
 * as wasi-libc resolves) and the path relative to it, turning WASI errors
 * into `FsError`s.
 */
function at(op, path, f, writing = false) {
  const abs = resolve(path);
  const open = preopens().find(
    (p) => abs === p.path || p.path === "/" || abs.startsWith(`${p.path}/`),
  );
  if (open === undefined) {
    throw new FsError(op, abs, "no-entry", `only ${WORKSPACE} exists in the sandbox`);
  }
  const rel = abs === open.path ? "." : abs.slice(open.path === "/" ? 1 : open.path.length + 1);
  try {
    return f(open.descriptor, rel, abs);
  } catch (err) {
    if (err instanceof FsError) throw err;
    const code = payload(err);
    if (typeof code !== "string") throw err;
    throw new FsError(op, abs, code, writing && DENIED.has(code) ? writeHint() : undefined);
  }
}

function using(descriptor, f) {
  try {
    return f(descriptor);
  } finally {
    descriptor[dispose]();
  }
}

const FOLLOW = { symlinkFollow: true };

function typeName(type) {
  switch (type) {
    case "regular-file":
      return "file";
    case "directory":
      return "directory";
    case "symbolic-link":
      return "symlink";
    default:
      return "other";
  }
}

function readAll(file) {
  const chunks = [];
  let total = 0;
  let offset = 0n;
  for (;;) {
    const [bytes, end] = file.read(BigInt(CHUNK), offset);
    if (bytes.length > 0) {
      chunks.push(bytes);
      total += bytes.length;
      offset += BigInt(bytes.length);
    }
    if (end || bytes.length === 0) break;
  }
  const all = new Uint8Array(total);
  let pos = 0;
  for (const chunk of chunks) {
    all.set(chunk, pos);
    pos += chunk.length;
  }
  return all;
}

/** Files under /workspace, through the grants of the manifest (read-only except write dirs). */
export const fs = {
  /** Resolve `path` (absolute, or relative to /workspace) to the absolute guest path. */
  resolve,

  /** The bytes of file `path`. */
  readBytes(path) {
    return at("read", path, (dir, rel) =>
      using(dir.openAt(FOLLOW, rel, {}, { read: true }), readAll),
    );
  },

  /** The text of file `path` (UTF-8; invalid bytes become U+FFFD). */
  readText(path) {
    return new TextDecoder().decode(fs.readBytes(path));
  },

  /** Create or replace file `path` with `bytes` (a Uint8Array). */
  writeBytes(path, bytes) {
    at(
      "write",
      path,
      (dir, rel) =>
        using(dir.openAt(FOLLOW, rel, { create: true, truncate: true }, { write: true }), (file) => {
          let offset = 0;
          while (offset < bytes.length) {
            const n = Number(file.write(bytes.subarray(offset, offset + CHUNK), BigInt(offset)));
            if (n === 0) throw new Error(`cannot write ${resolve(path)}: the host wrote nothing`);
            offset += n;
          }
        }),
      true,
    );
  },

  /** Create or replace file `path` with `text`, as UTF-8. */
  writeText(path, text) {
    fs.writeBytes(path, new TextEncoder().encode(String(text)));
  },

  /** { type: "file" | "directory" | "symlink" | "other", size } of `path`, following symlinks. */
  stat(path) {
    return at("stat", path, (dir, rel) => {
      const stat = dir.statAt(FOLLOW, rel);
      return { type: typeName(stat.type), size: Number(stat.size) };
    });
  },

  /** True when `path` exists (following symlinks). */
  exists(path) {
    try {
      fs.stat(path);
      return true;
    } catch (err) {
      if (err instanceof FsError && (err.code === "no-entry" || err.code === "not-directory")) {
        return false;
      }
      throw err;
    }
  },

  /** The entries of directory `dir`, sorted by name: [{ name, type }]. */
  list(dir = WORKSPACE) {
    return at("list", dir, (base, rel) =>
      using(base.openAt(FOLLOW, rel, { directory: true }, { read: true }), (d) =>
        using(d.readDirectory(), (stream) => {
          const entries = [];
          for (let e = stream.readDirectoryEntry(); e; e = stream.readDirectoryEntry()) {
            entries.push({ name: e.name, type: typeName(e.type) });
          }
          return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        }),
      ),
    );
  },

  /**
   * The regular files below `dir`, depth first in name order, as
   * { path (relative to dir, "/"-separated), absolute }. Symlinks are never
   * followed; directories named in `options.skipDirs` (default SKIPPED_DIRS)
   * are left out, and so is any directory for which `options.skip(path)` is true.
   * Holds one directory open at a time.
   */
  *walk(dir = WORKSPACE, options = {}) {
    const root = resolve(dir);
    const skipDirs = new Set(options.skipDirs ?? SKIPPED_DIRS);
    const skip = options.skip ?? (() => false);
    const base = root === "/" ? "" : root;
    // Entries still to visit as { path, type }; the next is last.
    const pending = [];
    const push = (rel) => {
      const entries = fs.list(rel === "" ? root : `${base}/${rel}`);
      for (let i = entries.length - 1; i >= 0; i--) {
        const { name, type } = entries[i];
        pending.push({ path: rel === "" ? name : `${rel}/${name}`, name, type });
      }
    };
    push("");
    while (pending.length > 0) {
      const entry = pending.pop();
      if (entry.type === "file") {
        yield { path: entry.path, absolute: `${base}/${entry.path}` };
      } else if (entry.type === "directory" && !skipDirs.has(entry.name) && !skip(entry.path)) {
        push(entry.path);
      }
    }
  },

  /** Create directory `path` (and its parents with `{ recursive: true }`). */
  mkdir(path, options = {}) {
    const abs = resolve(path);
    const targets = [abs];
    if (options.recursive) {
      targets.length = 0;
      const parts = abs.split("/").filter(Boolean);
      for (let i = 1; i <= parts.length; i++) targets.push(`/${parts.slice(0, i).join("/")}`);
    }
    for (const target of targets) {
      const made = () =>
        at("create directory", target, (dir, rel) => dir.createDirectoryAt(rel), true);
      if (options.recursive) {
        if (fs.exists(target)) continue;
      }
      made();
    }
  },

  /** Delete file `path`, or `path` if it is an empty directory. */
  remove(path) {
    at(
      "remove",
      path,
      (dir, rel) => {
        const stat = dir.statAt({}, rel);
        if (stat.type === "directory") dir.removeDirectoryAt(rel);
        else dir.unlinkFileAt(rel);
      },
      true,
    );
  },
};
