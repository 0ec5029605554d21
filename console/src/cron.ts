/** The next fire times of a schedule: an interval, or a five-field crontab (*, n, a-b, lists, steps), UTC as beat reads it. */

function field(spec: string, low: number, high: number): Set<number> {
  const values = new Set<number>();
  for (const part of spec.split(",")) {
    const [range = "*", stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    let [from, to] = range === "*" ? [low, high] : range.split("-").map(Number);
    if (to === undefined) to = stepText === undefined ? from : high;
    if (!Number.isInteger(from) || !Number.isInteger(to) || !(step > 0)) throw new Error(`bad crontab field ${spec}`);
    for (let v = from!; v <= to; v += step) values.add(v);
  }
  return values;
}

export function nextCron(crontab: string, after: Date, count = 3): Date[] {
  const [m = "*", h = "*", dom = "*", mon = "*", dow = "*"] = crontab.trim().split(/\s+/);
  const minutes = field(m, 0, 59), hours = field(h, 0, 23), days = field(dom, 1, 31), months = field(mon, 1, 12);
  const weekdays = new Set([...field(dow, 0, 7)].map((d) => d % 7));
  const found: Date[] = [];
  const at = new Date(after.getTime());
  at.setUTCSeconds(0, 0);
  for (let i = 0; i < 60 * 24 * 366 && found.length < count; i++) {
    at.setUTCMinutes(at.getUTCMinutes() + 1);
    if (
      minutes.has(at.getUTCMinutes()) && hours.has(at.getUTCHours()) && months.has(at.getUTCMonth() + 1) &&
      (dom === "*" || days.has(at.getUTCDate())) && (dow === "*" || weekdays.has(at.getUTCDay()))
    ) found.push(new Date(at.getTime()));
  }
  return found;
}

export function nextRuns(schedule: { intervalSeconds: number | null; crontab: string | null; lastRunAt: string | null; createdAt: string; enabled: boolean }, now = new Date(), count = 3): Date[] {
  if (!schedule.enabled) return [];
  if (schedule.crontab) {
    try {
      return nextCron(schedule.crontab, now, count);
    } catch {
      return [];
    }
  }
  const every = (schedule.intervalSeconds ?? 0) * 1000;
  if (every <= 0) return [];
  let next = new Date(schedule.lastRunAt ?? schedule.createdAt).getTime() + every;
  while (next < now.getTime()) next += every;
  return Array.from({ length: count }, (_, i) => new Date(next + i * every));
}
