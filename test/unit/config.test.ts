import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULT_STREAM_MAX_BYTES,
  loadFetchConfig,
  loadMarkFailedConfig,
  loadNotifyConfig,
  loadPresignConfig,
  loadRouterConfig,
  loadStatusConfig,
  loadStreamConfig,
  loadTableConfig,
  loadUpstreamConfig,
  loadWebSocketConfig,
  readBoolean,
} from '../../shared/config.ts';
import { ENV } from '../../shared/env-names.ts';

type Env = Record<string, string | undefined>;

const UPSTREAM_ENV: Env = { [ENV.upstreamBaseUrl]: 'https://files.example.com/exports/' };

const ROUTER_ENV: Env = {
  ...UPSTREAM_ENV,
  [ENV.downloadTable]: 'downloads',
  [ENV.stateMachineArn]: 'arn:aws:states:us-east-1:123456789012:stateMachine:Downloads',
  [ENV.webSocketUrl]: 'wss://ws.example.com/prod',
};

const FETCH_ENV: Env = {
  ...UPSTREAM_ENV,
  [ENV.downloadTable]: 'downloads',
  [ENV.downloadBucket]: 'download-bucket',
  [ENV.webSocketManagementUrl]: 'https://ws.example.com/prod',
};

/** Runs `load` and returns the ConfigError it throws (fails the test if it throws nothing or something else). */
function configErrorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, but the configuration loaded');
}

describe('loadStreamConfig', () => {
  it('defaults the streaming limit to 190 MiB (199229440 bytes)', () => {
    const config = loadStreamConfig(UPSTREAM_ENV);

    expect(DEFAULT_STREAM_MAX_BYTES).toBe(199_229_440);
    expect(config.streamMaxBytes).toBe(199_229_440);
  });

  it('defaults the upstream timeouts', () => {
    const { upstream } = loadStreamConfig(UPSTREAM_ENV);

    expect(upstream.headersTimeoutMs).toBe(10_000);
    expect(upstream.bodyTimeoutMs).toBe(30_000);
  });

  it('reads STREAM_MAX_BYTES up to the 200,000,000-byte platform limit', () => {
    expect(loadStreamConfig({ ...UPSTREAM_ENV, [ENV.streamMaxBytes]: '200000000' }).streamMaxBytes).toBe(
      200_000_000,
    );
    expect(loadStreamConfig({ ...UPSTREAM_ENV, [ENV.streamMaxBytes]: ' 1048576 ' }).streamMaxBytes).toBe(
      1_048_576,
    );
  });

  it.each([
    ['above the platform limit', '200000001'],
    ['negative', '-1'],
    ['not a number', 'lots'],
    ['fractional', '1.5'],
    ['partly numeric', '100MB'],
  ])('refuses a STREAM_MAX_BYTES that is %s, naming the variable', (_label, value) => {
    const error = configErrorOf(() => loadStreamConfig({ ...UPSTREAM_ENV, [ENV.streamMaxBytes]: value }));

    expect(error.message).toContain('STREAM_MAX_BYTES');
    expect(error.message).toContain(value);
  });

  it('uses the default when STREAM_MAX_BYTES is blank', () => {
    expect(loadStreamConfig({ ...UPSTREAM_ENV, [ENV.streamMaxBytes]: '  ' }).streamMaxBytes).toBe(
      DEFAULT_STREAM_MAX_BYTES,
    );
  });

  it('refuses timeouts out of range, naming the variable', () => {
    const headers = configErrorOf(() =>
      loadStreamConfig({ ...UPSTREAM_ENV, [ENV.upstreamHeadersTimeoutMs]: '50' }),
    );
    const body = configErrorOf(() =>
      loadStreamConfig({ ...UPSTREAM_ENV, [ENV.upstreamBodyTimeoutMs]: '900001' }),
    );

    expect(headers.message).toContain('UPSTREAM_HEADERS_TIMEOUT_MS');
    expect(body.message).toContain('UPSTREAM_BODY_TIMEOUT_MS');
  });
});

