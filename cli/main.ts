#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import packageJson from '../package.json' with { type: 'json' };
import { ApiClient, type DownloadMode } from './api.ts';
import { CliError, InterruptedError } from './errors.ts';
import { EXIT, EXIT_CODE_TABLE, type ExitCode } from './exit-codes.ts';
import { parseByteSize } from './format.ts';
import { runGet } from './get-command.ts';
import { createReporter } from './progress.ts';
import { RequestSigner, signingServiceFor } from './signing.ts';
import { runStatus } from './status-command.ts';

const DEFAULT_API = 'http://127.0.0.1:3000';

interface GlobalOptions {
  api: string;
  functionUrl?: boolean;
  sign: boolean;
  region?: string;
  profile?: string;
  quiet?: boolean;
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < min || number > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return number;
  };
}

function byteRate(value: string): number {
  const bytes = parseByteSize(value);
  if (bytes === undefined) throw new InvalidArgumentError('expected bytes per second, like 500k, 5M or 1G');
  return bytes;
}

function apiUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected an http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidArgumentError('expected an http(s) URL');
  return value;
}

const exitCodeHelp = EXIT_CODE_TABLE.map(
  ([code, meaning]) => `  ${String(code).padStart(3)}  ${meaning}`,
).join('\n');

const HELP_AFTER = `
Exit codes:
${exitCodeHelp}

Environment:
  LARGE_DOWNLOAD_API        the API base URL (like --api; default ${DEFAULT_API}, the local stack)
  AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, …
                            credentials and region for SigV4, from the AWS SDK's standard chain
  HTTP_PROXY, HTTPS_PROXY, NO_PROXY
                            proxies for the API and S3 requests

Signing: requests to the API are signed with SigV4 (service execute-api, or lambda for a Function
URL) when credentials are set explicitly or the API is on AWS, and otherwise as soon as the API asks
(403); --no-sign never signs. Presigned S3 URLs are never signed again.

Examples:
  large-download get sample/150MB                       stream it into ./150MB
  large-download get sample/1GB -o big.bin              async: copy to S3, then 4 parallel ranges
  large-download get reports/2025.csv --api https://abc.execute-api.eu-west-1.amazonaws.com/prod
  large-download status 'http://127.0.0.1:3000/downloads/<id>?token=<token>'`;

const GET_HELP_AFTER = `
The file is written to FILE.part, with its state in FILE.part.json, and renamed to FILE once it is
complete and verified (size always; the checksum when the API gives one). Interrupted (Ctrl-C, a
crash, a dropped network), the same command continues where it stopped: a streamed file asks
/stream/{key} for the rest (Range, If-Range), an async one re-reads the status URL for a fresh
presigned URL and fetches only the missing ranges (If-Match). A file that changed meanwhile (other
ETag or size) is fetched again, never stitched. Exit codes: see large-download --help.`;

