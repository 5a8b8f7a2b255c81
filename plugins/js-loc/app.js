// js-loc: count lines of code, comments and blanks per language, and write
// a markdown table to reports/loc.md. The example of the JavaScript SDK.
//
// Input: the prompt names a workspace-relative directory to count ("src");
// "." counts the whole workspace. A directory that does not
// exist is `invalid-input`, and so is a run that may not write reports/.
//
// Files: walked depth first in name order without following symlinks;
// `.git`, `target`, `node_modules` and the top-level `reports/` are skipped,
// as are binary files (a NUL byte in the first 8 KiB), files over 4 MiB and
// files whose extension names no language below. A line is blank when it
// holds only whitespace, a comment when it starts with the language's line
// comment marker (block comments count as code), code otherwise.
//
// Output: reports/loc.md, and the summary
// `Wrote reports/loc.md: 1234 lines in 12 files (Rust 800, JavaScript 434)`
// with the counts as data.

import { Cancelled, InvalidInput, WORKSPACE, cancelled, fs, log, progress, subagent } from "../sdk-js/index.js";

const REPORT = "reports/loc.md";
const MAX_FILE_SIZE = 4 << 20;
const BINARY_SNIFF = 8 << 10;
const PROGRESS_EVERY = 200;

/** extension -> [language, line comment marker (or null)] */
const LANGUAGES = new Map(
  Object.entries({
    rs: ["Rust", "//"],
    js: ["JavaScript", "//"],
    mjs: ["JavaScript", "//"],
    cjs: ["JavaScript", "//"],
    jsx: ["JavaScript", "//"],
    ts: ["TypeScript", "//"],
    tsx: ["TypeScript", "//"],
    go: ["Go", "//"],
    c: ["C", "//"],
    h: ["C", "//"],
    cc: ["C++", "//"],
    cpp: ["C++", "//"],
    hpp: ["C++", "//"],
    java: ["Java", "//"],
    kt: ["Kotlin", "//"],
    swift: ["Swift", "//"],
    wit: ["WIT", "//"],
    py: ["Python", "#"],
    rb: ["Ruby", "#"],
    sh: ["Shell", "#"],
    toml: ["TOML", "#"],
    yaml: ["YAML", "#"],
    yml: ["YAML", "#"],
    sql: ["SQL", "--"],
    lua: ["Lua", "--"],
    md: ["Markdown", null],
    json: ["JSON", null],
    html: ["HTML", null],
    css: ["CSS", null],
  }),
);

export const run = subagent((task) => {
  const dir = target(task.prompt);
  checkWritable(task.writableDirs);

  const counts = new Map(); // language -> { files, code, comment, blank }
  const files = []; // { path, language, lines }
  let skipped = 0;
  let seen = 0;
  const root = dir === "." ? WORKSPACE : `${WORKSPACE}/${dir}`;
  const skip = (path) => dir === "." && path === "reports";
  for (const file of fs.walk(root, { skip })) {
    if (cancelled()) throw new Cancelled();
    seen += 1;
    if (seen % PROGRESS_EVERY === 0) progress.note(`scanned ${seen} files`);
    const path = dir === "." ? file.path : `${dir}/${file.path}`;
    const language = LANGUAGES.get(extension(file.path));
    if (language === undefined || fs.stat(file.absolute).size > MAX_FILE_SIZE) {
      skipped += 1;
      continue;
    }
    const bytes = fs.readBytes(file.absolute);
    if (bytes.subarray(0, BINARY_SNIFF).includes(0)) {
      skipped += 1;
      continue;
    }
    const [name, marker] = language;
    const lines = count(new TextDecoder().decode(bytes), marker);
    const total = counts.get(name) ?? { files: 0, code: 0, comment: 0, blank: 0 };
    total.files += 1;
    total.code += lines.code;
    total.comment += lines.comment;
    total.blank += lines.blank;
    counts.set(name, total);
    files.push({ path, language: name, lines: lines.code + lines.comment + lines.blank });
  }
  progress.note(`done: ${plural(files.length, "file")} counted, ${skipped} skipped`);

  const languages = [...counts.entries()]
    .map(([name, c]) => ({ name, ...c, total: c.code + c.comment + c.blank }))
    .sort((a, b) => b.total - a.total || (a.name < b.name ? -1 : 1));
  const totals = languages.reduce(
    (t, l) => ({
      code: t.code + l.code,
      comment: t.comment + l.comment,
      blank: t.blank + l.blank,
      total: t.total + l.total,
    }),
    { code: 0, comment: 0, blank: 0, total: 0 },
  );
  fs.mkdir(`${WORKSPACE}/reports`, { recursive: true });
  fs.writeText(`${WORKSPACE}/${REPORT}`, markdown(dir, languages, totals, files));
  log.info(`wrote ${REPORT} (${plural(files.length, "file")} counted, ${skipped} skipped)`);

  const breakdown = languages.map((l) => `${l.name} ${l.total}`).join(", ");
  return {
    summary:
      `Wrote ${REPORT}: ${plural(totals.total, "line")} in ${plural(files.length, "file")}` +
      (breakdown ? ` (${breakdown})` : ""),
    data: {
      report: REPORT,
      directory: dir,
      files: files.length,
      skipped,
      lines: totals,
      languages: Object.fromEntries(
        languages.map(({ name, files, code, comment, blank }) => [name, { files, code, comment, blank }]),
      ),
    },
  };
});

