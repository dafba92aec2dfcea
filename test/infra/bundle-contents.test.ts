import type { Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { FUNCTION_FOLDERS } from '../../infra/functions.ts';
import { functionMetafile } from '../../local/bundle.ts';

/**
 * Which npm packages each function's bundle may contain. Every package costs init time on a cold
 * start (undici alone about 170 ms, the SDK stack about as much), so a function carries only what
 * it calls: a package that reaches a bundle without being listed here fails the test with the
 * import chain that brought it in. Bundles are built with the very options `cdk synth` uses
 * (`functionMetafile` of `local/bundle.ts`), and a package counts when the bundle kept any of its
 * bytes (what tree-shaking dropped does not count).
 */

/** What a function does that needs packages; `requires` must be in the bundle (the list is not stale). */
interface Capability {
  requires: string;
  /** Package names, or a family as `@scope/prefix*`. */
  packages: readonly string[];
}

/** What every SDK v3 client brings: the core, credential providers, Smithy, and the X-Ray tracer wrapping it. */
const SDK_CLIENT_CORE = [
  '@aws-sdk/core',
  '@aws-sdk/nested-clients',
  '@aws-sdk/credential-provider-*',
  '@aws-sdk/token-providers',
  '@aws-sdk/signature-v4-multi-region',
  '@aws-sdk/xml-builder',
  '@smithy/*',
  // `shared/tracer.ts`: Powertools' Tracer wraps every client (`captureAWSv3Client`).
  '@aws-lambda-powertools/tracer',
  'aws-xray-sdk-core',
  'atomic-batcher',
  'cls-hooked',
  'emitter-listener',
  'semver',
  'shimmer',
] as const;

const sdkClient = (client: string, ...extra: string[]): Capability => ({
  requires: client,
  packages: [client, ...extra, ...SDK_CLIENT_CORE],
});

const CAPABILITIES = {
  /** Powertools logs and metrics (`shared/logger.ts`, `shared/observability.ts`): every function. */
  logsAndMetrics: {
    requires: '@aws-lambda-powertools/logger',
    packages: [
      '@aws-lambda-powertools/commons',
      '@aws-lambda-powertools/logger',
      '@aws-lambda-powertools/metrics',
      '@aws/lambda-invoke-store',
    ],
  },
  /** Reads upstream (`shared/upstream.ts`). */
  upstream: { requires: 'undici', packages: ['undici'] },
  /** A response-streaming handler (`shared/http/awslambda.ts`). */
  responseStreaming: { requires: 'lambda-stream', packages: ['lambda-stream'] },
  dynamoDb: sdkClient(
    '@aws-sdk/client-dynamodb',
    '@aws-sdk/lib-dynamodb',
    '@aws-sdk/util-dynamodb',
    '@aws-sdk/dynamodb-codec',
    '@aws-sdk/middleware-endpoint-discovery',
    '@aws-sdk/endpoint-cache',
    'mnemonist',
    'obliterator',
  ),
  s3: sdkClient('@aws-sdk/client-s3', '@aws-sdk/middleware-sdk-s3', '@aws-sdk/checksums'),
  /** Streams a body into a multipart upload (`shared/downloads/copy-to-s3.ts`). */
  s3Upload: { requires: '@aws-sdk/lib-storage', packages: ['@aws-sdk/lib-storage'] },
  presign: { requires: '@aws-sdk/s3-request-presigner', packages: ['@aws-sdk/s3-request-presigner'] },
  stepFunctions: sdkClient('@aws-sdk/client-sfn'),
  lambdaInvoke: sdkClient('@aws-sdk/client-lambda'),
  /** Posts to WebSocket connections (`@connections`). */
  webSocketPost: sdkClient('@aws-sdk/client-apigatewaymanagementapi'),
} as const satisfies Record<string, Capability>;

type CapabilityName = keyof typeof CAPABILITIES;

/**
 * The allow-list: what each folder under `functions/` does. A new function needs its entry here
 * (the test names the packages it bundles, to start from).
 */
const ALLOWED: Readonly<Record<string, readonly CapabilityName[]>> = {
  stream: ['logsAndMetrics', 'upstream', 'responseStreaming'],
  router: ['logsAndMetrics', 'upstream', 'responseStreaming', 'dynamoDb', 'stepFunctions'],
  'download-status': ['logsAndMetrics', 'dynamoDb', 's3', 'presign'],
  websocket: ['logsAndMetrics', 'dynamoDb', 'lambdaInvoke'],
  'fetch-to-s3': ['logsAndMetrics', 'upstream', 'dynamoDb', 's3', 's3Upload', 'webSocketPost'],
  presign: ['logsAndMetrics', 's3', 'presign'],
  'mark-ready': ['logsAndMetrics', 'dynamoDb'],
  notify: ['logsAndMetrics', 'dynamoDb', 's3', 'presign', 'webSocketPost'],
  'mark-failed': ['logsAndMetrics', 'dynamoDb', 's3', 'webSocketPost'],
  'workflow-ended': ['logsAndMetrics', 'dynamoDb', 's3', 'webSocketPost'],
  // The browser page's document (dist/page), built from web/: no npm package.
  page: [],
  'plan-copy': ['logsAndMetrics', 'upstream', 'dynamoDb', 's3'],
  'copy-range': ['logsAndMetrics', 'upstream', 'dynamoDb', 's3', 'webSocketPost'],
  'complete-copy': ['logsAndMetrics', 'dynamoDb', 's3'],
};

const THIS_FILE = 'test/infra/bundle-contents.test.ts';

/** The npm package an input path belongs to (the innermost `node_modules/`), or undefined for the project's own files. */
function packageOf(input: string): string | undefined {
  const matches = [...input.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)];
  return matches.at(-1)?.[1];
}

