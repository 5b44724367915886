/**
 * The cluster's data directory: a bad `dataDir` is a typed error, a damaged cluster.json is a
 * CorruptionError naming it (never replaced with defaults), a refused create leaves nothing behind,
 * and cluster.json is replaced durably (checked on the simulated disk, crashing at every step).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import process from "node:process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { clusterConfigDefaults } from "../src/cluster/cluster_config.ts";
import { decodeClusterFile, encodeClusterFile, type StoredCluster } from "../src/cluster/cluster_file.ts";
import { createPrng } from "../src/io/prng.ts";
import { SimFileSystem } from "../src/io/sim_file_system.ts";
import { firstFreshActor, writeClusterFile } from "../src/cluster/cluster_file.ts";
import { createCluster } from "../src/runtime/cluster.ts";
import { rejectsWithCode } from "./support/assertions.ts";
import { CrashingFileSystem, PowerLoss } from "./support/crashing_file_system.ts";
import { temporaryDirectory } from "./support/store_harness.ts";

const small = { nodes: 1, n: 1, w: 1, r: 1, vnodesPerNode: 8 } as const;

/** For rejectsWithCode: opens with `call` and, should the open succeed, closes what it opened. */
const opening = (call: () => Promise<{ close(): Promise<void> }>) => async () => (await call()).close();

/** Runs `body` in a fresh directory that it may fill; removed afterwards. */
async function inDirectory(body: (root: string) => Promise<void>): Promise<void> {
  const directory = temporaryDirectory("datadir");
  try {
    await body(directory.path);
  } finally {
    directory.remove();
  }
}

function storedCluster(nodes: number): StoredCluster {
  return {
    config: { ...clusterConfigDefaults, nodes, n: 1, w: 1, r: 1, vnodesPerNode: 8 },
    members: Array.from({ length: nodes }, (_, node) => node),
    nextNodeId: nodes,
    nextActor: firstFreshActor,
    pendingCleanups: [],
  };
}

test("a dataDir that is not a non-empty path is refused with LOOM_INVALID_ARGUMENT", async () => {
  for (const dataDir of ["", 42, {}, null, [], "a\0b"]) {
    await rejectsWithCode(() => createCluster({ ...small, dataDir } as never), "LOOM_INVALID_ARGUMENT", /create cluster failed: dataDir must/);
  }
});

test("a dataDir that is a file or lies under a file is refused with LOOM_IO naming it, and the file is untouched", async () => {
  await inDirectory(async (root) => {
    const file = `${root}/file`;
    writeFileSync(file, "user data");
    for (const dataDir of [file, `${file}/below`, `${file}/below/deeper`]) {
      const error = await rejectsWithCode(opening(() => createCluster({ ...small, dataDir })), "LOOM_IO", /create cluster failed: /);
      assert.is(error.path, dataDir);
    }
    assert.is(readFileSync(file, "utf8"), "user data");
    assert.equal(readdirSync(root), ["file"]);
  });
});

test("a dataDir the file system does not permit is refused with LOOM_IO naming it (Linux: under /sys, and /sys itself)", async () => {
  if (!existsSync("/sys/kernel")) return;
  for (const dataDir of [`/sys/loomkv-${process.pid}`, "/sys"]) {
    const error = await rejectsWithCode(opening(() => createCluster({ ...small, dataDir })), "LOOM_IO", /create cluster failed: cannot /);
    assert.is(error.path, dataDir);
  }
});

test("a truncated cluster.json is a CorruptionError naming the file, which is left as it was", async () => {
  await inDirectory(async (root) => {
    const path = `${root}/cluster.json`;
    const whole = encodeClusterFile(storedCluster(1));
    for (const length of [0, 1, Math.floor(whole.length / 2), whole.length - 3]) {
      const cut = whole.slice(0, length);
      writeFileSync(path, cut);
      const error = await rejectsWithCode(opening(() => createCluster({ dataDir: root })), "LOOM_CORRUPTION");
      assert.is(error.path, path);
      assert.equal(new Uint8Array(readFileSync(path)), cut, "the damaged file is not replaced");
      assert.equal(readdirSync(root), ["cluster.json"], "nothing else is left behind");
    }
  });
});