/** The directory the prompt names, checked; "." for the whole workspace. */
function target(prompt) {
  const dir = prompt.trim().replace(/^\.\/+/, "").replace(/\/+$/, "") || ".";
  if (dir.startsWith("/") || dir.split("/").includes("..")) {
    throw new InvalidInput(`the prompt must name a directory inside the workspace, not \`${dir}\``);
  }
  if (dir !== "." && !(fs.exists(dir) && fs.stat(dir).type === "directory")) {
    throw new InvalidInput(`no directory \`${dir}\` in the workspace; name one, or \`.\` for all of it`);
  }
  return dir;
}

/** Fail before scanning when reports/ is not writable (a --readonly or narrowed launch). */
function checkWritable(writableDirs) {
  const reports = `${WORKSPACE}/reports`;
  if (!writableDirs.some((d) => reports === d || reports.startsWith(`${d}/`))) {
    const granted = writableDirs.length ? writableDirs.join(", ") : "nothing";
    throw new InvalidInput(`js-loc writes ${REPORT}, but this run may write ${granted}; launch it without --readonly`);
  }
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function extension(path) {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

function count(text, marker) {
  const lines = { code: 0, comment: 0, blank: 0 };
  if (text === "") return lines;
  const all = text.split(/\r?\n/);
  if (all[all.length - 1] === "") all.pop();
  for (const line of all) {
    const trimmed = line.trim();
    if (trimmed === "") lines.blank += 1;
    else if (marker !== null && trimmed.startsWith(marker)) lines.comment += 1;
    else lines.code += 1;
  }
  return lines;
}

function markdown(dir, languages, totals, files) {
  const out = [`# Lines of code in ${dir === "." ? "the workspace" : `\`${dir}\``}`, ""];
  if (languages.length === 0) {
    out.push("No source files found.", "");
    return out.join("\n");
  }
  out.push("| language | files | code | comment | blank | total |", "|---|---:|---:|---:|---:|---:|");
  for (const l of languages) {
    out.push(`| ${l.name} | ${l.files} | ${l.code} | ${l.comment} | ${l.blank} | ${l.total} |`);
  }
  const fileCount = languages.reduce((n, l) => n + l.files, 0);
  out.push(
    `| **total** | ${fileCount} | ${totals.code} | ${totals.comment} | ${totals.blank} | ${totals.total} |`,
    "",
    "## Largest files",
    "",
  );
  const largest = [...files].sort((a, b) => b.lines - a.lines || (a.path < b.path ? -1 : 1)).slice(0, 10);
  for (const f of largest) out.push(`- \`${f.path}\`: ${f.lines} lines (${f.language})`);
  out.push("");
  return out.join("\n");
}