describe('loadUpstreamConfig', () => {
  it('requires UPSTREAM_BASE_URL and names it', () => {
    expect(configErrorOf(() => loadUpstreamConfig({})).message).toContain('UPSTREAM_BASE_URL');
  });

  it('treats a blank UPSTREAM_BASE_URL as missing', () => {
    const error = configErrorOf(() => loadUpstreamConfig({ [ENV.upstreamBaseUrl]: '   ' }));

    expect(error.message).toContain('UPSTREAM_BASE_URL');
    expect(error.message).toContain('required');
  });

  it.each([
    ['a relative path', 'files/exports'],
    ['not a URL', 'not a url'],
  ])('refuses a base URL that is %s', (_label, value) => {
    const error = configErrorOf(() => loadUpstreamConfig({ [ENV.upstreamBaseUrl]: value }));

    expect(error.message).toContain('UPSTREAM_BASE_URL');
    expect(error.message).toContain('absolute URL');
  });

  it.each(['ftp://files.example.com/', 'file:///etc/', 'wss://files.example.com/'])(
    'refuses the protocol of %s',
    (value) => {
      const error = configErrorOf(() => loadUpstreamConfig({ [ENV.upstreamBaseUrl]: value }));

      expect(error.message).toContain('UPSTREAM_BASE_URL');
      expect(error.message).toContain('http: or https:');
    },
  );

  it('gives the base URL a trailing slash and drops its query and fragment', () => {
    const config = loadUpstreamConfig({ [ENV.upstreamBaseUrl]: 'https://files.example.com/exports?a=1#top' });

    expect(config.baseUrl.href).toBe('https://files.example.com/exports/');
  });

  it('keeps a base URL that already ends with a slash as it is', () => {
    const config = loadUpstreamConfig({ [ENV.upstreamBaseUrl]: 'http://localhost:8080/' });

    expect(config.baseUrl.href).toBe('http://localhost:8080/');
  });

  it("allows the base URL's origin and the listed origins, without their paths", () => {
    const config = loadUpstreamConfig({
      [ENV.upstreamBaseUrl]: 'https://files.example.com/exports',
      [ENV.upstreamAllowedOrigins]: ' https://cdn.example.net/some/path , http://mirror.example.org:8080,, ',
    });

    expect([...config.allowedOrigins].sort()).toEqual([
      'http://mirror.example.org:8080',
      'https://cdn.example.net',
      'https://files.example.com',
    ]);
  });

  it('allows only the base origin when UPSTREAM_ALLOWED_ORIGINS is unset', () => {
    const config = loadUpstreamConfig(UPSTREAM_ENV);

    expect([...config.allowedOrigins]).toEqual(['https://files.example.com']);
  });

  it('refuses an allowed origin that is not a URL, naming the variable and the value', () => {
    const error = configErrorOf(() =>
      loadUpstreamConfig({ ...UPSTREAM_ENV, [ENV.upstreamAllowedOrigins]: 'https://ok.example.com,cdn' }),
    );

    expect(error.message).toContain('UPSTREAM_ALLOWED_ORIGINS');
    expect(error.message).toContain('"cdn"');
  });

  // BUG (shared/config.ts, loadUpstreamConfig): an allowed origin with a non-HTTP scheme
  // (`file:`, `data:`, `javascript:`) is accepted and adds the opaque origin string "null" to
  // `allowedOrigins`; any redirect to an opaque-origin URL (e.g. `Location: data:…`) then passes
  // the origin check in openUpstream. Fix: refuse origins whose protocol is not http:/https:
  // (ConfigError naming UPSTREAM_ALLOWED_ORIGINS), as the base URL already does.
  it('refuses an allowed origin with a non-HTTP scheme (its origin would be "null")', () => {
    const error = configErrorOf(() =>
      loadUpstreamConfig({ ...UPSTREAM_ENV, [ENV.upstreamAllowedOrigins]: 'file:///srv/files' }),
    );

    expect(error.message).toContain('UPSTREAM_ALLOWED_ORIGINS');
  });
});