function matches(pattern: string, name: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

/** Packages the bundle kept bytes of. */
function bundledPackages(metafile: Metafile): Set<string> {
  const packages = new Set<string>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const name = packageOf(input);
      if (name && bytesInOutput > 0) packages.add(name);
    }
  }
  return packages;
}

/**
 * The shortest import chain from the entry to a file of `name`, through files the bundle kept
 * where there is one: `functions/presign/handler.ts → shared/aws-clients.ts → @aws-sdk/client-dynamodb`
 * (runs of files of one package shown as the package's name).
 */
function importChain(metafile: Metafile, entry: string, name: string): string {
  const kept = new Set<string>();
  for (const output of Object.values(metafile.outputs))
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs))
      if (bytesInOutput > 0) kept.add(input);
  const search = (through: (file: string) => boolean): string[] | undefined => {
    const previous = new Map<string, string | undefined>([[entry, undefined]]);
    const queue = [entry];
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      if (packageOf(file) === name) {
        const chain: string[] = [];
        for (let step: string | undefined = file; step !== undefined; step = previous.get(step))
          chain.unshift(step);
        return chain;
      }
      for (const imported of metafile.inputs[file]?.imports ?? []) {
        if (imported.external || previous.has(imported.path) || !through(imported.path)) continue;
        previous.set(imported.path, file);
        queue.push(imported.path);
      }
    }
    return undefined;
  };
  const chain = search((file) => kept.has(file)) ?? search(() => true);
  if (!chain) return `${entry} → … → ${name}`;
  const steps: string[] = [];
  for (const file of chain) {
    const step = packageOf(file) ?? file;
    if (steps.at(-1) !== step) steps.push(step);
  }
  return steps.join(' → ');
}

/** What is wrong with a bundle against its capabilities: packages not allowed (with their chain), capabilities unused. */
function bundleProblems(
  metafile: Metafile,
  entry: string,
  capabilities: readonly CapabilityName[],
): string[] {
  const bundled = bundledPackages(metafile);
  const allowed = capabilities.flatMap((capability) => CAPABILITIES[capability].packages);
  const problems: string[] = [];
  for (const name of [...bundled].sort()) {
    if (allowed.some((pattern) => matches(pattern, name))) continue;
    problems.push(
      `bundles ${name}, which its allow-list does not name: ${importChain(metafile, entry, name)}`,
    );
  }
  for (const capability of capabilities) {
    const { requires } = CAPABILITIES[capability];
    if (!bundled.has(requires)) {
      problems.push(
        `is allowed ${capability} but bundles no ${requires}: remove it from its entry in ${THIS_FILE}`,
      );
    }
  }
  return problems;
}

