"""py-line-stats: lines per file extension, as a Markdown report.

The prompt names the directory to scan, relative to the workspace (empty or
`.` for all of it). Hidden entries (`.git`, ...), `target`, `node_modules`,
`__pycache__`, symlinks and the subagent's own write directories are skipped;
a file with a NUL byte in its first 8 KiB counts as binary. The report goes
to `line-stats.md` in the first writable directory (`reports/`); a read-only
run only returns the numbers.
"""

import os
import posixpath

import subagent_sdk
from subagent_sdk import InvalidInput, Outcome, Subagent, log, progress

REPORT = "line-stats.md"
SKIP_DIRS = {"target", "node_modules", "__pycache__"}


class Stats:
    def __init__(self):
        self.files = 0
        self.lines = 0
        self.blank = 0
        self.bytes = 0

    def add(self, text: bytes):
        self.files += 1
        self.bytes += len(text)
        lines = text.splitlines()
        self.lines += len(lines)
        self.blank += sum(1 for line in lines if not line.strip())

    def as_dict(self):
        return {"files": self.files, "lines": self.lines, "blank": self.blank, "bytes": self.bytes}


def extension(name: str) -> str:
    stem, ext = posixpath.splitext(name)
    return ext.lower() if ext and stem else "(none)"


def resolve(prompt: str) -> str:
    """The workspace-relative directory the prompt names ("." for all)."""
    rel = posixpath.normpath(prompt.strip() or ".")
    if rel.startswith("/") or rel == ".." or rel.startswith("../"):
        raise InvalidInput(f"{prompt.strip()!r} is not a directory inside the workspace; name one relative to it, like `src`")
    if not os.path.isdir(posixpath.join(subagent_sdk.WORKSPACE, rel)):
        raise InvalidInput(f"no such directory: {rel}")
    return rel


def scan(root: str, skip: set):
    """Stats per extension under `root` (a guest path), and the binaries skipped."""
    by_ext = {}
    binary = 0
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and d not in SKIP_DIRS
            and posixpath.join(dirpath, d) not in skip
            and not os.path.islink(posixpath.join(dirpath, d))
        )
        for name in sorted(filenames):
            subagent_sdk.check_cancelled()
            path = posixpath.join(dirpath, name)
            if name.startswith(".") or os.path.islink(path):
                continue
            try:
                with open(path, "rb") as file:
                    text = file.read()
            except OSError as error:
                log.warn(f"skipped {path}: {error}")
                continue
            seen += 1
            if seen % 500 == 0:
                progress.note(f"scanned {seen} files")
            if b"\0" in text[:8192]:
                binary += 1
                continue
            by_ext.setdefault(extension(name), Stats()).add(text)
    return by_ext, binary


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def report(rel: str, by_ext: dict, total: Stats, binary: int) -> str:
    rows = sorted(by_ext.items(), key=lambda item: (-item[1].lines, item[0]))
    out = [
        f"# Line counts: `{rel}`",
        "",
        f"{total.lines} lines ({total.blank} blank) in {plural(total.files, 'text file')}; "
        f"{plural(binary, 'binary file')} skipped.",
        "",
        "| extension | files | lines | blank | bytes |",
        "|---|---:|---:|---:|---:|",
    ]
    for ext, stats in rows:
        out.append(f"| `{ext}` | {stats.files} | {stats.lines} | {stats.blank} | {stats.bytes} |")
    out.append(f"| **total** | {total.files} | {total.lines} | {total.blank} | {total.bytes} |")
    return "\n".join(out) + "\n"


class LineStats(Subagent):
    def run(self, task):
        rel = resolve(task.prompt)
        workspace = subagent_sdk.WORKSPACE
        skip = {d.rstrip("/") for d in task.writable_dirs}
        by_ext, binary = scan(posixpath.normpath(posixpath.join(workspace, rel)), skip)

        total = Stats()
        for stats in by_ext.values():
            total.files += stats.files
            total.lines += stats.lines
            total.blank += stats.blank
            total.bytes += stats.bytes

        written = None
        if task.writable_dirs:
            target = posixpath.join(task.writable_dirs[0], REPORT)
            with open(target, "w", encoding="utf-8") as file:
                file.write(report(rel, by_ext, total, binary))
            written = posixpath.relpath(target, workspace)

        top = sorted(by_ext.items(), key=lambda item: (-item[1].lines, item[0]))[:3]
        counts = ", ".join(f"{ext} {stats.lines}" for ext, stats in top) or "no text files"
        head = f"Wrote {written}: " if written else "Read-only run, no report written: "
        return Outcome(
            f"{head}{plural(total.lines, 'line')} in {plural(total.files, 'file')} ({counts})",
            data={
                "root": rel,
                "files": total.files,
                "lines": total.lines,
                "blank": total.blank,
                "binary": binary,
                "by_extension": {ext: stats.as_dict() for ext, stats in sorted(by_ext.items())},
                "report": written,
            },
        )


subagent_sdk.export(LineStats)
