// {{name}}: a subagent written in JavaScript (API: subagent-sdk/index.d.ts).
// Build with `subagent build .` (or `npm run build`), then run with
// `subagent run . "your task" --workspace DIR`.

import { fs, log, subagent } from "./subagent-sdk/index.js";

export const run = subagent((task) => {
  log.info(`task ${task.id} started`);
  const entries = fs.list("/workspace");
  return {
    summary: `Hello, ${task.prompt}! The workspace has ${entries.length} top-level entries.`,
    data: { entries: entries.map((entry) => entry.name) },
  };
});
