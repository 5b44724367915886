import { test } from "uvu";
import * as assert from "uvu/assert";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as nodePath from "node:path";
import type { FileHandle } from "../src/io/file_system.ts";
import { createPrng } from "../src/io/prng.ts";
import { RealFileSystem } from "../src/io/real_file_system.ts";
import { SimFileSystem } from "../src/io/sim_file_system.ts";
import { equalBytes } from "../src/util/bytes.ts";
import { crc32c, maskCrc } from "../src/util/crc32c.ts";
import { blockBytesLeft, FragmentType, LOG_BLOCK_BYTES, LOG_HEADER_BYTES, LOG_RECORD_BYTES_MAX } from "../src/storage/log_format.ts";
import { readLog, type LogReadResult } from "../src/storage/log_reader.ts";
import { LogWriter } from "../src/storage/log_writer.ts";
import { rejectsWithCode, type CodedError } from "./support/assertions.ts";

const BLOCK = LOG_BLOCK_BYTES;
const HEADER = LOG_HEADER_BYTES;
const fs = new RealFileSystem();
const directory = nodeFs.mkdtempSync(nodePath.join(os.tmpdir(), "loomkv-log-test-"));
let fileCount = 0;

test.after(() => nodeFs.rmSync(directory, { recursive: true, force: true }));

function freshPath(): string {
  return nodePath.join(directory, `${++fileCount}.log`);
}

/** Seeded test randomness from the project's PRNG: the same seed gives the same data on every run. */
function seededRandom(seed: number): () => number {
  const random = createPrng(seed);
  return () => random.nextFloat();
}

function payloadOf(size: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = Math.floor(random() * 256);
  return out;
}

interface Span {
  /** Offset of the record's first fragment header. */
  readonly start: number;
  /** Offset just past its last fragment. */
  readonly end: number;
}

/** Appends `payloads` through `writer`, flushing after each, and returns where each record landed. */
function appendRecords(writer: LogWriter, handle: FileHandle, payloads: readonly Uint8Array[]): Span[] {
  const spans: Span[] = [];
  for (const payload of payloads) {
    const at = handle.size();
    writer.addRecord(payload);
    writer.flush();
    spans.push({ start: blockBytesLeft(at) < HEADER ? at + blockBytesLeft(at) : at, end: handle.size() });
  }
  return spans;
}

function writeLog(path: string, payloads: readonly Uint8Array[]): Span[] {
  const handle = fs.open(path, "create");
  const writer = new LogWriter(handle);
  const spans = appendRecords(writer, handle, payloads);
  writer.close();
  return spans;
}

/** Checks the records read back against the payloads written: same count, same bytes. */
function assertRecords(result: LogReadResult, expected: readonly Uint8Array[], message?: string): void {
  assert.is(result.records.length, expected.length, message);
  expected.forEach((payload, index) => {
    assert.ok(equalBytes(result.records[index]!, payload), `${message ?? ""} record ${index} differs`);
  });
}

/** Like assertRecords, comparing lengths and checksums (fast enough to run after every cut). */
function assertRecordChecksums(result: LogReadResult, expected: readonly Uint8Array[], message: string): void {
  assert.is(result.records.length, expected.length, message);
  expected.forEach((payload, index) => {
    const record = result.records[index]!;
    assert.ok(record.length === payload.length && crc32c(record) === crc32c(payload), `${message}: record ${index} differs`);
  });
}

function flipByte(path: string, offset: number, mask = 0xff): void {
  const fd = nodeFs.openSync(path, "r+");
  try {
    const byte = new Uint8Array(1);
    assert.is(nodeFs.readSync(fd, byte, 0, 1, offset), 1, `byte ${offset} exists`);
    byte[0] = byte[0]! ^ mask;
    nodeFs.writeSync(fd, byte, 0, 1, offset);
  } finally {
    nodeFs.closeSync(fd);
  }
}

/** The LOOM_CORRUPTION error reading `path` throws. */
async function readCorruption(path: string): Promise<CodedError & { path: string; offset: number }> {
  return (await rejectsWithCode(() => readLog(fs, path), "LOOM_CORRUPTION")) as CodedError & { path: string; offset: number };
}

test("records of random sizes up to 100 KB come back in order with their offsets", () => {
  const random = seededRandom(1);
  const payloads = Array.from({ length: 120 }, (_, i) => {
    const size = random() < 0.5 ? Math.floor(random() * 200) : Math.floor(random() * 100_001);
    return payloadOf(size, 100 + i);
  });
  const path = freshPath();
  const spans = writeLog(path, payloads);
  const result = readLog(fs, path);
  assertRecords(result, payloads);
  assert.equal(result.recordOffsets, spans.map((span) => span.start));
  assert.is(result.validBytes, nodeFs.statSync(path).size);
  assert.is(result.tornTail, null);
  assert.ok(payloads.some((payload) => payload.length > 2 * BLOCK), "some record spans three or more blocks");
});

