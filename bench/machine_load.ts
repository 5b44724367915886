/**
 * How busy the machine was with work other than this process during a run: the CPU time every
 * core spent busy (Linux /proc/stat) minus this process's own CPU time (all its threads, from
 * process.cpuUsage()), in cores. A benchmark report says "other work shared the cores" only when
 * this measured it; elsewhere the figure is unknown and the report says so.
 */
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";

interface Sample {
  readonly busySeconds: number;
  readonly ownSeconds: number;
  readonly wallMs: number;
}

/** Clock ticks per second of /proc/stat (USER_HZ: 100 on every mainstream Linux build). */
const TICKS_PER_SECOND = 100;

function sample(): Sample | undefined {
  if (!existsSync("/proc/stat")) return undefined;
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  if (fields.length < 5 || fields.some((field) => !Number.isFinite(field))) return undefined;
  const [user = 0, nice = 0, system = 0, , iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  const busyTicks = user + nice + system + irq + softirq + steal;
  void iowait;
  const own = process.cpuUsage();
  return { busySeconds: busyTicks / TICKS_PER_SECOND, ownSeconds: (own.user + own.system) / 1e6, wallMs: performance.now() };
}

export interface MachineLoad {
  /** Cores kept busy by other processes on average over the run (0 = an idle machine). */
  readonly otherCores: number;
  readonly wallSeconds: number;
}

/** Starts measuring; the returned function ends the measurement (undefined where /proc/stat is missing). */
export function startLoadMeter(): () => MachineLoad | undefined {
  const start = sample();
  return () => {
    const end = sample();
    if (!start || !end) return undefined;
    const wallSeconds = (end.wallMs - start.wallMs) / 1000;
    if (wallSeconds <= 0) return undefined;
    const others = end.busySeconds - start.busySeconds - (end.ownSeconds - start.ownSeconds);
    return { otherCores: Math.max(0, others / wallSeconds), wallSeconds };
  };
}

/** One sentence for a report: measured other load, with the cores of the machine. */
export function describeLoad(load: MachineLoad | undefined, cores: number): string {
  if (!load) return "Other load on the machine during the run was not measured (no /proc/stat): compare ratios, which come from one run.";
  const share = `${load.otherCores.toFixed(2)} of ${cores} cores`;
  if (load.otherCores < 0.1) return `Other processes used ${share} during the run (measured from /proc/stat): the machine was quiet.`;
  return `Other processes kept ${share} busy on average during the run (measured from /proc/stat): absolute figures are noisy, so compare the ratios, which come from one run.`;
}
