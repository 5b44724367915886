/**
 * The job pool factory: every pool thread starts with require(esm) off, so piscina loads its ESM
 * task file with import() (the require(esm) path can abort the process while several threads
 * load one module graph), and no file builds a pool any other way.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createJobPool, jobPoolExecArgv } from "../src/runtime/job_pool.ts";

const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const root = new URL("../", import.meta.url);

test("pool threads start with the flags of the factory", async () => {
  const pool = createJobPool({ filename: new URL(`./fixtures/exec_argv_task${extension}`, import.meta.url), threads: 2, idleTimeoutMs: 1000 });
  try {
    const answers = (await Promise.all([pool.run(null), pool.run(null), pool.run(null)])) as string[][];
    for (const flags of answers) for (const flag of jobPoolExecArgv) assert.ok(flags.includes(flag), `a pool thread lacks ${flag}: ${flags.join(" ")}`);
  } finally {
    await pool.close();
  }
});

test("on Node the factory turns require(esm) off in pool threads", () => {
  if ("Deno" in globalThis) return; // Deno's workers take no Node flags and always import()
  assert.ok(jobPoolExecArgv.includes("--no-experimental-require-module"));
});

function sourceFiles(directory: URL): URL[] {
  const found: URL[] = [];
  for (const name of readdirSync(directory)) {
    const entry = new URL(name, directory);
    if (statSync(entry).isDirectory()) found.push(...sourceFiles(new URL(`${name}/`, directory)));
    else if (name.endsWith(".ts")) found.push(entry);
  }
  return found;
}

test("no source file but the factory constructs a piscina pool", () => {
  // Compiled runs read the TypeScript sources beside dist/: the rule is about what we write.
  const sourceRoot = extension === ".ts" ? root : new URL("../../", import.meta.url);
  const offenders: string[] = [];
  let scanned = 0;
  for (const folder of ["src/", "workers/", "bench/", "scripts/", "test/"]) {
    for (const file of sourceFiles(new URL(folder, sourceRoot))) {
      scanned++;
      const text = readFileSync(file, "utf8");
      if (/new\s+Piscina\b/.test(text) && !file.pathname.endsWith("src/runtime/job_pool.ts") && !file.pathname.endsWith("test/job_pool.test.ts")) {
        offenders.push(file.pathname);
      }
    }
  }
  assert.ok(scanned > 50, `only ${scanned} source files found: wrong root`);
  assert.equal(offenders, []);
});

test.run();