test("one flush appends every pending record in a single write", () => {
  const path = freshPath();
  const handle = fs.open(path, "create");
  let appends = 0;
  let syncs = 0;
  const counting: FileHandle = {
    path: handle.path,
    append: (data) => (appends++, handle.append(data)),
    readAt: (buffer, position) => handle.readAt(buffer, position),
    size: () => handle.size(),
    sync: () => (syncs++, handle.sync()),
    truncate: (length) => handle.truncate(length),
    close: () => handle.close(),
  };
  const writer = new LogWriter(counting);
  const payloads = Array.from({ length: 50 }, (_, i) => payloadOf(i * 1500, i));
  for (const payload of payloads) writer.addRecord(payload);
  assert.is(appends, 0, "framing writes nothing");
  assert.ok(writer.pendingBytes > 50 * 1500 * 49 / 2);
  writer.sync();
  assert.is(appends, 1);
  assert.is(syncs, 1);
  assert.is(writer.pendingBytes, 0);
  assert.is(writer.bytesWritten, handle.size());
  writer.flush();
  assert.is(appends, 1, "flushing nothing writes nothing");
  writer.close();
  assertRecords(readLog(fs, path), payloads);
});

test("a record that exactly fills a block is one full fragment and the next record starts the next block", () => {
  const path = freshPath();
  const payloads = [payloadOf(BLOCK - HEADER, 7), payloadOf(10, 8)];
  const spans = writeLog(path, payloads);
  const bytes = nodeFs.readFileSync(path);
  assert.is(spans[0]!.end, BLOCK);
  assert.is(bytes[6], FragmentType.full);
  assert.is(bytes[4]! | (bytes[5]! << 8), BLOCK - HEADER);
  assert.is(spans[1]!.start, BLOCK);
  assertRecords(readLog(fs, path), payloads);
});

test("a header that would straddle a block end leaves a zero-filled trailer the reader skips", () => {
  for (let gap = 1; gap < HEADER; gap++) {
    const path = freshPath();
    // Flushing between records reuses the pending buffer, so stale bytes would show in the trailer.
    const payloads = [payloadOf(BLOCK - HEADER - gap, gap), payloadOf(300, 50 + gap)];
    const spans = writeLog(path, payloads);
    const bytes = nodeFs.readFileSync(path);
    assert.is(spans[1]!.start, BLOCK, `gap ${gap}`);
    assert.equal([...bytes.subarray(BLOCK - gap, BLOCK)], new Array<number>(gap).fill(0), `gap ${gap}`);
    const result = readLog(fs, path);
    assertRecords(result, payloads, `gap ${gap}`);
    assert.is(result.tornTail, null);
  }
});

test("with exactly a header's room left, a record starts with an empty first fragment", () => {
  const path = freshPath();
  const payloads = [payloadOf(BLOCK - 2 * HEADER, 1), payloadOf(500, 2), new Uint8Array(0)];
  const spans = writeLog(path, payloads);
  const bytes = nodeFs.readFileSync(path);
  assert.is(spans[1]!.start, BLOCK - HEADER);
  assert.is(bytes[BLOCK - 1], FragmentType.first);
  assert.is(bytes[BLOCK - 3]! | bytes[BLOCK - 2]!, 0, "zero length");
  assert.is(bytes[BLOCK + 6], FragmentType.last);
  assertRecords(readLog(fs, path), payloads);
});

test("an empty record is a full fragment of length 0 whose checksum covers its type", () => {
  const path = freshPath();
  writeLog(path, [new Uint8Array(0)]);
  const bytes = nodeFs.readFileSync(path);
  assert.is(bytes.length, HEADER);
  assert.is(bytes.readUInt32LE(0), maskCrc(crc32c(Uint8Array.of(FragmentType.full))));
  const result = readLog(fs, path);
  assertRecords(result, [new Uint8Array(0)]);
  assert.equal(result.recordOffsets, [0]);
});

