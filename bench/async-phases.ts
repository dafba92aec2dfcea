/**
 * Where the time of one parallel async download goes: its phases, from moments this client saw
 * (request sent, 202, `ready`) and from the functions' own log lines (`bench/stack-log.ts`): their
 * timestamps, and the durations `range copied` carries (each worker's start and upstream's first
 * byte), all on one clock (the stack runs on this machine).
 */
import { BenchError, MiB, median, type Row, seconds, wholeMs } from './report.ts';
import type { StackLogLine } from './stack-log.ts';

/** What this client saw of one async download, epoch ms. */
export interface ClientMoments {
  request: number;
  accepted: number;
  /** The first `progress` message; none if the copy ended before any was posted. */
  firstProgress: number | undefined;
  readyReceived: number;
  /** How many `progress` messages arrived before `ready`. */
  progressMessages: number;
}

/** The moments that split a parallel async download into phases, in order. */
const MOMENTS = [
  'request',
  'accepted',
  'planned',
  'workersStarted',
  'firstByte',
  'rangesCopied',
  'completed',
  'presigned',
  'markedReady',
  'readyReceived',
] as const;
type Moment = (typeof MOMENTS)[number];

/** The log lines the phases read, by the step that writes them. */
export const PHASE_LOG_LINES = {
  planned: 'parallel copy planned',
  rangeCopied: 'range copied',
  completed: 'parallel copy completed',
  presigned: 'presigned',
  markedReady: 'download ready',
} as const;

/** One phase: from one moment to the next. */
interface Phase {
  to: Exclude<Moment, 'request'>;
  measure: string;
  what: string;
}

/** Each phase ends at its `to` and starts where the one before it ends (the first at `request`). */
const PHASES: readonly Phase[] = [
  {
    to: 'accepted',
    measure: 'request → 202',
    what: 'router: download record written, execution started (client clock)',
  },
  {
    to: 'planned',
    measure: '202 → copy planned',
    what:
      "the execution (started before the 202) runs its first state, `PlanCopy` (upstream's headers, " +
      '`CreateMultipartUpload`, record RUNNING), ' +
      `to its \`${PHASE_LOG_LINES.planned}\` log line`,
  },
  {
    to: 'workersStarted',
    measure: 'copy planned → first worker started',
    what:
      'the `CopyRanges` Map state invokes the `CopyRange` workers; the first start is the earliest ' +
      `\`${PHASE_LOG_LINES.rangeCopied}\` line's time less its \`durationMs\``,
  },
  {
    to: 'firstByte',
    measure: "first worker started → upstream's first byte",
    what: "the workers read the record (where their range stands) and send their ranged GETs; the earliest first byte by the lines' `firstByteMs`",
  },
  {
    to: 'rangesCopied',
    measure: 'first byte → every range copied',
    what: `the ranges streamed into parts, to the last \`${PHASE_LOG_LINES.rangeCopied}\` line`,
  },
  {
    to: 'completed',
    measure: 'ranges copied → upload completed',
    what:
      "`CompleteCopy`: `ListParts`, the ranges' CRC64NVME, `CompleteMultipartUpload` (the local S3 joins " +
      `the parts on disk), to \`${PHASE_LOG_LINES.completed}\``,
  },
  {
    to: 'presigned',
    measure: 'upload completed → presigned',
    what: `\`Presign\`, to \`${PHASE_LOG_LINES.presigned}\``,
  },
  {
    to: 'markedReady',
    measure: 'presigned → record READY',
    what: `\`MarkReady\` (one \`UpdateItem\`), to \`${PHASE_LOG_LINES.markedReady}\``,
  },
  {
    to: 'readyReceived',
    measure: 'record READY → `ready` received',
    what: '`HasConnection`, `Notify` (record read, post to the connection), WebSocket delivery (client clock)',
  },
];

/** The baseline's time, split where lib-storage's `Upload` reports its last part stored. */
export interface PlainUploadTiming {
  totalMs: number;
  /** Last part stored → `CompleteMultipartUpload` answered. */
  completeMs: number;
}

