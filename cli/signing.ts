import { Sha256 } from '@aws-crypto/sha256-js';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { loadConfig, NODE_REGION_CONFIG_FILE_OPTIONS, NODE_REGION_CONFIG_OPTIONS } from '@smithy/core/config';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity } from '@smithy/types';

/** `execute-api` for a REST API, `lambda` for a Function URL. */
export type SigningService = 'execute-api' | 'lambda';

const AWS_API_HOST = /\.(execute-api|lambda-url)\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|on\.aws)$/;

/** The region in an API Gateway or Function URL host name (`abc.execute-api.eu-west-1.amazonaws.com`). */
export function regionFromHost(hostname: string): string | undefined {
  return AWS_API_HOST.exec(hostname)?.[2];
}

/** `lambda` for a Function URL (`--function-url`, or a `*.lambda-url.*` host), else `execute-api`. */
export function signingServiceFor(url: URL, functionUrl: boolean): SigningService {
  return functionUrl || AWS_API_HOST.exec(url.hostname)?.[1] === 'lambda-url' ? 'lambda' : 'execute-api';
}

export interface SignerOptions {
  /** `--no-sign` turns signing off altogether. */
  enabled: boolean;
  service: SigningService;
  /** `--region`; else the API's host name, else the SDK's chain (AWS_REGION, the profile), else us-east-1. */
  region?: string;
  /** `--profile`; else AWS_PROFILE, as the SDK does. */
  profile?: string;
  apiUrl: URL;
  env: NodeJS.ProcessEnv;
}

/** A header bag ready to send. */
export type Headers = Record<string, string>;

/**
 * Signs requests to the API with SigV4 (never the presigned S3 URLs, which carry their own
 * signature). Credentials come from the SDK's standard chain (`fromNodeProviderChain`: env,
 * SSO, shared files, process, web identity, container and instance metadata).
 *
 * When to sign: at once for an API on AWS (its host name says so) or when credentials are set
 * explicitly (AWS_ACCESS_KEY_ID, AWS_PROFILE, `--profile`); otherwise only after the API asked for
 * it with a 403 (`retryWithSignature`). An open API, like the default local stack, so never costs a
 * walk down the credential chain, which ends with a probe of the instance metadata service.
 */
export class RequestSigner {
  readonly options: SignerOptions;
  #signing: boolean;
  #signer: Promise<SignatureV4 | undefined> | undefined;
  #problem: string | undefined;

  constructor(options: SignerOptions) {
    this.options = options;
    const explicit = Boolean(options.env.AWS_ACCESS_KEY_ID || options.env.AWS_PROFILE || options.profile);
    this.#signing = options.enabled && (explicit || regionFromHost(options.apiUrl.hostname) !== undefined);
  }

  /** Whether requests are signed now. */
  get signing(): boolean {
    return this.#signing;
  }

  /** Why requests are not signed, for error messages. */
  describeUnsigned(): string {
    if (!this.options.enabled) return 'signing is off (--no-sign)';
    return this.#problem ?? 'no AWS credentials were found';
  }

  /** `headers` plus SigV4's (`authorization`, `x-amz-date`, `x-amz-content-sha256`, a session token). */
  async sign(method: string, url: URL, headers: Headers): Promise<Headers> {
    if (!this.#signing) return headers;
    const signer = await this.#getSigner();
    if (!signer) return headers;
    const query: Record<string, string | string[]> = {};
    for (const [name, value] of url.searchParams) {
      const previous = query[name];
      query[name] =
        previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
    }
    const signed = await signer.sign({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query,
      headers: { ...headers, host: url.host },
    });
    return signed.headers as Headers;
  }

  /** After an unsigned request was refused for want of a signature: true if signing is now possible. */
  async retryWithSignature(): Promise<boolean> {
    if (!this.options.enabled || this.#signing) return false;
    this.#signing = true;
    if (await this.#getSigner()) return true;
    this.#signing = false;
    return false;
  }

  #getSigner(): Promise<SignatureV4 | undefined> {
    this.#signer ??= this.#createSigner();
    return this.#signer;
  }

  async #createSigner(): Promise<SignatureV4 | undefined> {
    const provider = fromNodeProviderChain(this.options.profile ? { profile: this.options.profile } : {});
    let credentials: AwsCredentialIdentity;
    try {
      credentials = await provider();
    } catch (error) {
      this.#problem = `no AWS credentials were found (${(error as Error).message.split('\n')[0]})`;
      return undefined;
    }
    const region = await this.#region();
    return new SignatureV4({
      credentials,
      region,
      service: this.options.service,
      sha256: Sha256,
    });
  }

  async #region(): Promise<string> {
    if (this.options.region) return this.options.region;
    const fromHost = regionFromHost(this.options.apiUrl.hostname);
    if (fromHost) return fromHost;
    try {
      return await loadConfig(NODE_REGION_CONFIG_OPTIONS, {
        ...NODE_REGION_CONFIG_FILE_OPTIONS,
        ...(this.options.profile ? { profile: this.options.profile } : {}),
      })();
    } catch {
      return 'us-east-1';
    }
  }
}
