#!/usr/bin/env node
// The whole test run: build and typecheck (tsc, deno check), then the uvu suite on Node (compiled
// output) and on Deno (TypeScript sources). Ends with one plain line "N passed, N failed" that CI
// counts, and exits non-zero if anything failed. The two uvu suites run side by side (one per
// core; --serial runs them one after the other).
// Usage: node scripts/test.mjs [--node-only|--deno-only] [--serial] [--report] [pattern]
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const nodeOnly = args.includes("--node-only");
const denoOnly = args.includes("--deno-only");
const filter = args.find((arg) => !arg.startsWith("--")) ?? "";
const writeReport = args.includes("--report");
// --serial: the Node and Deno suites one after the other (default: side by side, see below).
const serial = args.includes("--serial");
const STEP_TIMEOUT_MS = 8 * 60 * 1000;
const uvuBin = new URL("../node_modules/uvu/bin.js", import.meta.url).pathname;
const denoBin = new URL("../node_modules/deno/bin.cjs", import.meta.url).pathname;
const tscBin = new URL("../node_modules/typescript/bin/tsc", import.meta.url).pathname;

/** Runs one step. Streams its output, or with `buffered` keeps it to be printed whole (steps run side by side). */
function run(label, command, commandArgs, env = {}, buffered = false) {
  return new Promise((resolve) => {
    const started = Date.now();
    const header = `\n== ${label}: ${command} ${commandArgs.join(" ")}\n`;
    if (!buffered) process.stdout.write(header);
    const child = spawn(command, commandArgs, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let output = "";
    child.stdout.on("data", (chunk) => { output += chunk; if (!buffered) process.stdout.write(chunk); });
    child.stderr.on("data", (chunk) => { output += chunk; if (!buffered) process.stderr.write(chunk); });
    // A hung suite must fail loudly, not run into CI's time limit.
    const timer = setTimeout(() => {
      output += `\n${label} timed out after ${STEP_TIMEOUT_MS / 1000} s\n`;
      process.stderr.write(`\n${label} timed out after ${STEP_TIMEOUT_MS / 1000} s: killed\n`);
      child.kill("SIGKILL");
    }, STEP_TIMEOUT_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ label, code: code ?? 1, output, header, seconds: (Date.now() - started) / 1000 });
    });
  });
}