/** The parallel copy as `PlanCopy` logged it. */
export interface CopyPlan {
  ranges: number;
  partSize: number;
}

/** One parallel async download, split. */
export interface ParallelCopyPhases {
  /** By the phase's end moment, ms. */
  phases: Record<Phase['to'], number>;
  plan: CopyPlan;
  totalMs: number;
  /** First worker started → upload completed: the copy proper, against a plain `Upload`. */
  copyMs: number;
  /** Ranges copied → upload completed: `CompleteCopy`. */
  completeMs: number;
  /** Request → first worker started, and upload completed → `ready` received. */
  aroundMs: number;
  progressMessages: number;
  /** `progress` messages per second of first byte → upload completed. */
  progressPerSecond: number;
  /** Upstream's first byte → the first `progress` message received; none without one. */
  firstProgressMs: number | undefined;
}

/** A phase may come out a millisecond or two below zero: log timestamps are whole milliseconds. */
const CLOCK_SLACK_MS = 5;

/**
 * Splits one parallel async download. Throws if a log line is missing (a single-stream copy has
 * other lines) or the moments are out of order (a line from somewhere else).
 */
export function toParallelCopyPhases(
  client: ClientMoments,
  lines: readonly StackLogLine[],
): ParallelCopyPhases {
  const last = (message: string): StackLogLine => {
    const found = lines
      .filter((line) => line.message === message)
      .sort((a, b) => a.at - b.at)
      .at(-1);
    if (!found)
      throw new BenchError(`no "${message}" log line (seen: ${JSON.stringify(lines.map((l) => l.message))})`);
    return found;
  };
  const planned = last(PHASE_LOG_LINES.planned);
  const ranges = lines.filter((line) => line.message === PHASE_LOG_LINES.rangeCopied);
  const started = ranges.map((line) => line.at - Number(line.fields.durationMs));
  const firstBytes = ranges.flatMap((line, index) =>
    typeof line.fields.firstByteMs === 'number'
      ? [(started[index] ?? Number.NaN) + line.fields.firstByteMs]
      : [],
  );
  if (started.some(Number.isNaN) || firstBytes.length === 0)
    throw new BenchError(
      `the \`${PHASE_LOG_LINES.rangeCopied}\` lines lack \`durationMs\` or \`firstByteMs\`: ${JSON.stringify(ranges)}`,
    );
  const firstByte = Math.min(...firstBytes);
  const moments: Record<Moment, number> = {
    request: client.request,
    accepted: client.accepted,
    planned: planned.at,
    workersStarted: Math.min(...started),
    firstByte,
    rangesCopied: last(PHASE_LOG_LINES.rangeCopied).at,
    completed: last(PHASE_LOG_LINES.completed).at,
    presigned: last(PHASE_LOG_LINES.presigned).at,
    markedReady: last(PHASE_LOG_LINES.markedReady).at,
    readyReceived: client.readyReceived,
  };
  const phases = {} as Record<Phase['to'], number>;
  for (let index = 1; index < MOMENTS.length; index++) {
    const from = MOMENTS[index - 1] as Moment;
    const to = MOMENTS[index] as Phase['to'];
    const duration = moments[to] - moments[from];
    if (duration < -CLOCK_SLACK_MS)
      throw new BenchError(`phase ${from} → ${to} is ${duration} ms: ${JSON.stringify(moments)}`);
    phases[to] = Math.max(0, duration);
  }
  return {
    phases,
    plan: { ranges: Number(planned.fields.ranges), partSize: Number(planned.fields.partSize) },
    totalMs: moments.readyReceived - moments.request,
    copyMs: moments.completed - moments.workersStarted,
    completeMs: moments.completed - moments.rangesCopied,
    aroundMs: moments.workersStarted - moments.request + (moments.readyReceived - moments.completed),
    progressMessages: client.progressMessages,
    progressPerSecond: (client.progressMessages * 1000) / Math.max(1, moments.completed - firstByte),
    firstProgressMs: client.firstProgress === undefined ? undefined : client.firstProgress - firstByte,
  };
}

