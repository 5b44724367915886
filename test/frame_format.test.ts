import { MessageChannel } from "node:worker_threads";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createPrng } from "../src/io/prng.ts";
import { cloneSlotTag, decodeFrame, FrameEncoder, frameFormat, frameHeaderBytes, MalformedFrameError } from "../src/transport/frame_format.ts";
import { type Message, MessageType } from "../src/transport/message_types.ts";
import { PortTransport } from "../src/transport/port_transport.ts";
import { transportLimits } from "../src/transport/transport_limits.ts";
import { utf8Encode } from "../src/util/bytes.ts";
import { isError } from "./support/assertions.ts";
import { rejectsWithCode } from "./support/assertions.ts";

const bytes = (text: string): Uint8Array => utf8Encode(text);
const versions = [
  { version: bytes("v1"), value: bytes("hello") },
  { version: bytes("v2"), value: null },
  { version: new Uint8Array(0), value: new Uint8Array(0) },
];

/** One message of every type the frame encodes, in every shape variant. */
const encodable: Message[] = [
  { type: MessageType.requestPut, requestId: 1, key: bytes("k"), value: bytes("v"), context: "", preferenceList: [0, 1, 2], w: 2, timeoutMs: 1000, pruneThreshold: 10, fallbacks: [3, 4], pw: 0 },
  { type: MessageType.requestPut, requestId: 2 ** 40, key: bytes("k"), value: null, context: "AQID-_", preferenceList: [], w: 1, timeoutMs: 5, pruneThreshold: 0, fallbacks: [], pw: 1 },
  { type: MessageType.requestPut, requestId: 3, key: bytes("ké"), value: bytes("v"), context: "contexte à accents", preferenceList: [255], w: 1, timeoutMs: 5, pruneThreshold: 0, fallbacks: [7], pw: 2 },
  { type: MessageType.requestGet, requestId: 4, key: bytes("key"), preferenceList: [2, 0, 1], r: 2, timeoutMs: 1000, fallbacks: [3], pr: 0 },
  { type: MessageType.replicate, requestId: 5, key: bytes("key"), versions },
  { type: MessageType.replicate, requestId: 6, key: bytes("key"), versions: [], hintFor: 0 },
  { type: MessageType.replicateAck, requestId: 7, ok: true },
  { type: MessageType.replicateAck, requestId: 8, ok: false },
  { type: MessageType.read, requestId: 9, key: bytes("key") },
  { type: MessageType.read, requestId: 9, key: bytes("key"), hintFor: 4 },
  { type: MessageType.readReply, requestId: 10, reply: { ok: true, versions } },
  { type: MessageType.readReply, requestId: 11, reply: { ok: false } },
  { type: MessageType.repair, key: bytes("key"), versions },
  { type: MessageType.repair, key: bytes("key"), versions, hintFor: 300 },
  { type: MessageType.response, requestId: 12, node: 2, result: { ok: true, acknowledged: 2, context: "AQIDBA", values: [bytes("w")] } },
  { type: MessageType.response, requestId: 13, node: 0, result: { ok: true, values: [bytes("a"), bytes("")], context: "AQ", siblings: 3 } },
];

/** Messages the frame must carry by structured clone, unchanged. */
const cloned: Message[] = [
  { type: MessageType.response, requestId: 14, result: { ok: false, error: { code: "LOOM_QUORUM", acknowledged: 1, required: 2 } } },
  { type: MessageType.replicate, requestId: 15, key: bytes("key"), versions, epoch: 3 }, // a field added later
  { type: MessageType.requestGet, requestId: -1, key: bytes("key"), preferenceList: [0], r: 1, timeoutMs: 1, fallbacks: [], pr: 0 }, // not a count
  { type: MessageType.readReply, requestId: 16, reply: { ok: true, versions: [{ version: bytes("v"), value: "text" }] } },
  { type: MessageType.streamChunk, stream: 1, keys: [bytes("a")] },
  { type: MessageType.gossip, members: new Map([[1, "up"]]) },
];

