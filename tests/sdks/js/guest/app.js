// The JavaScript SDK's test guest. The prompt's first word picks what to do;
// the rest is its argument.

import {
  Cancelled,
  FsError,
  InvalidInput,
  cancelled,
  children,
  fs,
  log,
  messages,
  model,
  progress,
  subagent,
} from "../../../../plugins/sdk-js/index.js";

const actions = {
  // Write `arg`; report the error as data instead of failing.
  write(path) {
    try {
      fs.writeText(path, "written by the js guest\n");
      return { summary: `wrote ${path}`, data: { ok: true, path: fs.resolve(path) } };
    } catch (err) {
      return {
        summary: err.message,
        data: {
          ok: false,
          isError: err instanceof Error,
          isFsError: err instanceof FsError,
          name: err.name,
          code: err.code,
          message: err.message,
        },
      };
    }
  },

  // Write `arg`, letting the error end the run.
  "write-or-fail"(path) {
    fs.writeText(path, "x");
    return "wrote it";
  },

  // Read and list through the SDK.
  read(path) {
    const text = fs.readText(path);
    const files = [...fs.walk(".")].map((f) => f.path);
    return { summary: text, data: { files, top: fs.list(".") } };
  },

  // Make a directory tree and files in it, then remove one.
  tree(dir) {
    fs.mkdir(`${dir}/a/b`, { recursive: true });
    fs.writeText(`${dir}/a/b/one.txt`, "one");
    fs.writeBytes(`${dir}/a/two.bin`, new Uint8Array([0, 1, 2, 255]));
    fs.writeText(`${dir}/gone.txt`, "soon gone");
    fs.remove(`${dir}/gone.txt`);
    const big = "0123456789abcdef".repeat(16 * 1024); // 256 KiB: several chunks
    fs.writeText(`${dir}/big.txt`, big);
    return {
      summary: "tree made",
      data: {
        files: [...fs.walk(dir)].map((f) => f.path),
        bytes: [...fs.readBytes(`${dir}/a/two.bin`)],
        bigRoundTrip: fs.readText(`${dir}/big.txt`) === big,
        goneExists: fs.exists(`${dir}/gone.txt`),
        stat: fs.stat(`${dir}/a`),
      },
    };
  },

  throw(message) {
    throw new Error(message);
  },

  "type-error"() {
    const missing = undefined;
    return missing.field;
  },

  "throw-string"(text) {
    throw text;
  },

  invalid(message) {
    throw new InvalidInput(message);
  },

  "bad-return"() {
    return 42;
  },

  // Stop as a cancelled subagent does.
  cancel() {
    throw new Cancelled();
  },

  // Wait for a follow-up message that never comes.
  wait(ms) {
    const message = messages.wait(Number(ms));
    return { summary: "waited", data: { message: message ?? null, cancelled: cancelled() } };
  },

  // An async run: await a timer, then use the host interfaces.
  async async(text) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    log.info(`async run for ${text}`);
    progress.note("halfway");
    progress.round(1);
    progress.tool("echo", { text });
    return { summary: `async ${text}`, data: { next: messages.next() ?? null } };
  },

  // Two rounds with the host's model: a tool call, then its result. The data
  // records what came back, as the SDK hands it over.
  chat(topic) {
    const tools = [
      model.tool("finish", "End the task with a summary.", {
        type: "object",
        properties: { summary: { type: "string" } },
        required: ["summary"],
      }),
    ];
    const history = [
      model.system("You are the JavaScript SDK's test guest."),
      model.user(`Summarize ${topic}.`),
    ];
    const ask = () => model.complete({ messages: history, tools, maxTokens: 256, temperature: 0.2 });
    const seen = (reply) => ({
      content: reply.content,
      toolCalls: reply.toolCalls.map((call) => ({
        id: call.id,
        name: call.name,
        args: model.args(call),
      })),
      stopReason: reply.stopReason,
      usage: reply.usage,
      model: reply.model,
    });
    const first = ask();
    history.push(model.assistant(first.content, first.toolCalls));
    for (const call of first.toolCalls) {
      const { summary } = model.args(call);
      history.push(model.toolResult(call.id, summary === undefined ? "no summary" : `noted: ${summary}`));
    }
    const second = ask();
    return { summary: second.content, data: { first: seen(first), second: seen(second) } };
  },

  // Launch two `hello` children, await both, and message one that does not exist.
  children(name) {
    const ids = [
      children.launch("hello", name),
      children.launch("hello", "again", {
        description: "a readonly hello",
        readonly: true,
        timeoutMs: 60_000,
      }),
    ];
    const answer = children.wait(ids);
    let send;
    try {
      children.send("t-no-such-child", "hello?");
      send = { sent: true };
    } catch (err) {
      send = { name: err.name, kind: err.kind, message: err.message };
    }
    // In launch order, whatever order they finished in.
    const results = ids.map((id) => {
      const child = answer.completed.find((c) => c.id === id);
      if (child === undefined) return { missing: id };
      const { id: _, ...rest } = child;
      return rest;
    });
    return {
      summary: `${answer.completed.length} children done`,
      data: { ids, children: results, pending: answer.pending, missing: answer.missing, send },
    };
  },

  // Capabilities the manifest does not grant: typed errors, not traps.
  denied() {
    const errors = {};
    try {
      children.launch("hello", "x");
    } catch (err) {
      errors.children = { name: err.name, kind: err.kind, message: err.message };
    }
    try {
      model.complete({ messages: [model.user("hi")] });
    } catch (err) {
      errors.model = { name: err.name, kind: err.kind, message: err.message };
    }
    return { summary: "denied as expected", data: errors };
  },
};

export const run = subagent(async (task) => {
  const [word, ...rest] = task.prompt.trim().split(/\s+/);
  const action = actions[word];
  if (action === undefined) {
    throw new InvalidInput(`unknown action \`${word}\`; try one of ${Object.keys(actions).join(", ")}`);
  }
  return await action(rest.join(" "));
});