/** `8 ranges × 8 MiB parts`. */
export const describePlan = (split: ParallelCopyPhases) =>
  `${split.plan.ranges} ranges × ${split.plan.partSize / MiB} MiB parts`;

/** `140 ms` below a second, `14.2 s` above. */
export const duration = (ms: number) => (ms < 1000 ? wholeMs(ms) : seconds(ms));

/** `+400 ms` / `−1.2 s`. */
const signedDuration = (ms: number) => `${ms >= 0 ? '+' : '−'}${duration(Math.abs(ms))}`;

/** One line for the log: `request → 202 40 ms, 202 → copy planned 180 ms, …`. */
export function describePhases(split: ParallelCopyPhases): string {
  return PHASES.map(
    (phase) => `${phase.measure.replaceAll('`', '')} ${duration(split.phases[phase.to])}`,
  ).join(', ');
}

/**
 * The phase rows of the timed large runs (medians over them), then the copy against the plain
 * `Upload` and the time around the copy, which together make up the difference in the total.
 */
export function phaseRows(
  label: string,
  runs: readonly ParallelCopyPhases[],
  plainRuns: readonly PlainUploadTiming[],
): Row[] {
  const perRun = (values: readonly number[]) =>
    values.length > 1 ? `; runs: ${values.map(duration).join(', ')}` : '';
  const rows: Row[] = PHASES.map((phase) => {
    const values = runs.map((run) => run.phases[phase.to]);
    return {
      measure: `Async ${label} phase: ${phase.measure}`,
      value: duration(median(values)),
      note: `${phase.what}${perRun(values)}`,
    };
  });
  const phaseSum = PHASES.reduce((sum, phase) => sum + median(runs.map((run) => run.phases[phase.to])), 0);
  const totalMs = median(runs.map((run) => run.totalMs));
  const copyMs = median(runs.map((run) => run.copyMs));
  const aroundMs = median(runs.map((run) => run.aroundMs));
  const plain = median(plainRuns.map((run) => run.totalMs));
  const plainComplete = median(plainRuns.map((run) => run.completeMs));
  const complete = median(runs.map((run) => run.completeMs));
  const plans = [...new Set(runs.map(describePlan))];
  const firstProgress = runs.flatMap((run) =>
    run.firstProgressMs === undefined ? [] : [run.firstProgressMs],
  );
  rows.push(
    {
      measure: `Async ${label} progress messages`,
      value: String(median(runs.map((run) => run.progressMessages))),
      note:
        `received per download (median), ${median(runs.map((run) => run.progressPerSecond)).toFixed(2)} per second of ` +
        'first byte → upload completed (the workers claim one post a second between them; each range also writes ' +
        'its state to the record once a second, a cost inside the copy phases, not measured apart); the first ' +
        `arrived ${firstProgress.length > 0 ? duration(median(firstProgress)) : '(none)'} after upstream's first byte`,
    },
    {
      measure: `Async ${label} copy (first worker started → upload completed) vs plain lib-storage \`Upload\``,
      value: signedDuration(copyMs - plain),
      note:
        `median copy ${seconds(copyMs)} (${plans.join('; ')}: the four phases from the first worker's start), of which ` +
        `${duration(complete)} completing the upload, against the plain \`Upload\` of the same bytes: ${seconds(plain)} ` +
        `from its request to upstream, of which ${duration(plainComplete)} completing (its last part stored → ` +
        '`CompleteMultipartUpload` answered)',
    },
    {
      measure: `Async ${label} time around the copy`,
      value: duration(aroundMs),
      note:
        'request → first worker started, and upload completed → `ready` received (median of the per-run sums); with ' +
        `the copy's ${signedDuration(copyMs - plain)} it makes up the async total's ${signedDuration(totalMs - plain)} ` +
        `over the plain \`Upload\` (${seconds(totalMs)} vs ${seconds(plain)}; the phases' medians add up to ${seconds(phaseSum)})`,
    },
  );
  return rows;
}