test("a cluster.json holding null or the wrong shape is a CorruptionError, never replaced with defaults", async () => {
  const good = storedCluster(2);
  const damaged = [
    null,
    [],
    "cluster",
    { format: 9, config: good.config, members: good.members, nextNodeId: 2 },
    { format: 2, config: null, members: good.members, nextNodeId: 2 },
    { format: 2, config: { ...good.config, w: 3 }, members: good.members, nextNodeId: 2 },
    { format: 2, config: good.config, members: [0], nextNodeId: 2 },
    { format: 2, config: good.config, members: [1, 0], nextNodeId: 2 },
    { format: 2, config: good.config, members: good.members, nextNodeId: 1 },
    { format: 2, config: good.config, members: good.members, nextNodeId: 2, extra: true },
  ];
  await inDirectory(async (root) => {
    const path = `${root}/cluster.json`;
    for (const body of damaged) {
      writeFileSync(path, JSON.stringify(body));
      const error = await rejectsWithCode(opening(() => createCluster({ dataDir: root })), "LOOM_CORRUPTION");
      assert.is(error.path, path, JSON.stringify(body));
      assert.is(readFileSync(path, "utf8"), JSON.stringify(body));
    }
  });
  assert.equal(decodeClusterFile(encodeClusterFile(good), "cluster.json"), good, "a good file round-trips");
});

test("a refused create leaves nothing behind: no temporary directory, no new directory, nothing new in an existing one", async () => {
  await inDirectory(async (root) => {
    const temporaries = `${root}/tmp`;
    mkdirSync(temporaries);
    const savedTmpdir = process.env["TMPDIR"];
    process.env["TMPDIR"] = temporaries;
    try {
      await rejectsWithCode(() => createCluster({ ...small, memtableBytes: 1 }), "LOOM_OUT_OF_RANGE", /memtableBytes is 1/);
      await rejectsWithCode(() => createCluster({ ...small, fsync: "sometimes" as never }), "LOOM_INVALID_ARGUMENT", /fsync must be/);
      await rejectsWithCode(() => createCluster({ nodes: 2, n: 3 }), "LOOM_OUT_OF_RANGE", /n is 3 but the cluster has 2 nodes/);
    } finally {
      if (savedTmpdir === undefined) delete process.env["TMPDIR"];
      else process.env["TMPDIR"] = savedTmpdir;
    }
    assert.equal(readdirSync(temporaries), [], "no temporary data directory is left");
    await rejectsWithCode(() => createCluster({ dataDir: `${root}/new/deeper`, nodes: 2, n: 3 }), "LOOM_OUT_OF_RANGE");
    await rejectsWithCode(() => createCluster({ ...small, dataDir: `${root}/new/deeper`, memtableBytes: 1 }), "LOOM_OUT_OF_RANGE");
    assert.not.ok(existsSync(`${root}/new`), "no new directory is left");
    const existing = `${root}/existing`;
    mkdirSync(existing);
    writeFileSync(`${existing}/notes.txt`, "mine");
    await rejectsWithCode(() => createCluster({ ...small, dataDir: existing, bogus: 1 } as never), "LOOM_INVALID_ARGUMENT", /unknown setting bogus/);
    assert.equal(readdirSync(existing), ["notes.txt"]);
  });
});

test("a node that fails to start undoes the create: the nodes and cluster.json it made are removed, the user's files stay", async () => {
  await inDirectory(async (root) => {
    writeFileSync(`${root}/notes.txt`, "mine");
    writeFileSync(`${root}/node-1`, "a file where node 1's directory would go");
    await rejectsWithCode(opening(() => createCluster({ nodes: 2, n: 1, w: 1, r: 1, vnodesPerNode: 8, dataDir: root })), "LOOM_IO");
    assert.equal(readdirSync(root).sort(), ["node-1", "notes.txt"]);
    assert.is(readFileSync(`${root}/node-1`, "utf8"), "a file where node 1's directory would go");
    rmSync(`${root}/node-1`);
    const cluster = await createCluster({ nodes: 2, n: 1, w: 1, r: 1, vnodesPerNode: 8, dataDir: root });
    await cluster.close(); // the directory is usable: no lock was left behind
  });
});

test("cluster.json is replaced durably: power lost at any step leaves the old or the new file, whole", () => {
  const directory = "/data";
  const before = storedCluster(1);
  const after = { ...storedCluster(2), nextNodeId: 5 };
  let completed = false;
  for (let crashAt = 1; !completed; crashAt++) {
    const sim = new SimFileSystem(createPrng(crashAt));
    sim.makeDirectory(directory);
    writeClusterFile(sim, directory, before);
    const crashing = new CrashingFileSystem(sim, crashAt);
    try {
      writeClusterFile(crashing, directory, after);
      completed = true;
    } catch (error) {
      if (!(error instanceof PowerLoss)) throw error;
    }
    sim.crash({ tornTail: "none", unsyncedTruncate: "revert" });
    const survived = decodeClusterFile(sim.readFile(`${directory}/cluster.json`), "cluster.json");
    if (completed) assert.equal(survived, after, "a completed write survives the crash");
    else assert.ok([JSON.stringify(before), JSON.stringify(after)].includes(JSON.stringify(survived)), `power lost during ${crashing.crashedDuring}`);
  }
});

test.run();
