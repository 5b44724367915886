/**
 * Context signing micro-benchmark, run by hand: what the tag costs on every write and read.
 *   Node: npx tsc -p . && node dist/bench/context_signer.bench.js
 *   Deno: npx deno run -A bench/context_signer.bench.ts
 *
 * A typical context (two actors, as a read of a key written through two coordinators returns)
 * for a 13-byte key, and the largest one (64 actors). Each tinybench iteration runs OPERATIONS
 * operations; figures are per operation, in microseconds. "unsigned" rows use a signer that does
 * nothing, so the difference to the signed rows is the tag's share. HMAC-SHA256 (node:crypto) of
 * the same bytes is the comparison point. docs/versioning.md quotes the results.
 */
import { createHmac } from "node:crypto";
import process, { stdout } from "node:process";
import { Bench, type Task } from "tinybench";
import { sipHash24, sipHashKey } from "../src/util/siphash.ts";
import { contextTagBytes, createContextSigner, type ContextSigner } from "../src/version/context_signer.ts";
import { type CausalContext, clockEntriesMax } from "../src/version/dotted_version_vector.ts";
import { decodeContext, encodeContext } from "../src/version/version_codec.ts";

const OPERATIONS = 1000;
const TIME_MS = Number(process.env["BENCH_TIME_MS"] ?? 1000);

const secret = Uint8Array.from({ length: 16 }, (_, index) => index * 17);
const signer = createContextSigner(secret);
/** Signs nothing and accepts everything: the codec's cost without the tag. */
const unsigned: ContextSigner = { sign: () => new Uint8Array(contextTagBytes), verify: () => true };
const key = new TextEncoder().encode("user:00012345");

const typical: CausalContext = {
  entries: [
    { actor: 1, counter: 48_211, timestampMs: 1_700_000_000_000, frontier: true },
    { actor: 3, counter: 47_905, timestampMs: 1_699_999_998_500, frontier: false },
  ],
};
const largest: CausalContext = {
  entries: Array.from({ length: clockEntriesMax }, (_, actor) => ({
    actor,
    counter: 1_000_000_000 + actor,
    timestampMs: 1_700_000_000_000 - actor * 1000,
    frontier: actor % 2 === 0,
  })),
};

function encoded(context: CausalContext, by: ContextSigner): string {
  return encodeContext(context, { key, signer: by });
}

/** The bytes the tag covers for the typical context: keyLength, key, body. */
const typicalText = encoded(typical, signer);
const typicalBody = Uint8Array.from(atob(typicalText.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0)).subarray(0, -contextTagBytes);
const signedBytes = new Uint8Array([key.length, ...key, ...typicalBody]);
const sipKey = sipHashKey(secret);
const tagOut = new Uint8Array(8);
const typicalTag = signer.sign(key, typicalBody);
const typicalUnsignedText = encoded(typical, unsigned);
const largestText = encoded(largest, signer);

function repeat(operation: () => unknown): () => void {
  return () => {
    for (let index = 0; index < OPERATIONS; index++) operation();
  };
}

const tasks: [string, () => unknown][] = [
  [`SipHash-2-4 of ${signedBytes.length} bytes`, () => sipHash24(sipKey, signedBytes, tagOut)],
  [`HMAC-SHA256 of ${signedBytes.length} bytes (node:crypto)`, () => createHmac("sha256", secret).update(signedBytes).digest()],
  ["signer.verify (typical)", () => signer.verify(key, typicalBody, typicalTag)],
  ["encodeContext, signed (typical)", () => encoded(typical, signer)],
  ["encodeContext, unsigned (typical)", () => encoded(typical, unsigned)],
  ["decodeContext, signed (typical)", () => decodeContext(typicalText, { key, signer })],
  ["decodeContext, unsigned (typical)", () => decodeContext(typicalUnsignedText, { key, signer: unsigned })],
  ["encodeContext, signed (64 entries)", () => encoded(largest, signer)],
  ["decodeContext, signed (64 entries)", () => decodeContext(largestText, { key, signer })],
];

const bench = new Bench({ time: TIME_MS, warmupTime: 200, throws: true });
for (const [name, operation] of tasks) {
  operation(); // fails loudly before measuring if anything is wrong
  bench.add(name, repeat(operation));
}
await bench.run();

function perOperationUs(task: Task): { mean: number; p50: number; p99: number } {
  const result = task.result;
  if (result.state !== "completed") throw new Error(`bench failed: task "${task.name}" ended ${result.state}`);
  const scale = 1000 / OPERATIONS;
  return { mean: result.latency.mean * scale, p50: result.latency.p50 * scale, p99: result.latency.p99 * scale };
}

const runtime = (process.versions as Record<string, string | undefined>)["deno"] ? `Deno ${process.versions["deno"]}` : `Node ${process.version}`;
stdout.write(`${runtime}, ${OPERATIONS} operations per iteration, figures per operation\n`);
stdout.write(`| task | mean µs | p50 µs | p99 µs |\n|---|---:|---:|---:|\n`);
for (const task of bench.tasks) {
  const { mean, p50, p99 } = perOperationUs(task);
  stdout.write(`| ${task.name} | ${mean.toFixed(3)} | ${p50.toFixed(3)} | ${p99.toFixed(3)} |\n`);
}
stdout.write(`typical context: ${typicalText.length} characters (${typicalText})\n`);
