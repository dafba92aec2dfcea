import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import type { Logger } from './logger.ts';

/**
 * Powertools Metrics for one function: CloudWatch EMF lines on stdout, namespace from
 * `POWERTOOLS_METRICS_NAMESPACE`, dimension `service` from `POWERTOOLS_SERVICE_NAME`.
 * `POWERTOOLS_METRICS_DISABLED=true` (set by the local stack) stores but never prints.
 */
export function createMetrics(serviceName: string): Metrics {
  return new Metrics({ serviceName });
}

/** A CloudWatch unit (`MetricUnit.Count`, `MetricUnit.Bytes`, …). */
export type MetricUnitValue = (typeof MetricUnit)[keyof typeof MetricUnit];

/**
 * Emits one metric at once, on its own EMF line with its own dimensions (plus `service`), so
 * that metrics of one invocation with different dimensions (the router's decision, then the bytes
 * it streamed) do not share them. No-op without `metrics` (tests of the logic).
 */
export function emitMetric(
  metrics: Metrics | undefined,
  metric: { name: string; unit: MetricUnitValue; value: number; dimensions?: Record<string, string> },
): void {
  if (!metrics) return;
  const single = metrics.singleMetric();
  for (const [name, value] of Object.entries(metric.dimensions ?? {})) single.addDimension(name, value);
  single.addMetric(metric.name, metric.unit, metric.value);
}

/** What every invocation is wrapped with: the function's logger and metrics. */
export interface InvocationTools {
  logger: Logger;
  metrics: Metrics;
}

/**
 * Runs one invocation the way Powertools' `injectLambdaContext({ resetKeys: true })` and
 * `logMetrics()` would, for handlers of any shape (streaming handlers get `(event, responseStream,
 * context)`, which neither middy nor the decorators expect): the Lambda context on every log line,
 * `correlation_id` set to `correlationId` (else the Lambda request id; the handler may replace it
 * later with `logger.setCorrelationId`), and afterwards, also when `run` rejects, stored metrics
 * flushed and every temporary key (`appendKeys`, the correlation id) removed, so none leaks into the
 * next invocation.
 */
export async function observeInvocation<T>(
  tools: InvocationTools,
  invocation: { context?: Context; correlationId?: string },
  run: () => Promise<T>,
): Promise<T> {
  const { logger, metrics } = tools;
  // An earlier invocation cut short (a timeout freezes the environment mid-way) may have left keys.
  logger.resetKeys();
  if (invocation.context) logger.addContext(invocation.context);
  const correlationId = invocation.correlationId ?? invocation.context?.awsRequestId;
  if (correlationId) logger.setCorrelationId(correlationId);
  try {
    return await run();
  } finally {
    // Only when something was stored: Powertools warns on an empty flush.
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    logger.resetKeys();
  }
}

export type { Metrics };
export { MetricUnit };
