/**
 * The configuration the copy functions read from their environment, for unit tests that run them
 * against a sample upstream: only that origin allowed, short timeouts, placeholder table and
 * WebSocket management URL (the tests pass their own S3 and store).
 */
import type { FetchConfig, UpstreamConfig } from '../../shared/config.ts';

/** Upstream settings that allow `upstreamUrl`'s origin only, with 5 s timeouts. */
export function testUpstreamConfig(upstreamUrl: string): UpstreamConfig {
  const baseUrl = new URL(upstreamUrl);
  return {
    baseUrl,
    allowedOrigins: new Set([baseUrl.origin]),
    headersTimeoutMs: 5_000,
    bodyTimeoutMs: 5_000,
  };
}

/** What every copy function shares: the upstream, the table and the WebSocket management URL. */
export function testCopyBase(upstreamUrl: string) {
  return {
    upstream: testUpstreamConfig(upstreamUrl),
    downloadTable: 'downloads',
    webSocketManagementUrl: 'http://ws.local',
  };
}

/** The single-stream copy's configuration with `downloads` as its bucket. */
export function testFetchConfig(
  upstreamUrl: string,
  upload: Pick<FetchConfig, 'partSizeBytes' | 'queueSize'> & { downloadBucket?: string },
): FetchConfig {
  return { ...testCopyBase(upstreamUrl), downloadBucket: 'downloads', ...upload };
}
