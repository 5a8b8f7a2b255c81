// Types of the JavaScript SDK for subagent-host (index.js).

/** Where the host mounts the workspace inside the guest. */
export const WORKSPACE: "/workspace";

/** The task a subagent is asked to do (WIT `task`). */
export interface Task {
  /** Host-assigned task id (opaque). */
  id: string;
  /** One-line description given by whoever launched the task. */
  description: string;
  /** The request: what the subagent should do. */
  prompt: string;
  /** The system prompt from the manifest (`prompt` / `prompt_file`), if any. */
  systemPrompt?: string;
  /** Where the workspace is mounted: always `/workspace`. */
  workspace: string;
  /** Guest paths the subagent may write (empty for `readonly`), e.g. `/workspace/reports`. */
  writableDirs: string[];
  /** The effective model alias, if the subagent uses a model. */
  model?: string;
  /** The id of the parent task, for nested subagents. */
  parentId?: string;
}

/** What `run` returns: a summary, or a summary and data (any JSON-serializable value). */
export type Outcome = string | { summary: string; data?: unknown };

/** The component's `run` export, as `subagent()` makes it. */
export type Run = (task: Task) => Promise<unknown>;

/**
 * Wrap `handler` as the component's `run` export:
 *
 * ```js
 * export const run = subagent((task) => `Hello, ${task.prompt}!`);
 * ```
 *
 * Throwing `InvalidInput` ends the task `invalid-input`, `Cancelled` ends it
 * `cancelled`; anything else thrown ends it `failed` with the error's
 * headline (`TypeError: …`), and its stack is logged at level error.
 */
export function subagent(handler: (task: Task) => Outcome | Promise<Outcome>): Run;

/** The task cannot be done as asked (run-error `invalid-input`). */
export class InvalidInput extends Error {
  constructor(message: string);
}

/** The subagent stopped because it saw `cancelled()` (run-error `cancelled`). */
export class Cancelled extends Error {
  constructor(message?: string);
}

export type SubagentErrorKind =
  | "denied"
  | "not-found"
  | "not-running"
  | "depth-limit"
  | "invalid-request"
  | "unavailable";

/** A `children` call failed. `message` is `kind: detail`, e.g. `denied: …`. */
export class SubagentError extends Error {
  readonly kind: SubagentErrorKind;
  readonly detail: string;
}

export type ModelErrorKind =
  | "auth"
  | "rate-limited"
  | "timeout"
  | "bad-request"
  | "unavailable"
  | "denied"
  | "budget-exceeded";

/** A `model.complete` call failed. `message` is `kind: detail`. */
export class ModelError extends Error {
  readonly kind: ModelErrorKind;
  readonly detail: string;
  /** For `rate-limited`: how long the provider asked to wait, if it said. */
  readonly retryAfterMs?: number;
}

/** A WASI filesystem error code, as wasi:filesystem/types names it. */
export type FsErrorCode =
  | "access"
  | "would-block"
  | "already"
  | "bad-descriptor"
  | "busy"
  | "deadlock"
  | "quota"
  | "exist"
  | "file-too-large"
  | "illegal-byte-sequence"
  | "in-progress"
  | "interrupted"
  | "invalid"
  | "io"
  | "is-directory"
  | "loop"
  | "too-many-links"
  | "message-size"
  | "name-too-long"
  | "no-device"
  | "no-entry"
  | "no-lock"
  | "insufficient-memory"
  | "insufficient-space"
  | "not-directory"
  | "not-empty"
  | "not-recoverable"
  | "unsupported"
  | "no-tty"
  | "no-such-device"
  | "overflow"
  | "not-permitted"
  | "pipe"
  | "read-only"
  | "invalid-seek"
  | "text-file-busy"
  | "cross-device";

/**
 * A file operation failed. `message` reads
 * `cannot write /workspace/x: not permitted (not-permitted); this subagent may write only under /workspace/reports`.
 */
export class FsError extends Error {
  /** What was attempted: `read`, `write`, `list`, `stat`, `create directory`, `remove`. */
  readonly op: string;
  /** The absolute guest path. */
  readonly path: string;
  readonly code: FsErrorCode;
}

