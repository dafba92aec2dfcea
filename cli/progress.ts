import cliProgress from 'cli-progress';
import { formatBytes, formatDuration, formatRate } from './format.ts';

/** One transfer's progress: the copy to S3, or the download. */
export interface ProgressBar {
  /** Bytes so far (resumed bytes included) and, once known, the total. */
  update(bytes: number, total?: number): void;
  /** The transfer ended; `summary` replaces the usual closing words. */
  done(summary?: string): void;
}

/** Where progress and messages go: bars on a terminal, plain lines elsewhere, nothing with `--quiet`. */
export interface Reporter {
  bar(label: string, total: number | undefined, initial?: number): ProgressBar;
  /** A message for the user (resuming, retrying, the result). */
  note(line: string): void;
  close(): void;
}

/** Bytes per second over the last few seconds, and the time left at that pace. */
class RateMeter {
  readonly #samples: Array<[number, number]> = [];
  readonly #windowMs: number;
  readonly started = performance.now();
  readonly initial: number;

  constructor(initial: number, windowMs = 5_000) {
    this.initial = initial;
    this.#windowMs = windowMs;
    this.#samples.push([this.started, initial]);
  }

  add(bytes: number): void {
    const now = performance.now();
    this.#samples.push([now, bytes]);
    while (this.#samples.length > 2 && (this.#samples[0]?.[0] ?? now) < now - this.#windowMs)
      this.#samples.shift();
  }

  get rate(): number {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last[0] - first[0] < 50) return 0;
    return ((last[1] - first[1]) / (last[0] - first[0])) * 1000;
  }

  etaSeconds(bytes: number, total: number | undefined): number | undefined {
    const rate = this.rate;
    return total === undefined || rate <= 0 ? undefined : Math.max(0, total - bytes) / rate;
  }

  /** Average over the whole transfer, resumed bytes left out. */
  average(bytes: number): number {
    const seconds = (performance.now() - this.started) / 1000;
    return seconds > 0 ? (bytes - this.initial) / seconds : 0;
  }

  get seconds(): number {
    return (performance.now() - this.started) / 1000;
  }
}

function describeProgress(bytes: number, total: number | undefined): string {
  if (total === undefined || total <= 0) return formatBytes(bytes);
  const percent = Math.min(100, (bytes / total) * 100).toFixed(0);
  return `${formatBytes(bytes)} / ${formatBytes(total)} (${percent}%)`;
}

function closingLine(label: string, meter: RateMeter, bytes: number, summary: string | undefined): string {
  const transferred = bytes - meter.initial;
  return `${label}: ${summary ?? `done, ${formatBytes(bytes)}`} (${formatBytes(transferred)} in ${formatDuration(meter.seconds)}, ${formatRate(meter.average(bytes))})`;
}

/** Nothing at all (`--quiet`). */
export function createSilentReporter(): Reporter {
  return {
    bar: () => ({ update() {}, done() {} }),
    note() {},
    close() {},
  };
}

/** Plain lines, one per transfer every `intervalMs` while it moves, for logs and pipes. */
export function createLineReporter(stream: NodeJS.WritableStream, intervalMs = 1_000): Reporter {
  const write = (line: string) => stream.write(`${line}\n`);
  const active = new Set<() => void>();
  const timer = setInterval(() => {
    for (const print of active) print();
  }, intervalMs);
  timer.unref();
  return {
    bar(label, total, initial = 0) {
      const meter = new RateMeter(initial);
      let bytes = initial;
      let currentTotal = total;
      let printed = -1;
      const print = () => {
        if (bytes === printed) return;
        printed = bytes;
        write(
          `${label}: ${describeProgress(bytes, currentTotal)}, ${formatRate(meter.rate)}, ETA ${formatDuration(meter.etaSeconds(bytes, currentTotal))}`,
        );
      };
      write(`${label}: started${initial > 0 ? ` at ${describeProgress(initial, total)}` : ''}`);
      active.add(print);
      return {
        update(value, newTotal) {
          bytes = value;
          if (newTotal !== undefined) currentTotal = newTotal;
          meter.add(value);
        },
        done(summary) {
          if (!active.delete(print)) return;
          write(closingLine(label, meter, bytes, summary));
        },
      };
    },
    note: write,
    close() {
      clearInterval(timer);
    },
  };
}

interface BarPayload {
  label: string;
  totalKnown: boolean;
  rate: string;
  eta: string;
}

/** cli-progress's line for one bar: label, bar, percent, bytes, rate, ETA. */
const formatBar: cliProgress.GenericFormatter = (options, params, payload: BarPayload) => {
  const known = payload.totalKnown;
  const bar = known
    ? cliProgress.Format.BarFormat(params.progress, options)
    : (options.barIncompleteString ?? '').slice(0, options.barsize ?? 30);
  const amount = known
    ? `${String(Math.floor(params.progress * 100)).padStart(3)}% ${formatBytes(params.value)} / ${formatBytes(params.total)}`
    : formatBytes(params.value);
  return `${payload.label.padEnd(8)} ${bar} ${amount} | ${payload.rate} | ETA ${payload.eta}`;
};

/** Live bars on a terminal (cli-progress), one per transfer; messages print above them. */
export function createTerminalReporter(stream: NodeJS.WritableStream): Reporter {
  const bars = new cliProgress.MultiBar(
    {
      stream,
      format: formatBar,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      barsize: 30,
      fps: 8,
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    bar(label, total, initial = 0) {
      const meter = new RateMeter(initial);
      let bytes = initial;
      let currentTotal = total;
      const payload = (): BarPayload => ({
        label,
        totalKnown: currentTotal !== undefined,
        rate: formatRate(meter.rate),
        eta: formatDuration(meter.etaSeconds(bytes, currentTotal)),
      });
      const bar = bars.create(total ?? 0, initial, payload());
      let finished = false;
      return {
        update(value, newTotal) {
          if (finished) return;
          bytes = value;
          meter.add(value);
          if (newTotal !== undefined && newTotal !== currentTotal) {
            currentTotal = newTotal;
            bar.setTotal(newTotal);
          }
          bar.update(value, payload());
        },
        done(summary) {
          if (finished) return;
          finished = true;
          // A finished transfer becomes its summary line; only running ones keep a bar.
          bars.log(`${closingLine(label, meter, bytes, summary)}\n`);
          bars.remove(bar);
        },
      };
    },
    note(line) {
      // The bars print logged lines on their next redraw; without bars there is none.
      if (bars.isActive) bars.log(`${line}\n`);
      else stream.write(`${line}\n`);
    },
    close() {
      if (!bars.isActive) return;
      bars.update();
      bars.stop();
    },
  };
}

/** The reporter for this run: silent with `--quiet`, bars on a terminal, lines otherwise. */
export function createReporter(options: { quiet: boolean; stream: NodeJS.WriteStream }): Reporter {
  if (options.quiet) return createSilentReporter();
  return options.stream.isTTY ? createTerminalReporter(options.stream) : createLineReporter(options.stream);
}
