/**
 * The cluster benchmark's bar chart as a hand-written SVG (no dependency): one group of bars per
 * workload, one bar per system, ops/s on a log scale (the storage engine alone is 10-100× the
 * others, so a linear axis would flatten them). Pure: returns the SVG text.
 */
import type { YcsbSystemResult } from "./ycsb.bench.ts";
import type { WorkloadSpec } from "./ycsb_workload.ts";

export interface ChartModel {
  readonly title: string;
  readonly workloads: readonly WorkloadSpec[];
  readonly systems: readonly YcsbSystemResult[];
}

const WIDTH = 820;
const HEIGHT = 420;
const MARGIN = { left: 64, right: 16, top: 44, bottom: 96 } as const;
const COLORS: Record<string, string> = { "loomkv-3": "#1f5fa8", "loomkv-5": "#6fa8dc", "store-alone": "#3a9a4b", redis: "#c8372d", "redis-aof": "#e69138" };
const FALLBACK_COLOR = "#777777";

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

/** "950", "12k", "1.2M". */
export function shortCount(value: number): string {
  const scaled = (divisor: number, suffix: string) => `${(value / divisor).toFixed(value >= 10 * divisor ? 0 : 1).replace(/\.0$/, "")}${suffix}`;
  if (value >= 1e6) return scaled(1e6, "M");
  if (value >= 1e3) return scaled(1e3, "k");
  return value.toFixed(0);
}

function shortWorkloadLabel(workload: WorkloadSpec): string {
  return workload.id.length === 1 ? `${workload.id.toUpperCase()} (${Math.round(workload.readProportion * 100)}% read)` : workload.id === "put" ? "put 100%" : "get 100%";
}

export function renderChart(model: ChartModel): string {
  const values = model.systems.flatMap((system) => system.measurements.map((m) => m.perSecond)).filter((value) => value > 0);
  const low = Math.pow(10, Math.floor(Math.log10(Math.min(...values, 1000))));
  const high = Math.pow(10, Math.ceil(Math.log10(1.5 * Math.max(...values, 10_000))));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (value: number) => MARGIN.top + plotHeight * (1 - (Math.log10(value) - Math.log10(low)) / (Math.log10(high) - Math.log10(low)));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(model.title)}</text>`,
  ];
  for (let decade = low; decade <= high * 1.0001; decade *= 10) {
    const at = y(decade).toFixed(1);
    parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${at}" y2="${at}" stroke="#dddddd"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${at}" text-anchor="end" dominant-baseline="middle">${shortCount(decade)}</text>`);
  }
  parts.push(`<text transform="translate(16 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">ops/s (log scale)</text>`);
  const groupWidth = plotWidth / Math.max(1, model.workloads.length);
  const barWidth = (groupWidth * 0.8) / Math.max(1, model.systems.length);
  model.workloads.forEach((workload, group) => {
    const groupLeft = MARGIN.left + group * groupWidth + groupWidth * 0.1;
    model.systems.forEach((system, index) => {
      const value = system.measurements.find((m) => m.workload === workload.id)?.perSecond;
      if (value === undefined || value <= 0) return;
      const x = groupLeft + index * barWidth;
      const top = y(Math.max(value, low));
      const color = COLORS[system.id] ?? FALLBACK_COLOR;
      parts.push(`<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${(MARGIN.top + plotHeight - top).toFixed(1)}" fill="${color}"><title>${escapeXml(`${system.name}, ${workload.label}: ${Math.round(value).toLocaleString("en-US")} ops/s`)}</title></rect>`);
      parts.push(`<text x="${(x + barWidth / 2 - 1).toFixed(1)}" y="${(top - 4).toFixed(1)}" text-anchor="middle" font-size="10">${shortCount(value)}</text>`);
    });
    parts.push(`<text x="${(MARGIN.left + group * groupWidth + groupWidth / 2).toFixed(1)}" y="${MARGIN.top + plotHeight + 18}" text-anchor="middle">${escapeXml(shortWorkloadLabel(workload))}</text>`);
  });
  parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${MARGIN.top + plotHeight}" y2="${MARGIN.top + plotHeight}" stroke="#333333"/>`);
  const legendY = HEIGHT - 36;
  const legendStep = plotWidth / Math.max(1, model.systems.length);
  model.systems.forEach((system, index) => {
    const x = MARGIN.left + index * legendStep;
    parts.push(`<rect x="${x.toFixed(1)}" y="${legendY - 10}" width="12" height="12" fill="${COLORS[system.id] ?? FALLBACK_COLOR}"/>`);
    parts.push(`<text x="${(x + 18).toFixed(1)}" y="${legendY}">${escapeXml(system.name)}</text>`);
  });
  parts.push("</svg>", "");
  return parts.join("\n");
}
