import { ENV } from '../shared/env-names.ts';
import { type AnyHandler, type HttpGateway, type RestRoute, startHttpGateway } from './http-gateway.ts';
import { startSampleUpstream } from './sample-upstream.ts';
import { installAwsLambdaGlobal } from './streaming-runtime.ts';

/** Options of the local stack; every port may be 0 (pick a free one). */
export interface LocalStackOptions {
  host?: string;
  /** REST API port (default 3000). */
  port?: number;
  /** Function URL port (default 3003). */
  functionUrlPort?: number;
  /** Sample upstream port (default 3002); unused when `upstreamBaseUrl` is set. */
  upstreamPort?: number;
  /** A real upstream instead of the built-in sample server. */
  upstreamBaseUrl?: string;
  /** Extra environment for the functions (e.g. STREAM_MAX_BYTES). */
  functionEnvironment?: Record<string, string>;
  log?: (message: string) => void;
}

export interface LocalEndpoints {
  restApi: string;
  functionUrl: string;
  upstream: string;
  /** Set when the built-in sample upstream runs. */
  sampleUpstream?: string;
}

export interface LocalStack {
  endpoints: LocalEndpoints;
  close(): Promise<void>;
}

const FIFTEEN_MINUTES = 15 * 60 * 1000;

async function loadHandler(functionName: string): Promise<AnyHandler> {
  const module = (await import(`../functions/${functionName}/handler.ts`)) as { handler: AnyHandler };
  return module.handler;
}

/**
 * Starts everything on this machine: the sample upstream, the local REST API and the Function URL,
 * around the unchanged handlers. Sets the functions' environment once, before loading them.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch(() => {});
  };
  try {
    let upstreamBaseUrl = options.upstreamBaseUrl;
    let sampleUpstream: string | undefined;
    if (!upstreamBaseUrl) {
      const upstream = await startSampleUpstream({ port: options.upstreamPort ?? 3002, host });
      closers.push(upstream.close);
      upstreamBaseUrl = upstream.url;
      sampleUpstream = upstream.url;
    }

    Object.assign(process.env, {
      [ENV.upstreamBaseUrl]: upstreamBaseUrl,
      ...options.functionEnvironment,
    });
    installAwsLambdaGlobal();
    const stream = await loadHandler('stream');

    const routes: RestRoute[] = [
      { methods: ['GET', 'HEAD'], resource: '/stream/{key+}', functionName: 'stream', handler: stream, timeoutMs: FIFTEEN_MINUTES },
    ];
    const restApi: HttpGateway = await startHttpGateway({ mode: { kind: 'rest', routes }, port: options.port ?? 3000, host, log });
    closers.push(restApi.close);
    const functionUrl = await startHttpGateway({
      mode: { kind: 'function-url', functionName: 'stream', handler: stream, timeoutMs: FIFTEEN_MINUTES },
      port: options.functionUrlPort ?? 3003,
      host,
      log,
    });
    closers.push(functionUrl.close);

    return {
      endpoints: {
        restApi: restApi.url,
        functionUrl: functionUrl.url,
        upstream: upstreamBaseUrl,
        ...(sampleUpstream ? { sampleUpstream } : {}),
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
