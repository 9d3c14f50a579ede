/** CPU time of a process from /proc/<pid>/stat, for the benches that measure what idling costs. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** utime+stime (clock ticks) and ppid of a process, or undefined once it is gone. */
export function cpuTicks(pid: number): { ticks: number; ppid: number } | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses; fields from `state` on are field 3 on.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ticks: Number(fields[11]) + Number(fields[12]), ppid: Number(fields[1]) };
}

export const clockTicksPerSecond = () =>
  Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** The CPU a process used over `seconds`, in % of one core. */
export async function cpuPercentOver(pid: number, seconds: number): Promise<number> {
  const perSecond = clockTicksPerSecond();
  const before = cpuTicks(pid)?.ticks;
  const began = performance.now();
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - began) / 1000;
  const after = cpuTicks(pid)?.ticks;
  if (before === undefined || after === undefined) throw new Error(`process ${pid} went away while measured`);
  return ((after - before) / perSecond / elapsed) * 100;
}
