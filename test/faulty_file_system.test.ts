/**
 * Disk faults injected around a real and a simulated file system: a store on a failing disk
 * refuses writes with IoError and never acknowledges one it could not make durable.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { FaultyFileSystem } from "../src/io/faulty_file_system.ts";
import type { FileSystem } from "../src/io/file_system.ts";
import { RealClock } from "../src/io/real_clock.ts";
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { SimFileSystem } from "../src/io/sim_file_system.ts";
import { createPrng } from "../src/io/prng.ts";
import { InlineStorageJobs } from "../src/storage/storage_jobs.ts";
import { Store } from "../src/storage/store.ts";
import { bytesOf, temporaryDirectory, textOf } from "./support/store_harness.ts";
import { rejectsWithCode } from "./support/assertions.ts";

const version = new Uint8Array([1]);

async function withDisk(name: string, body: (fs: FileSystem, directory: string) => Promise<void>): Promise<void> {
  if (name === "real") {
    const directory = temporaryDirectory("faulty");
    try {
      await body(new RealFileSystem(), directory.path);
    } finally {
      directory.remove();
    }
  } else {
    await body(new SimFileSystem(createPrng(7)), "/store");
  }
}

const open = (fs: FileSystem, directory: string) =>
  Store.open({ directory, fs, clock: new RealClock(), jobs: new InlineStorageJobs(fs), fsync: "always", memtableBytes: 64 * 1024 });

for (const disk of ["real", "simulated"]) {
  for (const fault of ["fsync", "full"] as const) {
    test(`on the ${disk} disk a "${fault}" fault makes the store refuse writes with IoError; what it acknowledged before survives`, async () => {
      await withDisk(disk, async (inner, directory) => {
        const faulty = new FaultyFileSystem(inner);
        const store = await open(faulty, directory);
        await store.put("before", [{ version, value: "kept" }]);
        faulty.setFault(fault);
        // Not acknowledged on a failing disk:
        await rejectsWithCode(() => store.put("during", [{ version, value: "refused" }]), "LOOM_IO", fault === "fsync" ? /EIO/ : /ENOSPC/);
        assert.ok(faulty.injected > 0);
        faulty.setFault(null);
        // A store that saw its log fail refuses later writes until reopened.
        await rejectsWithCode(() => store.put("after", [{ version, value: "x" }]), "LOOM_IO");
        assert.is(textOf(store.get(bytesOf("before"))[0]?.value), "kept", "reads still work");
        await store.close().catch(() => {});
        const reopened = await open(inner, directory);
        assert.is(textOf(reopened.get(bytesOf("before"))[0]?.value), "kept");
        assert.equal(reopened.get(bytesOf("after")), []);
        await reopened.close();
      });
    });
  }
}

test("with no fault the wrapper changes nothing: writes and reads pass through", async () => {
  const inner = new SimFileSystem(createPrng(7));
  const faulty = new FaultyFileSystem(inner);
  const store = await open(faulty, "/store");
  await store.put("k", [{ version, value: "v" }]);
  await store.close();
  const reopened = await open(inner, "/store");
  assert.is(textOf(reopened.get(bytesOf("k"))[0]?.value), "v");
  assert.is(faulty.injected, 0);
  await reopened.close();
});

test.run();