describe('loadRouterConfig', () => {
  it('reads the router settings with their defaults', () => {
    const config = loadRouterConfig(ROUTER_ENV);

    expect(config).toMatchObject({
      downloadTable: 'downloads',
      stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:Downloads',
      webSocketUrl: 'wss://ws.example.com/prod',
      recordTtlSeconds: 7 * 24 * 3600,
      streamMaxBytes: DEFAULT_STREAM_MAX_BYTES,
    });
    expect(config.upstream.baseUrl.href).toBe('https://files.example.com/exports/');
  });

  it('drops a trailing slash from the WebSocket URL', () => {
    expect(
      loadRouterConfig({ ...ROUTER_ENV, [ENV.webSocketUrl]: 'wss://ws.example.com/' }).webSocketUrl,
    ).toBe('wss://ws.example.com');
    expect(
      loadRouterConfig({ ...ROUTER_ENV, [ENV.webSocketUrl]: 'ws://localhost:3001/local/' }).webSocketUrl,
    ).toBe('ws://localhost:3001/local');
  });

  it.each([ENV.downloadTable, ENV.stateMachineArn, ENV.webSocketUrl, ENV.upstreamBaseUrl])(
    'names the missing variable %s',
    (name) => {
      const error = configErrorOf(() => loadRouterConfig({ ...ROUTER_ENV, [name]: undefined }));

      expect(error.message).toContain(name);
    },
  );

  it('refuses an http(s) WebSocket URL, naming WEBSOCKET_URL', () => {
    const error = configErrorOf(() =>
      loadRouterConfig({ ...ROUTER_ENV, [ENV.webSocketUrl]: 'https://ws.example.com/prod' }),
    );

    expect(error.message).toContain('WEBSOCKET_URL');
    expect(error.message).toContain('ws: or wss:');
  });

  it('refuses a record TTL under a minute, naming RECORD_TTL_SECONDS', () => {
    const error = configErrorOf(() => loadRouterConfig({ ...ROUTER_ENV, [ENV.recordTtlSeconds]: '59' }));

    expect(error.message).toContain('RECORD_TTL_SECONDS');
    expect(loadRouterConfig({ ...ROUTER_ENV, [ENV.recordTtlSeconds]: '60' }).recordTtlSeconds).toBe(60);
  });
});

describe('loadFetchConfig', () => {
  it('defaults to 8 MiB parts, 4 at a time', () => {
    const config = loadFetchConfig(FETCH_ENV);

    expect(config.partSizeBytes).toBe(8 * 1024 * 1024);
    expect(config.queueSize).toBe(4);
    expect(config.downloadBucket).toBe('download-bucket');
    expect(config.downloadTable).toBe('downloads');
    expect(config.webSocketManagementUrl).toBe('https://ws.example.com/prod');
  });

  it('accepts the S3 minimum part size of 5 MiB and refuses one byte less', () => {
    expect(
      loadFetchConfig({ ...FETCH_ENV, [ENV.uploadPartSizeBytes]: String(5 * 1024 * 1024) }).partSizeBytes,
    ).toBe(5_242_880);

    const error = configErrorOf(() =>
      loadFetchConfig({ ...FETCH_ENV, [ENV.uploadPartSizeBytes]: String(5 * 1024 * 1024 - 1) }),
    );
    expect(error.message).toContain('UPLOAD_PART_SIZE_BYTES');
  });

  it('refuses a part size above 5 GiB', () => {
    const error = configErrorOf(() =>
      loadFetchConfig({ ...FETCH_ENV, [ENV.uploadPartSizeBytes]: String(5 * 1024 ** 3 + 1) }),
    );

    expect(error.message).toContain('UPLOAD_PART_SIZE_BYTES');
  });

  it.each(['0', '33', 'four'])('refuses an upload queue size of %s', (value) => {
    const error = configErrorOf(() => loadFetchConfig({ ...FETCH_ENV, [ENV.uploadQueueSize]: value }));

    expect(error.message).toContain('UPLOAD_QUEUE_SIZE');
  });

  it.each([ENV.downloadBucket, ENV.downloadTable, ENV.webSocketManagementUrl, ENV.upstreamBaseUrl])(
    'names the missing variable %s',
    (name) => {
      const error = configErrorOf(() => loadFetchConfig({ ...FETCH_ENV, [name]: undefined }));

      expect(error.message).toContain(name);
    },
  );

  it('refuses a wss: management URL, naming WEBSOCKET_MANAGEMENT_URL', () => {
    const error = configErrorOf(() =>
      loadFetchConfig({ ...FETCH_ENV, [ENV.webSocketManagementUrl]: 'wss://ws.example.com/prod' }),
    );

    expect(error.message).toContain('WEBSOCKET_MANAGEMENT_URL');
  });
});

describe('loadPresignConfig', () => {
  it('defaults presigned URLs to 900 seconds', () => {
    expect(loadPresignConfig({ [ENV.downloadBucket]: 'b' })).toEqual({
      downloadBucket: 'b',
      presignTtlSeconds: 900,
    });
  });

  it('accepts up to 7 days and refuses more, naming PRESIGN_TTL_SECONDS', () => {
    expect(
      loadPresignConfig({ [ENV.downloadBucket]: 'b', [ENV.presignTtlSeconds]: '604800' }).presignTtlSeconds,
    ).toBe(604_800);

    const error = configErrorOf(() =>
      loadPresignConfig({ [ENV.downloadBucket]: 'b', [ENV.presignTtlSeconds]: '604801' }),
    );
    expect(error.message).toContain('PRESIGN_TTL_SECONDS');
  });

  it('refuses a zero TTL', () => {
    const error = configErrorOf(() =>
      loadPresignConfig({ [ENV.downloadBucket]: 'b', [ENV.presignTtlSeconds]: '0' }),
    );

    expect(error.message).toContain('PRESIGN_TTL_SECONDS');
  });

  it('requires DOWNLOAD_BUCKET', () => {
    expect(configErrorOf(() => loadPresignConfig({})).message).toContain('DOWNLOAD_BUCKET');
  });
});