function buildProgram(run: (code: ExitCode) => void, signal: AbortSignal): Command {
  const program = new Command()
    .name('large-download')
    .description(
      'Download files of any size through the large-downloads API: streamed when small, copied to S3 and fetched in parallel ranges when large; resumable and verified.',
    )
    .version(packageJson.version)
    .addOption(
      new Option('--api <url>', 'API base URL (REST API with its stage, or a Function URL)')
        .env('LARGE_DOWNLOAD_API')
        .default(DEFAULT_API)
        .argParser(apiUrl),
    )
    .option(
      '--function-url',
      'the API is a Function URL (sign for lambda; detected for *.lambda-url.* hosts)',
    )
    .option('--no-sign', 'never sign requests with SigV4')
    .option('--region <region>', 'region to sign for (default: from the API host, AWS_REGION, the profile)')
    .option('--profile <name>', 'AWS profile for the credentials (default: AWS_PROFILE)')
    .option('-q, --quiet', 'print nothing but errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .addHelpText('after', HELP_AFTER);

  const context = (options: GlobalOptions) => {
    const base = new URL(options.api);
    const functionUrl = options.functionUrl === true || /\.lambda-url\./.test(base.hostname);
    const signer = new RequestSigner({
      enabled: options.sign,
      service: signingServiceFor(base, functionUrl),
      ...(options.region ? { region: options.region } : {}),
      ...(options.profile ? { profile: options.profile } : {}),
      apiUrl: base,
      env: process.env,
    });
    return { api: new ApiClient(base, functionUrl, signer), signal };
  };

  program
    .command('get')
    .description('download a file by its key (query parameters after "?" go to upstream)')
    .argument('<key>', 'the file\'s key, e.g. sample/150MB or "sample/20MB?rate=1000000"')
    .option(
      '-o, --output <file>',
      "where to save it (a directory keeps the key's name; default: the key's last segment)",
    )
    .addOption(
      new Option('--mode <mode>', "stream or copy to S3 first; maps to the API's ?mode=")
        .choices(['auto', 'stream', 'async'])
        .default('auto'),
    )
    .option('-c, --connections <n>', 'parallel range requests for the S3 download', integer(1, 32), 4)
    .option('--retries <n>', 'retries per range (or stream) after a network failure', integer(0, 100), 3)
    .option('--limit-rate <rate>', 'cap the download at this many bytes per second (500k, 5M, 1G)', byteRate)
    .option('--no-resume', 'discard a partial download left by an earlier run and start over')
    .addHelpText('after', GET_HELP_AFTER)
    .action(async (key: string, options: Record<string, unknown>, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const reporter = createReporter({ quiet: globals.quiet === true, stream: process.stdout });
      try {
        await runGet(
          {
            key,
            output: options.output as string | undefined,
            mode: options.mode as DownloadMode,
            connections: options.connections as number,
            retries: options.retries as number,
            limitRate: options.limitRate as number | undefined,
            resume: options.resume as boolean,
          },
          { ...context(globals), reporter },
        );
      } finally {
        reporter.close();
      }
      run(EXIT.ok);
    });

  program
    .command('status')
    .description('print the status of an async download')
    .argument(
      '<download>',
      'the statusUrl from the 202 answer (token included), or a download id with --token',
    )
    .option('--token <token>', 'the download token (the 202 answer\'s "token"), for a bare download id')
    .option('--json', 'print the status as JSON')
    .action(async (download: string, options: Record<string, unknown>, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const code = await runStatus(
        { download, token: options.token as string | undefined, json: options.json === true },
        { ...context(globals), print: (line) => process.stdout.write(`${line}\n`) },
      );
      run(code);
    });

  return program;
}

function report(error: unknown): ExitCode {
  if (error instanceof CliError) {
    process.stderr.write(`large-download: ${error.title}\n`);
    if (error.detail) process.stderr.write(`  ${error.detail}\n`);
    return error.exitCode;
  }
  // A file system error (no such directory, disk full, permission) is the user's to fix: its message says it.
  if ((error as NodeJS.ErrnoException)?.syscall) {
    process.stderr.write(`large-download: ${(error as Error).message}\n`);
    return EXIT.other;
  }
  process.stderr.write(`large-download: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  return EXIT.other;
}

async function main(): Promise<void> {
  // A reader that went away (`| head`) must not turn into an unhandled error.
  process.stdout.on('error', () => undefined);
  const controller = new AbortController();
  let stopping = false;
  const stop = (signal: 'SIGINT' | 'SIGTERM') => {
    // A second Ctrl-C while the state is being saved exits at once (the state is saved every second anyway).
    if (stopping) process.exit(signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated);
    stopping = true;
    controller.abort(new InterruptedError(signal));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  let exitCode: ExitCode = EXIT.ok;
  const program = buildProgram((code) => {
    exitCode = code;
  }, controller.signal);
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      const shown = ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(error.code);
      exitCode = shown ? EXIT.ok : EXIT.usage;
    } else {
      exitCode = report(
        controller.signal.aborted && !(error instanceof CliError) ? controller.signal.reason : error,
      );
    }
  }
  // Sockets and timers of the HTTP pool must not hold the process open; what was printed goes out first.
  const code = exitCode;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

await main();