/** Log lines, recorded in the task's event stream. */
export const log: {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

/** Progress events, shown live by the CLI. */
export const progress: {
  /** A free-form note, such as "scanned 120 files". */
  note(text: string): void;
  /** An agent loop starts round `n` (1-based). */
  round(n: number): void;
  /** The subagent calls tool `name` with `args` (any JSON-serializable value). */
  tool(name: string, args?: unknown): void;
};

/** Follow-up messages sent to this task while it runs. */
export const messages: {
  /** The next waiting message, or `undefined`; never blocks. */
  next(): string | undefined;
  /** Wait up to `timeoutMs` for a message; `undefined` on timeout, and at once when cancelled. */
  wait(timeoutMs: number): string | undefined;
};

/** True once the task has been asked to stop: throw `new Cancelled()` soon after. */
export function cancelled(): boolean;

export interface LaunchOptions {
  /** One line for listings; defaults to the subagent's description. */
  description?: string;
  /** Narrow the child's writable directories (workspace-relative). */
  writeDirs?: string[];
  /** Let the child write nothing. */
  readonly?: boolean;
  /** Replace the child's timeout (still capped by the caller's deadline). */
  timeoutMs?: number;
  /** Model override; `inherit` takes the caller's. */
  model?: string;
}

export type TaskStatus =
  | "queued"
  | "running"
  | "completed"
  | "failed"
  | "cancelled"
  | "timed-out"
  | "interrupted";

/** A finished child's result; `data` is parsed from JSON. */
export interface ChildResult {
  id: string;
  status: TaskStatus;
  summary?: string;
  data?: unknown;
  /** For failures: the typed kind (`timeout`, `memory`, `trap`, …) and message. */
  errorKind?: string;
  errorMessage?: string;
}

export interface AwaitResult {
  completed: ChildResult[];
  pending: string[];
  missing: string[];
}

/** Child subagents, for subagents whose manifest grants `tools = ["subagents"]`. All throw `SubagentError`. */
export const children: {
  /** Launch `subagent` on `prompt` in the background; returns its task id. */
  launch(subagent: string, prompt: string, options?: LaunchOptions): string;
  /** Wait until all `ids` have finished, or `timeoutMs` passes. */
  wait(ids: string[], timeoutMs?: number): AwaitResult;
  /** Cancel a child and its descendants. */
  cancel(id: string): void;
  /** Send a follow-up message to a queued or running child. */
  send(id: string, text: string): void;
};

export type Role = "system" | "user" | "assistant" | "tool";

/** A tool call the model asked for; `arguments` is a JSON document. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface Message {
  role: Role;
  content: string;
  toolCalls?: ToolCall[];
  toolCallId?: string;
}

export interface ToolDefinition {
  name: string;
  description: string;
  /** JSON Schema of the arguments object, as a JSON document. */
  parameters: string;
}

export interface ChatRequest {
  messages: Message[];
  tools?: ToolDefinition[];
  maxTokens?: number;
  temperature?: number;
}

export interface ChatResponse {
  content: string;
  toolCalls: ToolCall[];
  stopReason: "end-turn" | "tool-calls" | "max-tokens" | "other";
  usage: { inputTokens: number; outputTokens: number };
  /** The model that answered, as the provider names it. */
  model: string;
}

/** Model calls, for subagents whose manifest grants `tools = ["model"]`. */
export const model: {
  system(text: string): Message;
  user(text: string): Message;
  /** Echo a response's `content` and `toolCalls` back into the history. */
  assistant(text: string, toolCalls?: ToolCall[]): Message;
  /** The result of the tool call with id `callId`. */
  toolResult(callId: string, text: string): Message;
  /** A tool whose arguments object is described by the JSON Schema `schema` (object or JSON text). */
  tool(name: string, description: string, schema: object | string): ToolDefinition;
  /** A tool call's arguments, parsed (`{}` when the model sent none). */
  args(call: ToolCall): any;
  /** One chat completion with the task's effective model. Throws `ModelError`. */
  complete(request: ChatRequest): ChatResponse;
};

export type EntryType = "file" | "directory" | "symlink" | "other";

export interface WalkOptions {
  /** Directory names left out wherever they appear (default `SKIPPED_DIRS`). */
  skipDirs?: string[];
  /** Leave out the directory at `path` (relative to the walk's root) and all below it. */
  skip?(path: string): boolean;
}

/** Directory names `fs.walk` leaves out by default: `.git`, `target`, `node_modules`. */
export const SKIPPED_DIRS: string[];

/**
 * Files under /workspace, through the manifest's grants: the workspace is
 * read-only except the task's `writableDirs`. Paths are absolute guest paths
 * or relative to /workspace. Every method throws `FsError` on failure.
 */
export const fs: {
  /** The absolute guest path for `path` (`.` and `..` resolved lexically). */
  resolve(path: string): string;
  readBytes(path: string): Uint8Array;
  /** UTF-8; invalid bytes become U+FFFD. */
  readText(path: string): string;
  /** Create or replace the file. */
  writeBytes(path: string, bytes: Uint8Array): void;
  /** Create or replace the file, as UTF-8. */
  writeText(path: string, text: string): void;
  /** Follows symlinks. */
  stat(path: string): { type: EntryType; size: number };
  exists(path: string): boolean;
  /** The entries of a directory, sorted by name. */
  list(dir?: string): { name: string; type: EntryType }[];
  /**
   * The regular files below `dir`, depth first in name order; symlinks are
   * never followed. `path` is relative to `dir`, `absolute` the guest path.
   */
  walk(dir?: string, options?: WalkOptions): Generator<{ path: string; absolute: string }>;
  mkdir(path: string, options?: { recursive?: boolean }): void;
  /** Delete a file, or an empty directory. */
  remove(path: string): void;
};