describe('function bundles', () => {
  it.each(FUNCTION_FOLDERS)(
    'functions/%s bundles only the packages its allow-list names',
    async (folder) => {
      const metafile = await functionMetafile(folder);
      const entry = `functions/${folder}/handler.ts`;
      const capabilities = ALLOWED[folder];
      if (!capabilities) {
        const bundled = [...bundledPackages(metafile)].sort();
        throw new Error(
          `functions/${folder} has no allow-list entry in ${THIS_FILE} (ALLOWED): add one naming what it does; ` +
            (bundled.length > 0 ? `it bundles ${bundled.join(', ')}` : 'it bundles no npm package'),
        );
      }

      const problems = bundleProblems(metafile, entry, capabilities).map((problem) => `${entry} ${problem}`);

      expect(problems, problems.join('\n')).toEqual([]);
    },
    60_000,
  );

  it('has allow-list entries only for folders under functions/', () => {
    const unknown = Object.keys(ALLOWED).filter(
      (folder) => !(FUNCTION_FOLDERS as readonly string[]).includes(folder),
    );

    expect(unknown).toEqual([]);
  });
});

describe('the bundle check', () => {
  /** A bundle of `functions/presign/handler.ts` whose client module drags in DynamoDB. */
  const metafile = {
    inputs: {
      'functions/presign/handler.ts': {
        bytes: 1,
        imports: [{ path: 'shared/aws-clients.ts', kind: 'import-statement', original: '' }],
      },
      'shared/aws-clients.ts': {
        bytes: 1,
        imports: [
          {
            path: 'node_modules/@aws-sdk/client-s3/dist-es/index.js',
            kind: 'import-statement',
            original: '',
          },
          {
            path: 'node_modules/@aws-sdk/client-dynamodb/dist-es/index.js',
            kind: 'import-statement',
            original: '',
          },
          { path: 'node:fs', kind: 'import-statement', original: '', external: true },
        ],
      },
      'node_modules/@aws-sdk/client-s3/dist-es/index.js': { bytes: 1, imports: [] },
      'node_modules/@aws-sdk/client-dynamodb/dist-es/index.js': {
        bytes: 1,
        imports: [
          {
            path: 'node_modules/@aws-sdk/client-dynamodb/dist-es/DynamoDBClient.js',
            kind: 'import-statement',
            original: '',
          },
        ],
      },
      'node_modules/@aws-sdk/client-dynamodb/dist-es/DynamoDBClient.js': { bytes: 1, imports: [] },
      'node_modules/@aws-sdk/s3-request-presigner/dist-es/index.js': { bytes: 1, imports: [] },
    },
    outputs: {
      'index.mjs': {
        bytes: 4,
        imports: [],
        exports: [],
        inputs: {
          'functions/presign/handler.ts': { bytesInOutput: 1 },
          'shared/aws-clients.ts': { bytesInOutput: 1 },
          'node_modules/@aws-sdk/client-s3/dist-es/index.js': { bytesInOutput: 1 },
          'node_modules/@aws-sdk/client-dynamodb/dist-es/DynamoDBClient.js': { bytesInOutput: 1 },
          // Parsed, but tree-shaken out: not in the bundle.
          'node_modules/@aws-sdk/s3-request-presigner/dist-es/index.js': { bytesInOutput: 0 },
        },
      },
    },
  } as unknown as Metafile;

  it('names a package nobody allowed, with the import chain that brought it in', () => {
    const problems = bundleProblems(metafile, 'functions/presign/handler.ts', ['s3']);

    expect(problems).toEqual([
      'bundles @aws-sdk/client-dynamodb, which its allow-list does not name: ' +
        'functions/presign/handler.ts → shared/aws-clients.ts → @aws-sdk/client-dynamodb',
    ]);
  });

  it('names a capability whose package the bundle no longer holds', () => {
    const problems = bundleProblems(metafile, 'functions/presign/handler.ts', ['s3', 'dynamoDb', 'presign']);

    expect(problems).toEqual([
      `is allowed presign but bundles no @aws-sdk/s3-request-presigner: remove it from its entry in ${THIS_FILE}`,
    ]);
  });

  it('takes the innermost node_modules folder as the package', () => {
    expect(packageOf('node_modules/@aws-sdk/core/node_modules/@smithy/core/dist-es/index.js')).toBe(
      '@smithy/core',
    );
    expect(packageOf('node_modules/undici/index.js')).toBe('undici');
    expect(packageOf('shared/upstream.ts')).toBeUndefined();
  });
});
