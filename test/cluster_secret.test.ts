/** The cluster's context secret: made once, durable before use, read back on every open, checked. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createPrng } from "../src/io/prng.ts";
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { SimFileSystem } from "../src/io/sim_file_system.ts";
import { CONTEXT_SECRET_FILE, loadContextSecret } from "../src/runtime/cluster_secret.ts";
import { CorruptionError, LoomRangeError } from "../src/util/errors.ts";
import { temporaryDirectory } from "./support/store_harness.ts";
import { rejectsWithCode } from "./support/assertions.ts";

const DIRECTORY = "/cluster";

/** A seeded stand-in for crypto.getRandomValues. */
function seededRandom(seed: number): (bytes: Uint8Array) => void {
  const prng = createPrng(seed);
  return (bytes) => {
    for (let index = 0; index < bytes.length; index++) bytes[index] = prng.nextInt(256);
  };
}

function simDirectory(): SimFileSystem {
  const fs = new SimFileSystem(createPrng(1));
  fs.makeDirectory(DIRECTORY);
  return fs;
}

test("the secret is made once and survives a power loss right after it was made", () => {
  const fs = simDirectory();
  const secret = loadContextSecret({ fs, directory: DIRECTORY, random: seededRandom(7) });
  assert.is(secret.length, 16);
  fs.crash({ tornTail: "none" });
  // A reopen with another random source must still find the first secret.
  assert.equal(loadContextSecret({ fs, directory: DIRECTORY, random: seededRandom(8) }), secret);
  assert.equal(fs.list(DIRECTORY), [CONTEXT_SECRET_FILE], "no temporary file is left");
});

test("a crash while the secret was being written leaves none: the next open makes one", () => {
  const fs = simDirectory();
  fs.setContent(`${DIRECTORY}/${CONTEXT_SECRET_FILE}.tmp`, new Uint8Array([1, 2, 3]));
  const secret = loadContextSecret({ fs, directory: DIRECTORY, random: seededRandom(9) });
  assert.equal(loadContextSecret({ fs, directory: DIRECTORY, random: seededRandom(10) }), secret);
  assert.equal(fs.list(DIRECTORY), [CONTEXT_SECRET_FILE]);
});

test("a damaged secret file is refused as corruption, never replaced silently", async () => {
  const path = `${DIRECTORY}/${CONTEXT_SECRET_FILE}`;
  for (const damage of ["flip", "truncate", "format"] as const) {
    const fs = simDirectory();
    loadContextSecret({ fs, directory: DIRECTORY, random: seededRandom(11) });
    const file = fs.fileContent(path).slice();
    if (damage === "flip") file[5]! ^= 0x10;
    if (damage === "format") file[0] = 9;
    fs.setContent(path, damage === "truncate" ? file.subarray(0, 12) : file);
    const error = await rejectsWithCode(() => loadContextSecret({ fs, directory: DIRECTORY, random: seededRandom(12) }), "LOOM_CORRUPTION");
    assert.is(error.path, path, damage);
  }
});

test("a random source that returns only zeros is refused", async () => {
  await rejectsWithCode(() => loadContextSecret({ fs: simDirectory(), directory: DIRECTORY, random: () => {} }), "LOOM_OUT_OF_RANGE");
});

test("on the real disk the secret comes from crypto.getRandomValues and is 21 bytes on disk", () => {
  const directory = temporaryDirectory("secret");
  try {
    const fs = new RealFileSystem();
    const first = loadContextSecret({ fs, directory: directory.path });
    const again = loadContextSecret({ fs, directory: directory.path });
    assert.equal(again, first);
    assert.ok(first.some((byte) => byte !== 0));
    assert.is(readFileSync(join(directory.path, CONTEXT_SECRET_FILE)).length, 21);
    const other = temporaryDirectory("secret");
    try {
      assert.not.equal(loadContextSecret({ fs, directory: other.path }), first, "each cluster has its own secret");
    } finally {
      other.remove();
    }
  } finally {
    directory.remove();
  }
});

test.run();
