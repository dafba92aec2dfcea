import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/functions.ts';
import { LAMBDA_OPERATIONS } from '../../local/lambda-service.ts';
import { STEP_FUNCTIONS_OPERATIONS } from '../../local/step-functions.ts';
import { CONNECTIONS_OPERATIONS } from '../../local/websocket-gateway.ts';
import { SdkUsageAnalyzer } from '../infra/sdk-usage.ts';

const file = (...parts: string[]) => join(REPO_ROOT, ...parts);
const typeScriptIn = (directory: string): string[] =>
  readdirSync(file(directory), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => file(directory, name));

/** Every function's handler, the local stack itself (its EventBridge invokes functions), and the CLI. */
const PRODUCT_ENTRIES = [
  ...readdirSync(file('functions'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => file('functions', entry.name, 'handler.ts')),
  file('local', 'stack.ts'),
  file('cli', 'main.ts'),
];
/**
 * The end-to-end tests drive the local stack as an operator would; the README documents that
 * the local Step Functions can be told to stop an execution (`StopExecution`) for that.
 */
const E2E_ENTRIES = readdirSync(file('test', 'e2e'))
  .filter((name) => name.endsWith('.test.ts'))
  .map((name) => file('test', 'e2e', name));

/** Each emulator: the SDK client package it answers, and the operations it serves. */
const EMULATORS = [
  { name: 'Step Functions', module: '@aws-sdk/client-sfn', serves: [...STEP_FUNCTIONS_OPERATIONS] },
  { name: 'Lambda', module: '@aws-sdk/client-lambda', serves: Object.keys(LAMBDA_OPERATIONS) },
  {
    name: 'API Gateway @connections',
    module: '@aws-sdk/client-apigatewaymanagementapi',
    serves: Object.values(CONNECTIONS_OPERATIONS),
  },
] as const;

describe('emulated operations', () => {
  let calls: string[];

  beforeAll(() => {
    const entries = [...PRODUCT_ENTRIES, ...E2E_ENTRIES];
    calls = new SdkUsageAnalyzer(entries).operationsOf(...entries);
  });

  it.each(EMULATORS)(
    'the local $name serves exactly the operations the product and its end-to-end tests send',
    ({ module, serves }) => {
      const sent = calls
        .filter((call) => call.startsWith(`${module}#`))
        .map((call) => call.slice(module.length + 1));
      const unmapped = sent.filter((name) => !name.endsWith('Command'));

      expect(unmapped, 'SDK uses that bypass command classes (aggregated clients, paginators)').toEqual([]);
      expect(sent.map((name) => name.replace(/Command$/, '')).sort()).toEqual([...serves].sort());
    },
  );

  it('the local Lambda service accepts exactly the invocation types the product asks for', () => {
    const sources = ['functions', 'shared', 'local', 'cli']
      .flatMap(typeScriptIn)
      .map((path) => ({ path, text: readFileSync(path, 'utf8') }));
    const invoking = sources.filter(({ text }) => text.includes('new InvokeCommand('));
    const types = new Set(
      invoking.flatMap(({ text }) => [...text.matchAll(/InvocationType: '(\w+)'/g)].map((match) => match[1])),
    );

    expect(invoking.length).toBeGreaterThan(0);
    for (const { path, text } of invoking) {
      // Without an explicit type the SDK sends RequestResponse.
      expect(text.split('new InvokeCommand(').length - 1, path).toBe(
        text.split('InvocationType:').length - 1,
      );
    }
    expect([...types].sort()).toEqual([...LAMBDA_OPERATIONS.Invoke].sort());
  });
});
