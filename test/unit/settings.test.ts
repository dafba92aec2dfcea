import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_DOWNLOAD_SETTINGS,
  downloadSettingsFromContext,
  validateDownloadSettings,
} from '../../infra/download-stack.ts';
import { FUNCTION_FOLDERS, type FunctionFolder } from '../../infra/functions.ts';
import { README_PATH, withSettingsTable } from '../../scripts/settings-table.ts';
import {
  loadCompleteCopyConfig,
  loadCopyRangeConfig,
  loadDeliveryConfig,
  loadFetchConfig,
  loadMarkFailedConfig,
  loadPlanCopyConfig,
  loadPresignConfig,
  loadRouterConfig,
  loadStatusConfig,
  loadStreamConfig,
  loadTableConfig,
  loadWebSocketConfig,
} from '../../shared/config.ts';
import { ENV } from '../../shared/env-names.ts';
import { SETTINGS, type Setting, type SettingName, settingsReadBy } from '../../shared/settings.ts';
import { synthesize } from '../infra/template.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** The loader each handler calls (`functions/<folder>/handler.ts`). */
const LOADERS: Record<FunctionFolder, (env: Env) => unknown> = {
  stream: loadStreamConfig,
  router: loadRouterConfig,
  'download-status': loadStatusConfig,
  websocket: loadWebSocketConfig,
  'fetch-to-s3': loadFetchConfig,
  presign: loadPresignConfig,
  'mark-ready': loadTableConfig,
  notify: loadDeliveryConfig,
  'mark-failed': loadMarkFailedConfig,
  'workflow-ended': loadMarkFailedConfig,
  'plan-copy': loadPlanCopyConfig,
  'copy-range': loadCopyRangeConfig,
  'complete-copy': loadCompleteCopyConfig,
  // The page function reads no configuration.
  page: () => undefined,
};

/** Every required variable, valid; the settings' own variables are left at their defaults. */
const WIRED_ENV: Env = {
  [ENV.upstreamBaseUrl]: 'https://files.example.org/exports/',
  [ENV.downloadBucket]: 'bucket',
  [ENV.downloadTable]: 'table',
  [ENV.stateMachineArn]: 'arn:aws:states:eu-west-1:123456789012:stateMachine:downloads',
  [ENV.webSocketUrl]: 'wss://ws.example.org/prod',
  [ENV.webSocketManagementUrl]: 'https://ws.example.org/prod',
  [ENV.notifierFunctionName]: 'notify',
};

/** The variables `load(env)` reads. */
function variablesReadBy(load: (env: Env) => unknown, env: Env = WIRED_ENV): Set<string> {
  const read = new Set<string>();
  load(
    new Proxy(env, {
      get(target, name) {
        if (typeof name === 'string') read.add(name);
        return target[name as string];
      },
    }),
  );
  return read;
}

const envOf = (name: SettingName): string | undefined => (SETTINGS[name] as Setting).env;
const envSettings = (Object.keys(SETTINGS) as SettingName[]).filter((name) => envOf(name));

/** A `-c name=value` synth check: throws like `cdk synth` would. */
function synthAccepts(name: SettingName, value: string): boolean {
  const fromContext = downloadSettingsFromContext(new App({ context: { [name]: value } }));
  try {
    validateDownloadSettings({ ...DEFAULT_DOWNLOAD_SETTINGS, ...fromContext });
    return true;
  } catch {
    return false;
  }
}

/** Whether the first function reading `name` loads its config with `value` in the variable. */
function runtimeAccepts(name: SettingName, value: string): boolean {
  const setting: Setting = SETTINGS[name];
  const folder = setting.readBy[0] as FunctionFolder;
  try {
    LOADERS[folder]({ ...WIRED_ENV, [setting.env as string]: value });
    return true;
  } catch {
    return false;
  }
}

describe('the settings catalogue', () => {
  it('names only real function folders as readers', () => {
    for (const [name, setting] of Object.entries(SETTINGS) as [string, Setting][]) {
      for (const folder of setting.readBy) expect(FUNCTION_FOLDERS, name).toContain(folder);
      if (setting.readBy.length > 0) expect(setting.env, name).toBeDefined();
    }
  });

  it.each(FUNCTION_FOLDERS)('lists exactly the settings the %s config loader reads', (folder) => {
    const read = variablesReadBy(LOADERS[folder]);
    const readSettings = envSettings.filter((name) => read.has(envOf(name) as string));

    expect(readSettings.sort()).toEqual(settingsReadBy(folder).sort());
  });

  describe('in the synthesized stack', () => {
    let variablesOf: Map<string, Record<string, unknown>>;
    beforeAll(() => {
      // Allowed origins set, so that its variable appears: left empty, it is left out on purpose
      // and the loaders fall back to the same empty default.
      const { template } = synthesize({ upstreamAllowedOrigins: 'https://cdn.example.org' });
      variablesOf = new Map();
      for (const fn of Object.values(template.findResources('AWS::Lambda::Function'))) {
        const variables = (fn.Properties.Environment?.Variables ?? {}) as Record<string, unknown>;
        const folder = variables.POWERTOOLS_SERVICE_NAME;
        if (typeof folder === 'string') variablesOf.set(folder, variables);
      }
    });

    it.each(FUNCTION_FOLDERS)('sets every variable the %s config loader reads', (folder) => {
      const variables = variablesOf.get(folder);
      expect(variables, `no function runs ${folder}`).toBeDefined();

      const missing = [...variablesReadBy(LOADERS[folder])].filter((name) => !(name in (variables ?? {})));

      expect(missing).toEqual([]);
    });
  });

  describe.each(envSettings.filter((name) => SETTINGS[name].kind === 'integer'))(
    'synth and run time accept the same %s',
    (name) => {
      const setting = SETTINGS[name] as Setting & { min: number; max: number };

      it.each([
        ['min', setting.min, true],
        ['max', setting.max, true],
        ['min - 1', setting.min - 1, false],
        ['max + 1', setting.max + 1, false],
      ])('%s (%d)', (_label, value, accepted) => {
        expect(synthAccepts(name, String(value))).toBe(accepted);
        expect(runtimeAccepts(name, String(value))).toBe(accepted);
      });
    },
  );

  describe.each(envSettings.filter((name) => SETTINGS[name].kind === 'choice'))(
    'synth and run time accept the same %s',
    (name) => {
      const setting = SETTINGS[name] as Setting & { allowed: readonly string[] };

      it.each([...setting.allowed.map((value) => [value, true] as const), ['bogus', false] as const])(
        '%s',
        (value, accepted) => {
          expect(synthAccepts(name, value)).toBe(accepted);
          expect(runtimeAccepts(name, value)).toBe(accepted);
        },
      );
    },
  );

  it('refuses at synth the upload queue size the copy step refuses (was accepted up to 64)', () => {
    expect(synthAccepts('uploadQueueSize', '40')).toBe(false);
    expect(runtimeAccepts('uploadQueueSize', '40')).toBe(false);
  });

  it('refuses at run time the record TTL that synth refuses (was unbounded at run time)', () => {
    expect(synthAccepts('recordTtlSeconds', String(367 * 86_400))).toBe(false);
    expect(runtimeAccepts('recordTtlSeconds', String(367 * 86_400))).toBe(false);
  });

  it('is what README.md shows (run `npm run docs:settings` after changing shared/settings.ts)', () => {
    const readme = readFileSync(README_PATH, 'utf8');

    expect(withSettingsTable(readme)).toBe(readme);
  });
});