describe('the other loaders', () => {
  it('loadTableConfig requires DOWNLOAD_TABLE', () => {
    expect(loadTableConfig({ [ENV.downloadTable]: 't' })).toEqual({ downloadTable: 't' });
    expect(configErrorOf(() => loadTableConfig({})).message).toContain('DOWNLOAD_TABLE');
  });

  it('loadStatusConfig requires a ws(s) WEBSOCKET_URL and the bucket it re-signs URLs for', () => {
    const env = {
      [ENV.downloadTable]: 't',
      [ENV.downloadBucket]: 'b',
      [ENV.webSocketUrl]: 'wss://ws.example.com/prod/',
    };
    expect(loadStatusConfig(env)).toEqual({
      downloadTable: 't',
      downloadBucket: 'b',
      presignTtlSeconds: 900,
      webSocketUrl: 'wss://ws.example.com/prod',
    });
    expect(
      configErrorOf(() => loadStatusConfig({ ...env, [ENV.webSocketUrl]: undefined })).message,
    ).toContain('WEBSOCKET_URL');
    expect(
      configErrorOf(() => loadStatusConfig({ ...env, [ENV.downloadBucket]: undefined })).message,
    ).toContain('DOWNLOAD_BUCKET');
  });

  it('loadWebSocketConfig requires NOTIFIER_FUNCTION_NAME and asks for the token by default', () => {
    expect(loadWebSocketConfig({ [ENV.downloadTable]: 't', [ENV.notifierFunctionName]: 'notifier' })).toEqual(
      { downloadTable: 't', notifierFunctionName: 'notifier', webSocketAuth: 'token' },
    );
    expect(configErrorOf(() => loadWebSocketConfig({ [ENV.downloadTable]: 't' })).message).toContain(
      'NOTIFIER_FUNCTION_NAME',
    );
  });

  it('loadWebSocketConfig accepts the execution-ARN header alone only when WEBSOCKET_AUTH opts in', () => {
    const env = { [ENV.downloadTable]: 't', [ENV.notifierFunctionName]: 'notifier' };
    expect(loadWebSocketConfig({ ...env, [ENV.webSocketAuth]: 'execution-arn-header' }).webSocketAuth).toBe(
      'execution-arn-header',
    );
    expect(loadWebSocketConfig({ ...env, [ENV.webSocketAuth]: ' ' }).webSocketAuth).toBe('token');
    for (const value of ['none', 'TOKEN', 'execution-arn']) {
      expect(
        configErrorOf(() => loadWebSocketConfig({ ...env, [ENV.webSocketAuth]: value })).message,
      ).toContain('WEBSOCKET_AUTH must be one of token, execution-arn-header');
    }
  });

  it('loadNotifyConfig drops the trailing slash of the management URL', () => {
    expect(
      loadNotifyConfig({
        [ENV.downloadTable]: 't',
        [ENV.webSocketManagementUrl]: 'http://localhost:3001/local/',
      }),
    ).toEqual({ downloadTable: 't', webSocketManagementUrl: 'http://localhost:3001/local' });
  });

  it('loadMarkFailedConfig requires DOWNLOAD_BUCKET besides the notify settings', () => {
    const env = { [ENV.downloadTable]: 't', [ENV.webSocketManagementUrl]: 'https://ws.example.com/prod' };

    expect(loadMarkFailedConfig({ ...env, [ENV.downloadBucket]: 'b' }).downloadBucket).toBe('b');
    expect(configErrorOf(() => loadMarkFailedConfig(env)).message).toContain('DOWNLOAD_BUCKET');
  });
});

describe('readBoolean', () => {
  it.each([
    ['true', true],
    ['TRUE', true],
    [' 1 ', true],
    ['yes', true],
    ['false', false],
    ['0', false],
    ['on', false],
    [undefined, false],
  ])('%s → %s', (value, expected) => {
    expect(readBoolean({ [ENV.s3ForcePathStyle]: value }, ENV.s3ForcePathStyle)).toBe(expected);
  });
});
