import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { HttpError, toProblem } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { findDownload } from './lookup.ts';
import { type DownloadMessage, toStatusMessage } from './messages.ts';
import type { DownloadStore } from './store.ts';

/** The header that names the execution, as in the original design (`wscat -H`). */
export const EXECUTION_ARN_HEADER = 'x-statemachine-executionarn';

/** How long the notifier retries a 410 while `$connect` has not returned yet. */
export const CONNECT_DELIVERY_WAIT_MS = 10_000;

/** What the notifier function receives. */
export interface NotifyRequest {
  downloadId: string;
  connectionId?: string;
  /** Retry 410s this long (the connection may still be inside `$connect`). */
  waitForConnectionMs?: number;
}

/** A route's answer: the status decides the handshake for `$connect`; `body` is sent back for message routes. */
export interface RouteResult {
  statusCode: number;
  body?: string;
}

function header(headers: Record<string, string | undefined> | undefined, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers ?? {})) if (key.toLowerCase() === name) return value;
  return undefined;
}

/** A handle as given, or `undefined` when it is absent or blank (`-H 'X-StateMachine-ExecutionArn:'`). */
function present(value: string | undefined): string | undefined {
  return value?.trim() ? value : undefined;
}

/**
 * `$connect`: binds the connection to the download named by the header, `?executionArn=` or
 * `?downloadId=`. Unknown, expired or malformed handles refuse the handshake and store nothing.
 * A download that is already settled is delivered by the notifier once the connection is up
 * (`$connect` cannot post to its own connection before it returns).
 */
export async function connect(
  deps: { store: DownloadStore; lambda: LambdaClient; notifierFunctionName: string; logger: Logger },
  request: {
    connectionId: string;
    headers: Record<string, string | undefined> | undefined;
    query: Record<string, string | undefined> | undefined;
  },
): Promise<RouteResult> {
  // An empty value names nothing: it counts as absent, so the next way of naming the download applies.
  const executionArn =
    present(header(request.headers, EXECUTION_ARN_HEADER)) ?? present(request.query?.executionArn);
  const downloadId = present(request.query?.downloadId);
  try {
    if (executionArn === undefined && downloadId === undefined) {
      throw new HttpError(
        400,
        'MissingDownload',
        'Name the download with the X-StateMachine-ExecutionArn header, ?executionArn= or ?downloadId=',
      );
    }
    const found = await findDownload(
      deps.store,
      executionArn === undefined ? { downloadId } : { executionArn },
    );
    const record = await deps.store.attachConnection(found.downloadId, request.connectionId);
    if (!record)
      throw new HttpError(404, 'DownloadNotFound', 'No download with this id (it may have expired)');
    deps.logger.info('connection bound', {
      downloadId: record.downloadId,
      connectionId: request.connectionId,
      status: record.status,
    });
    if (record.status === 'READY' || record.status === 'FAILED') {
      const payload: NotifyRequest = {
        downloadId: record.downloadId,
        connectionId: request.connectionId,
        waitForConnectionMs: CONNECT_DELIVERY_WAIT_MS,
      };
      await deps.lambda.send(
        new InvokeCommand({
          FunctionName: deps.notifierFunctionName,
          InvocationType: 'Event',
          Payload: Buffer.from(JSON.stringify(payload)),
        }),
      );
    }
    return { statusCode: 200 };
  } catch (error) {
    const problem = toProblem(error);
    if (problem.status >= 500) deps.logger.error('connect failed', { error: error as Error });
    else deps.logger.warn('connect refused', { problem });
    return { statusCode: problem.status, body: JSON.stringify(problem) };
  }
}

/** `$disconnect`: unbinds the connection if it is still the download's current one. */
export async function disconnect(
  deps: { store: DownloadStore; logger: Logger },
  connectionId: string,
): Promise<RouteResult> {
  await deps.store.detachConnection(connectionId);
  return { statusCode: 200 };
}

function reply(message: DownloadMessage): RouteResult {
  return { statusCode: 200, body: JSON.stringify(message) };
}

/** `status` and `$default`: `{"action":"status"}` answers with a `status` message. */
export async function message(
  deps: { store: DownloadStore; logger: Logger },
  request: { connectionId: string; body: string | undefined },
): Promise<RouteResult> {
  let action: unknown;
  try {
    action = (JSON.parse(request.body ?? '') as { action?: unknown }).action;
  } catch {
    action = undefined;
  }
  if (action !== 'status') {
    return reply({ type: 'error', error: { code: 'UnknownAction', message: 'Send {"action":"status"}' } });
  }
  const downloadId = await deps.store.downloadIdOf(request.connectionId);
  const record = downloadId ? await deps.store.get(downloadId) : undefined;
  if (!record)
    return reply({ type: 'error', error: { code: 'DownloadNotFound', message: 'The download has expired' } });
  return reply(toStatusMessage(record));
}
