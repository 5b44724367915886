/** The README's cluster API example runs as written (it is the first ts block under "## The cluster API"). */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const fromSources = import.meta.url.endsWith(".ts");
const root = new URL(fromSources ? "../" : "../../", import.meta.url);
const indexUrl = new URL(fromSources ? "src/index.ts" : "dist/src/index.js", root).href;

test("the README's cluster API example runs as written", async () => {
  const readme = readFileSync(new URL("README.md", root), "utf8");
  const section = readme.slice(readme.indexOf("## The cluster API"));
  const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(example, "the section has a ts example");
  assert.match(example, /from "loomkv"/);
  // The cluster is also handed to the test as soon as it exists, so a failing example cannot
  // leave its worker threads running (which would hang the test run instead of failing it).
  const script = `${example
    .replace(/from "loomkv";[^\n]*/, `from ${JSON.stringify(indexUrl)};`)
    .replace("const cluster = await createCluster(", "const cluster = globalThis.readmeCluster = await createCluster(")}\nexport { cluster };\n`;
  assert.match(script, /globalThis\.readmeCluster =/, "the example creates its cluster as `const cluster = await createCluster(`");
  const directory = mkdtempSync(join(tmpdir(), "loomkv-readme-"));
  const file = join(directory, "example.mjs");
  writeFileSync(file, script);
  const handed = globalThis as { readmeCluster?: { dataDir: string; close(): Promise<void> } };
  try {
    const { cluster } = (await import(pathToFileURL(file).href)) as { cluster: { dataDir: string; ring(): { nodes: number[] } } };
    assert.equal(cluster.ring().nodes, [1, 2, 3, 4, 5], "node 5 joined and node 0 left");
  } finally {
    const cluster = handed.readmeCluster;
    delete handed.readmeCluster;
    await cluster?.close(); // idempotent: the example closes it when it runs through
    if (cluster) rmSync(cluster.dataDir, { recursive: true, force: true });
    rmSync(directory, { recursive: true, force: true });
  }
});

test.run();
