import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { MessageChannel } from "node:worker_threads";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Message, MessageType } from "../src/transport/message_types.ts";
import { type FlushTiming, type MessagePortLike, PortTransport } from "../src/transport/port_transport.ts";

/** A port that records what is posted and never delivers anything. */
function recordingPort(): MessagePortLike & { posts: unknown[] } {
  const posts: unknown[] = [];
  return { posts, postMessage: (value: unknown) => void posts.push(value), on: () => undefined, off: () => undefined };
}

const ack = (requestId: number): Message => ({ type: MessageType.replicateAck, requestId, ok: true });

async function runtimeReportsIdleTime(): Promise<boolean> {
  const before = performance.eventLoopUtilization().idle;
  await sleep(5);
  return performance.eventLoopUtilization().idle > before;
}

test("an adaptive transport posts a send that follows an idle loop at the end of its task", async () => {
  const port = recordingPort();
  const transport = new PortTransport({ self: 1, flush: "adaptive" });
  transport.connect(2, port);
  const reportsIdle = await runtimeReportsIdleTime();
  await sleep(2); // the loop sits idle before the send
  transport.send(2, ack(1));
  transport.send(2, ack(2));
  await Promise.resolve();
  // Where the runtime reports no idle time (Deno 2.9), adaptive falls back to setImmediate.
  assert.is(port.posts.length, reportsIdle ? 1 : 0);
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(port.posts.length, 1, "both sends of the turn share one post");
  transport.close();
});

test("adaptive and immediate transports deliver every message in order", async () => {
  for (const flush of ["adaptive", "immediate"] as FlushTiming[]) {
    const channel = new MessageChannel();
    const sender = new PortTransport({ self: 1, flush });
    const receiver = new PortTransport({ self: 2, flush });
    const received: number[] = [];
    receiver.onMessage((_from, message) => received.push(message["requestId"] as number));
    sender.connect(2, channel.port1);
    receiver.connect(1, channel.port2);
    for (let i = 0; i < 50; i++) {
      sender.send(2, ack(i));
      if (i % 10 === 9) await sleep(1);
    }
    const deadline = Date.now() + 5000;
    while (received.length < 50 && Date.now() < deadline) await sleep(2);
    assert.equal(received, Array.from({ length: 50 }, (_, i) => i), flush);
    sender.close();
    receiver.close();
    channel.port1.close();
    channel.port2.close();
  }
});

test.run();
