import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { WebSocketAuth } from '../config.ts';
import { HttpError, toProblem } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { downloadTokenOf } from './download-token.ts';
import { findAuthorizedDownload, findDownload } from './lookup.ts';
import { type DownloadMessage, toStatusMessage } from './messages.ts';
import type { NotifyRequest } from './notify.ts';
import type { DownloadStore } from './store.ts';

/** The header that names the execution, as in the original design (`wscat -H`). */
export const EXECUTION_ARN_HEADER = 'x-statemachine-executionarn';

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
 * `$connect`: adds the connection to the download named by the header, `?executionArn=` or
 * `?downloadId=`, once the caller proved it started the download: the download token
 * (`X-Download-Token` or `?token=`), or, only with `webSocketAuth: 'execution-arn-header'`, the
 * `X-StateMachine-ExecutionArn` header alone. Refusals store nothing: 400 for a malformed or
 * missing handle, 401 without a token (before any lookup), 404 for an unknown or expired download,
 * 403 for a wrong token. A download that is already settled is delivered by the notifier once the
 * connection is up (`$connect` cannot post to its own connection before it returns); connections
 * pushed out of the download's set by this one are closed by the notifier too.
 */
export async function connect(
  deps: {
    store: DownloadStore;
    lambda: LambdaClient;
    notifierFunctionName: string;
    webSocketAuth: WebSocketAuth;
    logger: Logger;
  },
  request: {
    connectionId: string;
    headers: Record<string, string | undefined> | undefined;
    query: Record<string, string | undefined> | undefined;
  },
): Promise<RouteResult> {
  // An empty value names nothing: it counts as absent, so the next way of naming the download applies.
  const arnHeader = present(header(request.headers, EXECUTION_ARN_HEADER));
  const executionArn = arnHeader ?? present(request.query?.executionArn);
  const downloadId = present(request.query?.downloadId);
  const token = downloadTokenOf(request.headers, request.query);
  try {
    if (executionArn === undefined && downloadId === undefined) {
      throw new HttpError(
        400,
        'MissingDownload',
        'Name the download with the X-StateMachine-ExecutionArn header, ?executionArn= or ?downloadId=',
      );
    }
    const handle = executionArn === undefined ? { downloadId } : { executionArn };
    // The original sample's flow, kept as an opt-in: the execution ARN in a header is the proof.
    const arnHeaderSuffices =
      deps.webSocketAuth === 'execution-arn-header' && arnHeader !== undefined && token === undefined;
    const found = arnHeaderSuffices
      ? await findDownload(deps.store, handle)
      : await findAuthorizedDownload(deps.store, handle, token);
    const attached = await deps.store.attachConnection(found.downloadId, request.connectionId);
    if (!attached)
      throw new HttpError(404, 'DownloadNotFound', 'No download with this id (it may have expired)');
    const { record, evicted } = attached;
    deps.logger.info('connection bound', {
      downloadId: record.downloadId,
      connectionId: request.connectionId,
      status: record.status,
      connections: Object.keys(record.connections).length,
      evicted: evicted.length,
      proof: arnHeaderSuffices ? 'execution-arn-header' : 'token',
    });
    const settled = record.status === 'READY' || record.status === 'FAILED';
    if (settled || evicted.length > 0) {
      const payload: NotifyRequest = {
        downloadId: record.downloadId,
        ...(settled ? { connectionId: request.connectionId } : {}),
        ...(evicted.length > 0 ? { close: evicted } : {}),
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

/** `$disconnect`: takes the connection, and only it, out of its download's set. */
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