test("a writer reopened on a log that ends inside a block continues that block", () => {
  // Sizes leave the file with a header's room and with only trailer room in the last block.
  for (const firstSize of [1000, BLOCK - HEADER - 3]) {
    const path = freshPath();
    const before = [payloadOf(firstSize, 1)];
    writeLog(path, before);
    const oldSize = nodeFs.statSync(path).size;
    const handle = fs.open(path, "append");
    const writer = new LogWriter(handle);
    const after = [payloadOf(BLOCK, 2), payloadOf(20, 3)];
    const spans = appendRecords(writer, handle, after);
    writer.close();
    const expectedStart = blockBytesLeft(oldSize) < HEADER ? oldSize + blockBytesLeft(oldSize) : oldSize;
    assert.is(spans[0]!.start, expectedStart);
    const result = readLog(fs, path);
    assertRecords(result, [...before, ...after], `first size ${firstSize}`);
    assert.is(result.recordOffsets[1], expectedStart);
    assert.is(result.tornTail, null);
  }
});

/**
 * Checks what reading a log cut after `cut` bytes returned: every record that ends at or before
 * the cut, no other record, and a torn tail starting at the first missing record exactly when the
 * cut leaves more than zero padding after the last whole record.
 */
function assertCutOutcome(result: LogReadResult, payloads: readonly Uint8Array[], spans: readonly Span[], cut: number): void {
  const whole = spans.filter((span) => span.end <= cut).length;
  const lastEnd = whole === 0 ? 0 : spans[whole - 1]!.end;
  const onlyPadding = cut === lastEnd || (blockBytesLeft(lastEnd) < HEADER && cut - lastEnd <= blockBytesLeft(lastEnd));
  assertRecordChecksums(result, payloads.slice(0, whole), `cut at ${cut}`);
  assert.is(result.validBytes, lastEnd, `cut at ${cut}`);
  if (onlyPadding) assert.is(result.tornTail, null, `cut at ${cut}`);
  else assert.is(result.tornTail?.offset, spans[whole]!.start, `cut at ${cut}`);
}

/** Truncates a copy of the log at each of `cuts` and checks each outcome (see assertCutOutcome). */
function checkCuts(path: string, payloads: readonly Uint8Array[], spans: readonly Span[], cuts: readonly number[]): void {
  const cutPath = `${path}.cut`;
  nodeFs.copyFileSync(path, cutPath);
  const handle = fs.open(cutPath, "append");
  try {
    for (const cut of [...new Set(cuts)].sort((a, b) => b - a)) {
      handle.truncate(cut);
      assertCutOutcome(readLog(fs, cutPath), payloads, spans, cut);
    }
  } finally {
    handle.close();
  }
}

function range(from: number, to: number, step = 1): number[] {
  const out: number[] = [];
  for (let i = Math.max(0, from); i < to; i += step) out.push(i);
  return out;
}

test("a log cut at any byte inside its last three records returns exactly the records before the cut", () => {
  const path = freshPath();
  // The middle one of the last three crosses the first block boundary (a first and a last fragment).
  const payloads = [payloadOf(BLOCK - 400 - HEADER, 1), payloadOf(100, 2), payloadOf(286 + 1000, 3), payloadOf(300, 4)];
  const spans = writeLog(path, payloads);
  assert.ok(spans[2]!.start < BLOCK && spans[2]!.end > BLOCK, "a record crosses the block boundary");
  checkCuts(path, payloads, spans, range(spans[1]!.start, spans[3]!.end + 1));
});

test("a log cut inside a zero-filled block trailer keeps every record before it and reports no torn tail", () => {
  const path = freshPath();
  const payloads = [payloadOf(BLOCK - HEADER - 3, 1), payloadOf(50, 2)];
  const spans = writeLog(path, payloads);
  assert.is(spans[0]!.end, BLOCK - 3);
  checkCuts(path, payloads, spans, range(BLOCK - 20, spans[1]!.end + 1));
});

test("a record spanning three blocks, cut around each fragment boundary and at a stride, is never returned in part", () => {
  const path = freshPath();
  const payloads = [payloadOf(100, 1), payloadOf(2 * BLOCK, 2), payloadOf(100, 3)];
  const spans = writeLog(path, payloads);
  assert.ok(spans[1]!.end > 2 * BLOCK + HEADER, "the record has first, middle and last fragments");
  const edges = [spans[1]!.start, BLOCK, 2 * BLOCK, spans[1]!.end, spans[2]!.end];
  const cuts = [...edges.flatMap((edge) => range(edge - 16, edge + 17)), ...range(spans[1]!.start, spans[1]!.end, 997)];
  checkCuts(path, payloads, spans, cuts.filter((cut) => cut <= spans[2]!.end));
});