function roundTrip(messages: readonly Message[]): { decoded: Message[]; clones: number; frames: number } {
  const encoder = new FrameEncoder();
  const decoded: Message[] = [];
  let clones = 0;
  let frames = 0;
  for (let start = 0; start < messages.length; ) {
    const frame = encoder.encode(messages, start);
    // Through structuredClone as postMessage would carry it, the buffer transferred.
    const carried = structuredClone({ frame: frame.buffer, clones: frame.clones }, { transfer: [frame.buffer] });
    decoded.push(...decodeFrame(carried.frame, carried.clones));
    clones += frame.clones.length;
    frames += 1;
    start = frame.end;
  }
  return { decoded, clones, frames };
}

test("every binary message type survives a frame round trip unchanged, with no clone", () => {
  const { decoded, clones, frames } = roundTrip(encodable);
  assert.is(clones, 0);
  assert.is(frames, 1);
  assert.equal(decoded, encodable);
});

test("messages without a binary shape keep their place in the order and every field", () => {
  const mixed = [encodable[0]!, cloned[0]!, encodable[4]!, cloned[1]!, cloned[2]!, encodable[6]!, cloned[3]!, cloned[4]!, cloned[5]!, encodable[13]!];
  const { decoded, clones } = roundTrip(mixed);
  assert.is(clones, cloned.length);
  assert.equal(decoded, mixed);
  assert.is((decoded[3] as Message)["epoch"], 3);
});

test("a batch past the frame size target is cut into several frames that decode in order", () => {
  const value = new Uint8Array(100 * 1024).fill(7);
  const batch: Message[] = Array.from({ length: 9 }, (_, requestId) => ({
    type: MessageType.replicate,
    requestId,
    key: bytes(`key-${requestId}`),
    versions: [{ version: bytes("v"), value }],
  }));
  const { decoded, frames } = roundTrip(batch);
  const perFrame = Math.ceil(transportLimits.frameBytesTarget / (100 * 1024)); // cut after the message that reaches the target
  assert.is(frames, Math.ceil(9 / perFrame));
  assert.ok(frames > 1);
  assert.equal(decoded, batch);
});

test("a response's values are copies that do not pin the frame; other fields are views", () => {
  const [put, response] = roundTrip([encodable[0]!, encodable[15]!]).decoded;
  const values = (response!["result"] as { values: Uint8Array[] }).values;
  assert.is(values[0]!.buffer.byteLength, values[0]!.byteLength);
  assert.ok((put!["key"] as Uint8Array).buffer.byteLength > 1);
});

function frameOf(messages: readonly Message[]): Uint8Array {
  const frame = new FrameEncoder().encode(messages, 0);
  assert.is(frame.clones.length, 0);
  return new Uint8Array(frame.buffer);
}

function refusesFrame(bytes: Uint8Array, clones: readonly unknown[] = [], pattern?: RegExp): Promise<unknown> {
  const buffer = bytes.slice().buffer;
  return rejectsWithCode(() => decodeFrame(buffer, clones), "LOOM_CORRUPTION", pattern);
}

test("a truncated frame is refused at every cut with MalformedFrameError", async () => {
  const whole = frameOf(encodable);
  for (let length = 0; length < whole.length; length++) await refusesFrame(whole.subarray(0, length));
});

test("bad magic, format, count, tag, trailing bytes and limits are refused", async () => {
  const whole = frameOf([encodable[8]!]); // read: tag requestId key
  const patched = (offset: number, byte: number): Uint8Array => {
    const copy = whole.slice();
    copy[offset] = byte;
    return copy;
  };
  await refusesFrame(patched(0, 0), [], /magic/);
  await refusesFrame(patched(1, 9), [], /format is 9/);
  await refusesFrame(patched(2, 0), [], /count is 0/);
  await refusesFrame(patched(frameHeaderBytes, 60), [], /tag 60/);
  await refusesFrame(new Uint8Array([...whole, 0]), [], /trailing/);
  const hugeKey = new Uint8Array([...whole.subarray(0, frameHeaderBytes), MessageType.read, 1, 0xff, 0xff, 0x7f]);
  await refusesFrame(hugeKey, [], /key length is \d+, limit/);
});

