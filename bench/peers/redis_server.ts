/**
 * A throwaway redis-server for the benchmark: found on PATH, started on a free loopback port with
 * its own temporary directory, without persistence (`--save "" --appendonly no`) or with an
 * append-only file synced every second (`--appendonly yes --appendfsync everysec`, what Redis
 * users run for durability), stopped and removed at the end. `cpuMicros` reads the server
 * process's CPU time (all its threads) from /proc, for CPU per operation beside loomkv's. When redis-server is not installed, `findRedisServer` says so and the
 * bench runs without Redis.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REDIS_HOST = "127.0.0.1";
/** "none": acknowledged from memory; "aof-everysec": appended to the AOF, fsync'ed once a second. */
export type RedisPersistence = "none" | "aof-everysec";
/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux). */
const USER_HZ = 100;
/** How long a starting server may take to accept connections. */
const START_TIMEOUT_MS = 10_000;

export interface RedisServer {
  readonly port: number;
  /** "7.0.15" */
  readonly version: string;
  /** The server's command line flags, for the report. */
  readonly flags: readonly string[];
  readonly persistence: RedisPersistence;
  /** CPU time the server process has used (user + system, every thread), in µs; undefined without /proc. */
  cpuMicros(): number | undefined;
  stop(): Promise<void>;
}

/** Servers started and not yet stopped; `killLiveRedisServers` ends them after a signal. */
const live = new Set<{ child: ChildProcess; directory: string }>();

export function killLiveRedisServers(): void {
  for (const server of live) {
    server.child.kill("SIGKILL");
    rmSync(server.directory, { recursive: true, force: true });
  }
  live.clear();
}

/** The redis-server version on PATH, or undefined with the reason it cannot run. */
export function findRedisServer(): { version: string } | { missing: string } {
  const probe = spawnSync("redis-server", ["--version"], { encoding: "utf8", timeout: 5000 });
  if (probe.error) {
    const code = (probe.error as NodeJS.ErrnoException).code;
    return { missing: code === "ENOENT" ? "redis-server is not installed (not on PATH); install it with `apt-get install redis-server`" : `redis-server --version failed: ${probe.error.message}` };
  }
  if (probe.status !== 0) return { missing: `redis-server --version exited with status ${probe.status}` };
  return { version: /v=(\S+)/.exec(probe.stdout)?.[1] ?? "unknown" };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, REDIS_HOST, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("bench failed: no free loopback port"))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: REDIS_HOST, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Starts redis-server; resolves once it accepts connections. REQUIRES: findRedisServer() found it. */
export async function startRedisServer(version: string, persistence: RedisPersistence = "none"): Promise<RedisServer> {
  const port = await freePort();
  const directory = mkdtempSync(join(tmpdir(), "loomkv-bench-redis-"));
  const durable = persistence === "aof-everysec" ? ["--appendonly", "yes", "--appendfsync", "everysec"] : ["--appendonly", "no"];
  const flags = ["--port", String(port), "--bind", REDIS_HOST, "--save", "", ...durable, "--dir", directory, "--loglevel", "warning"];
  const child = spawn("redis-server", flags, { stdio: ["ignore", "ignore", "pipe"] });
  const entry = { child, directory };
  live.add(entry);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));
  const stop = async (): Promise<void> => {
    if (!exited) child.kill("SIGTERM");
    await exit;
    live.delete(entry);
    rmSync(directory, { recursive: true, force: true });
  };
  const deadline = performance.now() + START_TIMEOUT_MS;
  while (!(await canConnect(port))) {
    if (exited || performance.now() > deadline) {
      await stop();
      throw new Error(`bench failed: redis-server did not accept connections on ${REDIS_HOST}:${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const cpuMicros = (): number | undefined => {
    try {
      // Fields after the command name (which is in parentheses): utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / USER_HZ;
    } catch {
      return undefined;
    }
  };
  return { port, version, persistence, flags: flags.map((flag) => (flag === "" ? "''" : flag === directory ? "<temp dir>" : flag)), cpuMicros, stop };
}