test("a small log cut at every byte returns exactly the records before the cut", () => {
  const path = freshPath();
  const payloads = [new Uint8Array(0), payloadOf(1, 1), payloadOf(40, 2), new Uint8Array(0), payloadOf(100, 3)];
  const spans = writeLog(path, payloads);
  checkCuts(path, payloads, spans, range(0, spans[4]!.end + 1));
});

test("after a simulated crash at every torn-tail length, the synced records survive and no record is invented", () => {
  const payloads = [payloadOf(300, 1), payloadOf(BLOCK - 320 - 2 * HEADER - 4, 2), payloadOf(0, 3), payloadOf(900, 4), payloadOf(40, 5)];
  const syncedRecords = 2;
  const path = "/db/000001.log";
  let unsynced = -1;
  for (let kept = 0; unsynced < 0 || kept <= unsynced; kept++) {
    const simulated = new SimFileSystem(createPrng(kept));
    simulated.makeDirectory("/db");
    const handle = simulated.open(path, "create");
    simulated.syncDirectory("/db");
    const writer = new LogWriter(handle);
    const spans = appendRecords(writer, handle, payloads.slice(0, syncedRecords));
    writer.sync();
    const syncedBytes = handle.size();
    spans.push(...appendRecords(writer, handle, payloads.slice(syncedRecords)));
    unsynced = handle.size() - syncedBytes;
    simulated.crash({ tornTail: (_path, count) => (assert.is(count, unsynced), kept) });
    const result = readLog(simulated, path);
    assert.ok(result.records.length >= syncedRecords, `kept ${kept}`);
    assertCutOutcome(result, payloads, spans, syncedBytes + kept);
  }
});

test("a flipped byte in a middle record is corruption naming the file and the damaged fragment", async () => {
  const path = freshPath();
  const payloads = Array.from({ length: 60 }, (_, i) => payloadOf(100 + i * 50, i));
  const spans = writeLog(path, payloads);
  const damaged = spans[1]!;
  assert.ok(nodeFs.statSync(path).size > 2 * BLOCK, "valid blocks follow the damaged record");
  for (let offset = damaged.start; offset < damaged.end; offset++) {
    for (const mask of [0x01, 0x80]) {
      flipByte(path, offset, mask);
      const error = await readCorruption(path);
      assert.is(error.path, path);
      assert.ok(error.offset >= damaged.start && error.offset <= offset, `flip at ${offset} reported at ${error.offset}`);
      flipByte(path, offset, mask);
    }
  }
  assertRecords(readLog(fs, path), payloads, "restored log");
});

test("a flipped byte in a middle fragment of a record spanning blocks is corruption at that fragment", async () => {
  const path = freshPath();
  const payloads = [payloadOf(100, 1), payloadOf(3 * BLOCK, 2), payloadOf(100, 3)];
  writeLog(path, payloads);
  for (const offset of [BLOCK, BLOCK + 4, BLOCK + 6, BLOCK + 7, BLOCK + 20_000, 2 * BLOCK - 1]) {
    flipByte(path, offset);
    const error = await readCorruption(path);
    assert.is(error.offset, BLOCK, `flip at ${offset}`);
    flipByte(path, offset);
  }
});

test("a flipped byte in the last record is a torn tail, not corruption", () => {
  const path = freshPath();
  const payloads = Array.from({ length: 20 }, (_, i) => payloadOf(i === 19 ? 150 : 2000 + i, i));
  const spans = writeLog(path, payloads);
  const last = spans[spans.length - 1]!;
  assert.is(last.end - last.start, HEADER + payloads[payloads.length - 1]!.length, "the last record is one fragment");
  for (let offset = last.start; offset < last.end; offset++) {
    for (const mask of [0x01, 0x80]) {
      flipByte(path, offset, mask);
      const result = readLog(fs, path);
      assertRecords(result, payloads.slice(0, -1), `flip at ${offset}`);
      assert.is(result.tornTail?.offset, last.start, `flip at ${offset}`);
      assert.is(result.validBytes, last.start);
      flipByte(path, offset, mask);
    }
  }
});

test("damage in the last fragment of a final record spanning blocks is a torn tail, in its first fragment corruption", async () => {
  const path = freshPath();
  const payloads = [payloadOf(100, 1), payloadOf(BLOCK + 500, 2)];
  const spans = writeLog(path, payloads);
  flipByte(path, spans[1]!.end - 1);
  const result = readLog(fs, path);
  assertRecords(result, payloads.slice(0, 1));
  assert.is(result.tornTail?.offset, spans[1]!.start);
  assert.match(result.tornTail?.reason ?? "", "checksum");
  flipByte(path, spans[1]!.end - 1);
  flipByte(path, spans[1]!.start + HEADER + 10);
  assert.is((await readCorruption(path)).offset, spans[1]!.start);
});

