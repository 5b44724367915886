/**
 * One process owns a data directory: the cluster holds dataDir/LOCK and each node's store its own
 * LOCK, so a second cluster or store on them fails with LOOM_LOCKED, in this process or another;
 * a killed holder's locks are taken over at once; a crashed node's lock is broken by its cluster
 * when it restarts. The other process is a real child running test/fixtures/hold_cluster on the
 * other runtime (Deno when these tests run on Node, Node when they run on Deno).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createCluster } from "../src/runtime/cluster.ts";
import { openStore } from "../src/runtime/open_store.ts";
import { rejectsWithCode, type CodedError } from "./support/assertions.ts";
import { temporaryDirectory } from "./support/store_harness.ts";
import { GENEROUS_REQUEST_TIMEOUT_MS } from "./support/deadlines.ts";

const small = { nodes: 1, n: 1, w: 1, r: 1, vnodesPerNode: 8, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS } as const;
const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));

/** The LOOM_LOCKED error `call` fails with, checked to name `path` and `pid`. */
async function lockedOut(call: () => Promise<{ close(): Promise<void> }>, path: string, pid: number): Promise<CodedError> {
  // Opened after all: close it, so that the failure reported is all that remains.
  const locked = await rejectsWithCode(async () => (await call()).close(), "LOOM_LOCKED");
  assert.is(locked.outcome, "not-applied");
  assert.is(locked.path, path);
  assert.is(locked.pid, pid);
  return locked;
}

/**
 * How to run the hold_cluster fixture: on the other runtime when it is at hand (a Node process and
 * a Deno process must exclude each other: Node runs dist/, Deno the sources), else on this one.
 */
function holderCommand(dataDir: string): { command: string; args: string[] } {
  const onDeno = import.meta.url.endsWith(".ts");
  const root = new URL(onDeno ? "../" : "../../", import.meta.url);
  const denoBinary = fileURLToPath(new URL("node_modules/deno/deno", root));
  const sourceFixture = fileURLToPath(new URL("test/fixtures/hold_cluster.ts", root));
  const builtFixture = fileURLToPath(new URL("dist/test/fixtures/hold_cluster.js", root));
  if (!onDeno && existsSync(denoBinary)) return { command: denoBinary, args: ["run", "-A", sourceFixture, dataDir] };
  if (onDeno && existsSync(builtFixture)) return { command: "node", args: [builtFixture, dataDir] };
  return { command: process.execPath, args: onDeno ? ["run", "-A", sourceFixture, dataDir] : [builtFixture, dataDir] };
}

/** Starts the hold_cluster fixture on `dataDir` and resolves once it holds the cluster. */
function spawnHolder(dataDir: string): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  const { command, args } = holderCommand(dataDir);
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    let output = "";
    child.stdout!.on("data", (chunk: Uint8Array) => {
      output += new TextDecoder().decode(chunk);
      if (output.includes("ready\n")) resolve({ child, exited });
    });
    child.once("error", reject);
    void exited.then(() => reject(new Error(`the holder exited before it was ready: ${output}`)));
  });
}

test("a second cluster on an open data directory is refused naming the directory and this process, and the first keeps working", async () => {
  const first = await createCluster(small);
  try {
    await first.put("before", "1");
    const error = await lockedOut(() => createCluster({ ...small, dataDir: first.dataDir }), first.dataDir, process.pid);
    assert.is(error.message, `create cluster failed: ${first.dataDir} is locked by process ${process.pid} (this process)`);
    await first.put("after", "2");
    assert.equal((await first.get("before")).values.map(text), ["1"]);
    assert.equal((await first.get("after")).values.map(text), ["2"]);
  } finally {
    await first.close();
    rmSync(first.dataDir, { recursive: true, force: true });
  }
});

test("two openStore() on one directory: the second is refused with LOOM_LOCKED, and closing the first lets it open", async () => {
  const directory = temporaryDirectory("store-lock");
  try {
    const store = await openStore({ directory: directory.path, memtableBytes: 64 * 1024 });
    const error = await lockedOut(() => openStore({ directory: directory.path, memtableBytes: 64 * 1024 }), directory.path, process.pid);
    assert.match(error.message, `open store failed: ${directory.path} is locked by process ${process.pid}`);
    await store.close();
    await (await openStore({ directory: directory.path, memtableBytes: 64 * 1024 })).close();
  } finally {
    directory.remove();
  }
});

test("closing a cluster releases its locks: its node stores and the directory open again at once, with the data", async () => {
  let cluster = await createCluster(small);
  const { dataDir } = cluster;
  try {
    await cluster.put("kept", "yes");
    await lockedOut(() => openStore({ directory: `${dataDir}/node-0` }), `${dataDir}/node-0`, process.pid);
    await cluster.close();
    await (await openStore({ directory: `${dataDir}/node-0` })).close();
    cluster = await createCluster({ ...small, dataDir });
    assert.equal((await cluster.get("kept")).values.map(text), ["yes"]);
  } finally {
    await cluster.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a cluster held by another process (on the other runtime) is refused with its pid; once it is SIGKILLed the next open succeeds at once", async () => {
  const directory = temporaryDirectory("held");
  const { child, exited } = await spawnHolder(directory.path);
  try {
    const error = await lockedOut(() => createCluster({ ...small, dataDir: directory.path }), directory.path, child.pid!);
    assert.is(error.message, `create cluster failed: ${directory.path} is locked by process ${child.pid}`);
    await lockedOut(() => openStore({ directory: `${directory.path}/node-0` }), `${directory.path}/node-0`, child.pid!);
    child.kill("SIGKILL");
    await exited;
    // Its LOCK files name a dead process now: taken over without waiting.
    const cluster = await createCluster({ ...small, dataDir: directory.path });
    try {
      assert.equal((await cluster.get("from-child")).values.map(text), ["acknowledged before the kill"]);
    } finally {
      await cluster.close();
    }
  } finally {
    child.kill("SIGKILL");
    await exited;
    directory.remove();
  }
});

test("a crashed node keeps its store lock as a killed process would; restart breaks it, and closing with a node down leaves no lock", async () => {
  let cluster = await createCluster({ nodes: 2, n: 2, w: 2, r: 1, vnodesPerNode: 8, requestTimeoutMs: GENEROUS_REQUEST_TIMEOUT_MS });
  const { dataDir } = cluster;
  const nodeDirectory = `${dataDir}/node-1`;
  try {
    for (let i = 0; i < 10; i++) await cluster.put(`key-${i}`, `value-${i}`);
    await cluster.faults.crash(1);
    await lockedOut(() => openStore({ directory: nodeDirectory }), nodeDirectory, process.pid);
    await cluster.faults.restart(1);
    for (let i = 0; i < 10; i += 3) {
      const replicas = await cluster.replicaValues(`key-${i}`);
      assert.equal(replicas.find((replica) => replica.node === 1)?.values?.map(text), [`value-${i}`], "the restarted node serves its data");
    }
    await lockedOut(() => openStore({ directory: nodeDirectory }), nodeDirectory, process.pid); // the restarted node holds it
    await cluster.faults.crash(1);
    await cluster.close();
    cluster = await createCluster({ dataDir });
    assert.equal((await cluster.get("key-4", { r: 2 })).values.map(text), ["value-4"]);
  } finally {
    await cluster.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