test("clone slots must match the clone list exactly, each one a message", async () => {
  const slot = new Uint8Array([0x4c, frameFormat, 1, 0, 0, 0, cloneSlotTag]);
  assert.equal(decodeFrame(slot.slice().buffer, [cloned[0]]), [cloned[0]]);
  await refusesFrame(slot, [], /holds no message/);
  await refusesFrame(slot, [{ type: 0 }], /holds no message/);
  await refusesFrame(slot, [cloned[0], cloned[0]], /2 clones for 1 clone slots/);
});

test("random bytes and random corruptions never throw anything but MalformedFrameError", () => {
  const prng = createPrng(2024);
  const whole = frameOf(encodable);
  for (let round = 0; round < 2000; round++) {
    const bytes = round % 2 === 0 ? whole.slice() : new Uint8Array(prng.nextInt(64)).map(() => prng.nextInt(256));
    for (let flips = 1 + prng.nextInt(4); flips > 0 && bytes.length > 0; flips--) bytes[prng.nextInt(bytes.length)] = prng.nextInt(256);
    try {
      decodeFrame(bytes.buffer);
    } catch (error) {
      if ((error as { code?: unknown }).code !== "LOOM_CORRUPTION") throw error;
    }
  }
});

test("port transports exchange binary frames, clone fallbacks in order, and count a malformed post without throwing", async () => {
  const channel = new MessageChannel();
  const sender = new PortTransport({ self: 1 });
  const receiver = new PortTransport({ self: 2 });
  const received: Message[] = [];
  receiver.onMessage((_from, message) => received.push(message));
  sender.onMessage(() => {});
  sender.connect(2, channel.port1);
  receiver.connect(1, channel.port2);
  const big: Message = { type: MessageType.replicate, requestId: 99, key: bytes("big"), versions: [{ version: bytes("v"), value: new Uint8Array(100 * 1024).fill(5) }] };
  const batch = [...encodable, big, ...cloned]; // over 64 KiB: this frame is transferred, the next one copied
  try {
    for (const message of batch) sender.send(2, message);
    channel.port1.postMessage(new Uint8Array([1, 2, 3]).buffer); // garbage between two batches
    channel.port1.postMessage({ not: "a frame" });
    await sleep(0);
    for (const message of encodable) sender.send(2, message);
    const deadline = Date.now() + 5000;
    while (received.length < batch.length + encodable.length && Date.now() < deadline) await sleep(2);
    assert.equal(received, [...batch, ...encodable]);
    assert.is(receiver.stats().framesMalformed, 2);
    assert.is(sender.stats().messagesCloned, cloned.length);
    assert.is(sender.stats().batchesSent, 2);
  } finally {
    sender.close();
    receiver.close();
    channel.port1.close();
    channel.port2.close();
  }
});

test("a clone-wire sender and a binary-wire receiver interoperate", async () => {
  const channel = new MessageChannel();
  const sender = new PortTransport({ self: 1, wire: "clone" });
  const receiver = new PortTransport({ self: 2 });
  const received: Message[] = [];
  receiver.onMessage((_from, message) => received.push(message));
  sender.connect(2, channel.port1);
  receiver.connect(1, channel.port2);
  try {
    for (const message of encodable) sender.send(2, message);
    const deadline = Date.now() + 5000;
    while (received.length < encodable.length && Date.now() < deadline) await sleep(2);
    assert.equal(received, encodable);
    assert.is(sender.stats().messagesCloned, encodable.length);
  } finally {
    sender.close();
    receiver.close();
    channel.port1.close();
    channel.port2.close();
  }
});

test("an unknown wire option is refused", async () => {
  await rejectsWithCode(() => new PortTransport({ self: 1, wire: "json" as never }), "LOOM_INVALID_ARGUMENT");
});

test.run();