test("garbage appended after a valid log is a torn tail at the end of the log", () => {
  for (const garbageBytes of [1, 6, 7, 100, 40_000]) {
    const path = freshPath();
    const payloads = [payloadOf(3000, 1), payloadOf(50, 2)];
    const spans = writeLog(path, payloads);
    nodeFs.appendFileSync(path, payloadOf(garbageBytes, garbageBytes));
    const result = readLog(fs, path);
    assertRecords(result, payloads, `${garbageBytes} garbage bytes`);
    assert.is(result.validBytes, spans[1]!.end);
    assert.is(result.tornTail?.offset, spans[1]!.end, `${garbageBytes} garbage bytes`);
  }
});

test("zero-filled space after the log is a torn tail, and zeroed space before valid blocks is corruption", async () => {
  const path = freshPath();
  const payloads = [payloadOf(100, 1), payloadOf(200, 2)];
  const spans = writeLog(path, payloads);
  nodeFs.appendFileSync(path, new Uint8Array(2 * BLOCK - spans[1]!.end));
  const result = readLog(fs, path);
  assertRecords(result, payloads);
  assert.is(result.tornTail?.offset, spans[1]!.end);
  assert.match(result.tornTail?.reason ?? "", "type 0");
  // A copy of the first record now starts the third block: valid data after the zeroed space.
  nodeFs.appendFileSync(path, nodeFs.readFileSync(path).subarray(0, spans[0]!.end));
  assert.is((await readCorruption(path)).offset, spans[1]!.end);
});

test("a non-zero byte in a block trailer followed by a valid block is corruption at that byte", async () => {
  const path = freshPath();
  const payloads = [payloadOf(BLOCK - HEADER - 4, 1), payloadOf(100, 2)];
  writeLog(path, payloads);
  flipByte(path, BLOCK - 2);
  const error = await readCorruption(path);
  assert.is(error.offset, BLOCK - 2);
  assert.match(error.message, "trailer");
});

test("a last fragment without its first is corruption at that fragment", async () => {
  const path = freshPath();
  writeLog(path, [payloadOf(BLOCK + 500, 1)]);
  const orphanPath = freshPath();
  nodeFs.writeFileSync(orphanPath, nodeFs.readFileSync(path).subarray(BLOCK));
  const error = await readCorruption(orphanPath);
  assert.is(error.offset, 0);
  assert.match(error.message, "last fragment without a first");
});

test("a new record where an unfinished record should continue (appending after a torn write) is corruption", async () => {
  const path = freshPath();
  writeLog(path, [payloadOf(BLOCK + 500, 1)]);
  const other = freshPath();
  writeLog(other, [payloadOf(100, 2)]);
  nodeFs.truncateSync(path, BLOCK);
  nodeFs.appendFileSync(path, nodeFs.readFileSync(other));
  const error = await readCorruption(path);
  assert.is(error.offset, BLOCK);
  assert.match(error.message, "inside the unfinished record at 0");
});

test("a damaged length in the final block cannot be told from a torn write and reads as a torn tail", async () => {
  const path = freshPath();
  const payloads = [payloadOf(100, 1), payloadOf(100, 2), payloadOf(100, 3)];
  const spans = writeLog(path, payloads);
  // The second record's length now points past the end of the file: where the third begins is lost.
  flipByte(path, spans[1]!.start + 5, 0x10);
  const result = readLog(fs, path);
  assertRecords(result, payloads.slice(0, 1));
  assert.is(result.tornTail?.offset, spans[1]!.start);
  // A damaged payload keeps the length right, so the third record is found and reported.
  flipByte(path, spans[1]!.start + 5, 0x10);
  flipByte(path, spans[1]!.start + HEADER + 50);
  assert.is((await readCorruption(path)).offset, spans[1]!.start);
});

test("a writer refuses oversized payloads and any use after close", async () => {
  const path = freshPath();
  const writer = new LogWriter(fs.open(path, "create"));
  await rejectsWithCode(() => writer.addRecord(new Uint8Array(LOG_RECORD_BYTES_MAX + 1)), "LOOM_OUT_OF_RANGE", /limit is/);
  writer.addRecord(payloadOf(10, 1));
  writer.close();
  await rejectsWithCode(() => writer.addRecord(new Uint8Array(1)), "LOOM_CLOSED");
  await rejectsWithCode(() => writer.flush(), "LOOM_CLOSED");
  writer.close();
  assertRecords(readLog(fs, path), [payloadOf(10, 1)], "close flushes pending records");
});

test.run();