function counts(result) {
  // uvu prints "Total: N", "Passed: N", "Skipped: N" (with ANSI colours on a TTY; none here).
  const plain = result.output.replace(/\u001b\[[0-9;]*m/g, "");
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  let failed = total - passed - skipped;
  if (result.code !== 0 && failed === 0) failed = 1; // a crash or a file that failed to load
  return { passed, failed, skipped };
}

const results = [];
// Figures the tests record (test/support/figures.ts) for the report: start from none.
rmSync(".tmp/test-figures", { recursive: true, force: true });
const build = await run("build and typecheck (tsc)", process.execPath, [tscBin, "-p", "."]);
if (build.code !== 0) {
  console.log("\n0 passed, 1 failed");
  process.exit(1);
}
const steps = [];
if (!nodeOnly) steps.push(["typecheck (deno check)", denoBin, ["check", "--quiet", ...["src", "workers", "test", "bench"].filter((d) => existsSync(d))]]);
const pattern = filter ? `${filter}.*\\.test\\.` : "\\.test\\.";
if (!denoOnly) steps.push(["uvu on Node", process.execPath, [uvuBin, "dist/test", `${pattern}js$`]]);
if (!nodeOnly) steps.push(["uvu on Deno", denoBin, ["run", "-A", uvuBin, "test", `${pattern}ts$`]]);

let passed = 0, failed = 0, skipped = 0;
const tally = (result) => {
  results.push(result);
  if (result.label.startsWith("typecheck")) {
    if (result.code !== 0) failed += 1;
    return;
  }
  const c = counts(result);
  passed += c.passed; failed += c.failed; skipped += c.skipped;
  console.log(`-- ${result.label}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped in ${result.seconds.toFixed(1)} s`);
};
const [checks, suites] = [steps.filter(([label]) => label.startsWith("typecheck")), steps.filter(([label]) => !label.startsWith("typecheck"))];
for (const [label, command, commandArgs] of checks) tally(await run(label, command, commandArgs, { LOOMKV_TEST: "1" }));
if (serial || suites.length < 2) {
  for (const [label, command, commandArgs] of suites) tally(await run(label, command, commandArgs, { LOOMKV_TEST: "1" }));
} else {
  // The Node and Deno suites side by side, one per core: each one's output is kept and printed
  // whole when it ends (Node's first), so the two never interleave.
  const started = Date.now();
  process.stdout.write(`\n== ${suites.map(([label]) => label).join(" and ")}, side by side (output printed whole as each ends)\n`);
  const running = suites.map(([label, command, commandArgs]) => run(label, command, commandArgs, { LOOMKV_TEST: "1" }, true));
  for (const pending of running) {
    const result = await pending;
    process.stdout.write(result.header);
    process.stdout.write(result.output);
    tally(result);
  }
  console.log(`-- both suites done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

mkdirSync(".tmp", { recursive: true });
writeFileSync(".tmp/last-test-run.json", JSON.stringify(results.map(({ label, code, seconds, output }) => ({ label, code, seconds, ...(label.startsWith("uvu") ? counts({ code, output }) : {}) })), null, 2));
if (writeReport) writeTestReport(results, { passed, failed, skipped });
if (failed > 0) printFailures(results);
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);

/**
 * Repeats each failure at the very end, where a truncated CI log still shows it: the files whose
 * count fell short, then uvu's FAIL blocks (message and first stack lines).
 */
function printFailures(results) {
  console.log("\n== failures");
  for (const result of results) {
    const plain = result.output.replace(/\u001b\[[0-9;]*m/g, "");
    if (!result.label.startsWith("uvu")) {
      if (result.code !== 0) console.log(`-- ${result.label} failed:\n${plain.split("\n").slice(-30).join("\n")}`);
      continue;
    }
    for (const row of perFile(result.output)) if (row.passed < row.total) console.log(`-- ${result.label}: ${row.file} ${row.passed} / ${row.total}`);
    const blocks = plain.split(/^(?=\s+FAIL )/m).slice(1);
    for (const block of blocks) console.log(block.split("\n").slice(0, 14).join("\n"));
    if (blocks.length === 0 && result.code !== 0) console.log(`-- ${result.label} exited ${result.code}:\n${plain.split("\n").slice(-30).join("\n")}`);
  }
}

/** Per-file counts from uvu's output: a file name line, then "(passed / total)". */
function perFile(output) {
  const plain = output.replace(/\u001b\[[0-9;]*m/g, "");
  const rows = [];
  const pattern = /^(\S+\.test\.(?:js|ts))\s*$([\s\S]*?)\((\d+) \/ (\d+)\)/gm;
  for (const match of plain.matchAll(pattern)) rows.push({ file: match[1], passed: Number(match[3]), total: Number(match[4]) });
  return rows;
}

/** Rewrites the results section of docs/test-report.md (between the markers), keeping the prose. */
function writeTestReport(results, totals) {
  const path = "docs/test-report.md";
  const start = "<!-- results:start -->";
  const end = "<!-- results:end -->";
  const current = existsSync(path) ? readFileSync(path, "utf8") : `# Test report\n\n${start}\n${end}\n`;
  const lines = [start, "", `Recorded ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${os.cpus().length} cores, Node ${process.version}, ` +
    `by \`npm test -- --report\`: **${totals.passed} passed, ${totals.failed} failed**.`, ""];
  for (const result of results) {
    if (!result.label.startsWith("uvu")) {
      lines.push(`- ${result.label}: ${result.code === 0 ? "clean" : "FAILED"} (${result.seconds.toFixed(1)} s)`);
      continue;
    }
    lines.push(`- ${result.label}: exit ${result.code}, ${result.seconds.toFixed(1)} s`);
  }
  const [node, deno] = ["uvu on Node", "uvu on Deno"].map((label) => perFile(results.find((r) => r.label === label)?.output ?? ""));
  lines.push("", "| test file | Node passed / total | Deno passed / total |", "|---|---|---|");
  for (const row of node ?? []) {
    const stem = row.file.replace(/\.js$/, "");
    const other = (deno ?? []).find((d) => d.file.replace(/\.ts$/, "") === stem);
    lines.push(`| ${stem} | ${row.passed} / ${row.total} | ${other ? `${other.passed} / ${other.total}` : "-"} |`);
  }
  lines.push(...figureLines());
  lines.push("", end);
  const before = current.includes(start) ? current.slice(0, current.indexOf(start)) : current + "\n";
  const after = current.includes(end) ? current.slice(current.indexOf(end) + end.length) : "\n";
  writeFileSync(path, before + lines.join("\n") + after);
}

/** The failure suites' figures, as the tests recorded them (.tmp/test-figures), one table per figure set. */
function figureLines() {
  const directory = ".tmp/test-figures";
  if (!existsSync(directory)) return [];
  const sets = readdirSync(directory).filter((name) => name.endsWith(".json")).sort().map((name) => JSON.parse(readFileSync(`${directory}/${name}`, "utf8")));
  if (sets.length === 0) return [];
  const lines = ["", "### Failure suites: figures of this run", ""];
  const names = [...new Set(sets.map((set) => set.name))];
  for (const name of names) {
    const byRuntime = sets.filter((set) => set.name === name);
    const fields = [...new Set(byRuntime.flatMap((set) => Object.keys(set)))].filter((field) => field !== "name" && field !== "runtime");
    lines.push(`**${name}**`, "", `| figure | ${byRuntime.map((set) => set.runtime).join(" | ")} |`, `|---|${byRuntime.map(() => "---").join("|")}|`);
    for (const field of fields) {
      const cell = (value) => (value === undefined ? "-" : typeof value === "object" ? Object.entries(value).map(([key, count]) => `${key} ${count}`).join(", ") : String(value));
      lines.push(`| ${field} | ${byRuntime.map((set) => cell(set[field])).join(" | ")} |`);
    }
    lines.push("");
  }
  return lines;
}
