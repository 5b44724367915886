#!/usr/bin/env node
// Times each test file alone: wall seconds and CPU seconds (user+sys of the child and its
// descendants, from /usr/bin/time), on Node (compiled dist/test) and/or Deno (test/*.ts).
// Usage: node scripts/time_tests.mjs [--runtime node|deno|both] [--no-build] [--json FILE] [STEM...]
// Prints a table sorted by wall time, slowest first. Does not build unless asked to (default: builds).
import { spawn } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  if (index === -1) return fallback;
  const value = args[index + 1];
  args.splice(index, 2);
  return value;
};
const runtime = option("--runtime", "both");
const jsonOut = option("--json", undefined);
const noBuild = args.includes("--no-build");
const stems = args.filter((arg) => !arg.startsWith("--"));
const uvuBin = new URL("../node_modules/uvu/bin.js", import.meta.url).pathname;
const denoBin = new URL("../node_modules/deno/bin.cjs", import.meta.url).pathname;
const tscBin = new URL("../node_modules/typescript/bin/tsc", import.meta.url).pathname;

function timed(command, commandArgs) {
  return new Promise((resolve) => {
    const child = spawn("/usr/bin/time", ["-f", "@@TIME %e %U %S", command, ...commandArgs], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LOOMKV_TEST: "1" },
    });
    let output = "";
    child.stdout.on("data", (chunk) => { output += chunk; });
    child.stderr.on("data", (chunk) => { output += chunk; });
    child.on("close", (code) => {
      const match = /@@TIME (\S+) (\S+) (\S+)/.exec(output);
      const plain = output.replace(/\u001b\[[0-9;]*m/g, "");
      resolve({
        code,
        wall: Number(match?.[1] ?? NaN),
        cpu: Number(match?.[2] ?? NaN) + Number(match?.[3] ?? NaN),
        total: Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0),
        passed: Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0),
        output,
      });
    });
  });
}

if (!noBuild) {
  const build = await timed(process.execPath, [tscBin, "-p", "."]);
  if (build.code !== 0) { console.error(build.output); process.exit(1); }
}
const all = stems.length > 0 ? stems : readdirSync("test").filter((name) => name.endsWith(".test.ts")).map((name) => name.replace(/\.test\.ts$/, "")).sort();
const rows = [];
for (const stem of all) {
  const row = { stem };
  if (runtime !== "deno") {
    const r = await timed(process.execPath, [uvuBin, "dist/test", `^${stem}\\.test\\.js$`]);
    Object.assign(row, { nodeWall: r.wall, nodeCpu: r.cpu, nodeTests: `${r.passed}/${r.total}`, nodeCode: r.code });
    if (r.code !== 0) process.stderr.write(`-- ${stem} failed on Node:\n${r.output}\n`);
  }
  if (runtime !== "node") {
    const r = await timed(process.execPath, [denoBin, "run", "-A", uvuBin, "test", `^${stem}\\.test\\.ts$`]);
    Object.assign(row, { denoWall: r.wall, denoCpu: r.cpu, denoTests: `${r.passed}/${r.total}`, denoCode: r.code });
    if (r.code !== 0) process.stderr.write(`-- ${stem} failed on Deno:\n${r.output}\n`);
  }
  rows.push(row);
  process.stderr.write(`${stem} ${JSON.stringify(row)}\n`);
}
const key = (row) => (row.nodeWall ?? 0) + (row.denoWall ?? 0);
rows.sort((a, b) => key(b) - key(a));
const fmt = (n) => (n === undefined || Number.isNaN(n) ? "-" : n.toFixed(2));
console.log("| file | Node wall s | Node CPU s | Node tests | Deno wall s | Deno CPU s | Deno tests |");
console.log("|---|---|---|---|---|---|---|");
for (const row of rows) {
  console.log(`| ${row.stem} | ${fmt(row.nodeWall)} | ${fmt(row.nodeCpu)} | ${row.nodeTests ?? "-"} | ${fmt(row.denoWall)} | ${fmt(row.denoCpu)} | ${row.denoTests ?? "-"} |`);
}
const sum = (field) => rows.reduce((total, row) => total + (row[field] ?? 0), 0);
console.log(`| total | ${fmt(sum("nodeWall"))} | ${fmt(sum("nodeCpu"))} | | ${fmt(sum("denoWall"))} | ${fmt(sum("denoCpu"))} | |`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(rows, null, 2));
