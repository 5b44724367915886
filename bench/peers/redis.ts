/**
 * Redis behind the YCSB interface, through ioredis. A round is one explicit `pipeline()` holding
 * the round's GET and SET commands, sent with one `exec()` (no auto-pipelining, no MULTI): the
 * same depth as loomkv's requests in flight. Single reads are plain awaited `getBuffer` calls.
 * Keys and values go as Buffers viewing the suite's bytes (no copy, no string conversion).
 */
import { Redis } from "ioredis";
import { loadValue, recordKey, type OperationStream, type YcsbData } from "../ycsb_workload.ts";
import { packageVersion } from "./package_version.ts";
import { REDIS_HOST, type RedisServer } from "./redis_server.ts";
import type { YcsbPeer } from "./ycsb_peer.ts";

const LOAD_PIPELINE_COMMANDS = 1000;

function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export async function openRedisPeer(server: RedisServer): Promise<RedisPeer> {
  const client = new Redis({ host: REDIS_HOST, port: server.port, lazyConnect: true, enableAutoPipelining: false, maxRetriesPerRequest: 1 });
  await client.connect();
  return new RedisPeer(client, server);
}

export class RedisPeer implements YcsbPeer {
  readonly name: string;
  readonly version: string;
  readonly durability: string;
  readonly requestPath: string;
  readonly #client: Redis;
  readonly #server: RedisServer;

  constructor(client: Redis, server: RedisServer) {
    this.#client = client;
    this.#server = server;
    this.version = `redis-server ${server.version}, ioredis ${packageVersion("ioredis")}`;
    this.name = server.persistence === "none" ? "redis" : "redis AOF everysec";
    this.durability =
      server.persistence === "none"
        ? "no persistence (`--save '' --appendonly no`): a SET is acknowledged from memory; survives nothing (not even a process crash), no replica"
        : "append-only file, `appendfsync everysec`: a SET is acknowledged once written to the AOF (write(2)), which is fsync'ed once a second in a background thread; survives a process crash, loses up to about a second on power loss, no replica";
    this.requestPath = `one ioredis client, one TCP connection to 127.0.0.1; a round is one pipeline() + exec(); server flags: ${server.flags.join(" ")}`;
  }

  async load(data: YcsbData): Promise<void> {
    for (let start = 0; start < data.recordCount; start += LOAD_PIPELINE_COMMANDS) {
      const pipeline = this.#client.pipeline();
      for (let record = start; record < Math.min(data.recordCount, start + LOAD_PIPELINE_COMMANDS); record++) {
        pipeline.set(bufferOf(recordKey(record)), bufferOf(loadValue(data, record)));
      }
      checkReplies(await pipeline.exec(), false);
    }
  }

  async runRound(stream: OperationStream, start: number, count: number): Promise<void> {
    const mask = stream.records.length - 1;
    const pipeline = this.#client.pipeline();
    for (let i = 0; i < count; i++) {
      const at = (start + i) & mask;
      if (stream.reads[at] === 1) pipeline.getBuffer(bufferOf(stream.keys[at]!));
      else pipeline.set(bufferOf(stream.keys[at]!), bufferOf(stream.values[at]!));
    }
    checkReplies(await pipeline.exec(), true);
  }

  serverCpuMicros(): number | undefined {
    return this.#server.cpuMicros();
  }

  async readOne(key: Uint8Array): Promise<void> {
    if ((await this.#client.getBuffer(bufferOf(key))) === null) throw new Error("bench failed: redis found no value for a loaded key");
  }

  async describe(): Promise<Record<string, string | number>> {
    const info = await this.#client.info("memory");
    const used = /used_memory:(\d+)/.exec(info)?.[1];
    return { keys: await this.#client.dbsize(), "used memory MiB": used === undefined ? "?" : Number((Number(used) / 2 ** 20).toFixed(1)) };
  }

  async close(): Promise<void> {
    await this.#client.quit();
    await this.#server.stop();
  }
}

/** Throws on a failed command, or (reads) on a missing value. */
function checkReplies(replies: [error: Error | null, result: unknown][] | null, readsMustHit: boolean): void {
  if (replies === null) throw new Error("bench failed: redis pipeline was discarded");
  for (const [error, result] of replies) {
    if (error) throw new Error(`bench failed: redis command failed: ${error.message}`);
    if (readsMustHit && result === null) throw new Error("bench failed: redis found no value for a loaded key");
  }
}
