#!/usr/bin/env node
// Runs chosen test files many times while other processes keep the cores busy, to find tests that
// fail at random on a loaded machine (deadlines, real-time waits, gossip failure detection).
//
// Usage: node scripts/test_under_load.mjs --runs N [--burners K] [--runtime node|deno|both] FILE_STEM...
//   FILE_STEM: a test file's name without .test.ts (e.g. membership for test/membership.test.ts).
//   --runs N      runs of each file on each runtime (default 10)
//   --burners K   CPU-burning child processes spinning beside the runs (default 2: one per core here)
//   --runtime R   node (the compiled dist/test/STEM.test.js), deno (test/STEM.test.ts) or both (default node)
//
// Builds once (tsc), starts the burners, runs each file N times in turn, kills the burners, then
// prints per file and runtime: runs, passed, failed and the slowest wall time. The output of every
// failed run is kept under .tmp/test-under-load/. Exits 1 if any run failed.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";

const usage = "usage: node scripts/test_under_load.mjs --runs N [--burners K] [--runtime node|deno|both] FILE_STEM...";
const args = process.argv.slice(2);
const options = { runs: 10, burners: 2, runtime: "node" };
const stems = [];
for (let index = 0; index < args.length; index++) {
  const arg = args[index];
  if (arg === "--runs" || arg === "--burners" || arg === "--runtime") {
    const value = args[++index];
    if (value === undefined) fail(`${arg} needs a value`);
    options[arg.slice(2)] = arg === "--runtime" ? value : Number(value);
  } else if (arg === "--help" || arg === "-h") {
    console.log(usage);
    process.exit(0);
  } else if (arg.startsWith("--")) {
    fail(`unknown option ${arg}`);
  } else {
    stems.push(arg.replace(/\.test\.(ts|js)$/, "").replace(/^(test|dist\/test)\//, ""));
  }
}
if (!Number.isInteger(options.runs) || options.runs < 1) fail("--runs must be a positive integer");
if (!Number.isInteger(options.burners) || options.burners < 0) fail("--burners must be a non-negative integer");
if (!["node", "deno", "both"].includes(options.runtime)) fail("--runtime must be node, deno or both");
if (stems.length === 0) fail("name at least one test file");
for (const stem of stems) if (!existsSync(`test/${stem}.test.ts`)) fail(`no test file test/${stem}.test.ts`);

const runtimes = options.runtime === "both" ? ["node", "deno"] : [options.runtime];
const uvuBin = new URL("../node_modules/uvu/bin.js", import.meta.url).pathname;
const denoBin = new URL("../node_modules/deno/bin.cjs", import.meta.url).pathname;
const tscBin = new URL("../node_modules/typescript/bin/tsc", import.meta.url).pathname;
const RUN_TIMEOUT_MS = 5 * 60 * 1000;
const logDirectory = ".tmp/test-under-load";

function fail(message) {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}

/** Runs a command to its end; resolves with its exit code, output and wall seconds. */
function run(command, commandArgs, env = {}) {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, commandArgs, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      output += `\n(killed after ${RUN_TIMEOUT_MS / 1000} s)\n`;
      child.kill("SIGKILL");
    }, RUN_TIMEOUT_MS);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), output, seconds: (performance.now() - started) / 1000 });
    });
  });
}

/** uvu's summary: a run passed if it exited 0 and every test it counted passed. */
function verdict(result) {
  const plain = result.output.replace(/\u001b\[[0-9;]*m/g, "");
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  return { ok: result.code === 0 && total > 0 && passed + skipped === total, plain };
}

// CPU burners: plain busy loops in child processes, so they compete for the cores as other
// builds and tests on a shared machine do.
const burners = [];
function startBurners() {
  for (let index = 0; index < options.burners; index++) {
    const child = spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
    burners.push(child);
  }
}
function stopBurners() {
  for (const child of burners.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}
process.on("exit", stopBurners);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    stopBurners();
    process.exit(130);
  });
}

console.log("== build (tsc)");
const build = await run(process.execPath, [tscBin, "-p", "."]);
if (build.code !== 0) {
  console.error(build.output);
  process.exit(1);
}
mkdirSync(logDirectory, { recursive: true });

console.log(`== ${options.runs} run(s) of ${stems.join(", ")} on ${runtimes.join(" and ")}, beside ${options.burners} CPU burner(s)`);
startBurners();
const rows = [];
let anyFailed = false;
try {
  for (const stem of stems) {
    for (const runtime of runtimes) {
      const row = { stem, runtime, runs: 0, passed: 0, failed: 0, slowest: 0 };
      rows.push(row);
      for (let attempt = 1; attempt <= options.runs; attempt++) {
        const result =
          runtime === "node"
            ? await run(process.execPath, [uvuBin, "dist/test", `^${stem}\\.test\\.js$`], { LOOMKV_TEST: "1" })
            : await run(process.execPath, [denoBin, "run", "-A", uvuBin, "test", `^${stem}\\.test\\.ts$`], { LOOMKV_TEST: "1" });
        const { ok, plain } = verdict(result);
        row.runs++;
        row.slowest = Math.max(row.slowest, result.seconds);
        if (ok) {
          row.passed++;
        } else {
          row.failed++;
          anyFailed = true;
          const log = `${logDirectory}/${stem}-${runtime}-${attempt}.txt`;
          writeFileSync(log, plain);
          const reason = /FAIL[\s\S]{0,600}/.exec(plain)?.[0] ?? plain.slice(-600);
          console.log(`-- ${stem} on ${runtime}, run ${attempt}: FAILED in ${result.seconds.toFixed(1)} s (output in ${log})\n${reason.trim()}\n`);
        }
        process.stdout.write(`   ${stem} on ${runtime}: run ${attempt}/${options.runs} ${ok ? "passed" : "FAILED"} in ${result.seconds.toFixed(1)} s\n`);
      }
    }
  }
} finally {
  stopBurners();
}

console.log(`\n| file | runtime | runs | passed | failed | slowest wall s |\n|---|---|---|---|---|---|`);
for (const row of rows) console.log(`| ${row.stem} | ${row.runtime} | ${row.runs} | ${row.passed} | ${row.failed} | ${row.slowest.toFixed(1)} |`);
process.exit(anyFailed ? 1 : 0);
