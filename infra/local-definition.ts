import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, type CfnResource } from 'aws-cdk-lib';
import { type DownloadSettings, DownloadStack } from './download-stack.ts';
import { DownloadFunction, type FunctionFolder } from './functions.ts';

/** The `context` of `cdk.json` (feature flags), so that in-process synths match `cdk synth`. */
export function readCdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return cdkJson.context ?? {};
}

/** A state machine definition in Amazon States Language (JSONPath flavour). */
export interface StateMachineDefinition {
  readonly StartAt: string;
  readonly States: Record<string, Record<string, unknown>>;
  readonly Comment?: string;
  readonly TimeoutSeconds?: number;
  readonly [field: string]: unknown;
}

export interface SynthesizeStateMachineOptions {
  /** Stack settings; they do not change the definition today, only the functions' environment. */
  readonly settings?: Partial<DownloadSettings>;
  /** Region placed in the placeholder ARNs. @default 'us-east-1' */
  readonly region?: string;
  /** Account placed in the placeholder ARNs. @default '000000000000' */
  readonly accountId?: string;
}

export interface SynthesizedStateMachine {
  /** The definition with every CloudFormation intrinsic resolved; functions appear as placeholder ARNs. */
  readonly definition: StateMachineDefinition;
  /** Task state name → folder under `functions/` whose handler runs it, e.g. `{ FetchToS3: 'fetch-to-s3' }`. */
  readonly taskStates: Record<string, FunctionFolder>;
  /** Placeholder ARN of each function that appears in the definition. */
  readonly functionArns: Partial<Record<FunctionFolder, string>>;
}

/**
 * Placeholder ARN of a function: its name is its `functions/` folder, so an ARN found anywhere
 * in the definition names the handler to run.
 */
export function placeholderFunctionArn(
  folder: string,
  region = 'us-east-1',
  accountId = '000000000000',
): string {
  return `arn:aws:lambda:${region}:${accountId}:function:${folder}`;
}

/**
 * Synthesizes the real `DownloadStack` (bundling skipped, so no esbuild, Docker or network; about
 * a second or two) and returns its one state machine's definition as plain ASL, ready for a local
 * Step Functions emulator. Needs every `functions/<name>/handler.ts` to exist.
 */
export function synthesizeStateMachineDefinition(
  options: SynthesizeStateMachineOptions = {},
): SynthesizedStateMachine {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const outdir = mkdtempSync(join(tmpdir(), 'large-downloads-synth-'));
  try {
    const app = new App({
      outdir,
      context: { ...readCdkJsonContext(), 'aws:cdk:bundling-stacks': [] },
    });
    const stack = new DownloadStack(app, 'LocalDefinitionStack', options.settings);

    const folderByLogicalId = new Map<string, FunctionFolder>();
    for (const construct of stack.node.findAll()) {
      if (construct instanceof DownloadFunction) {
        folderByLogicalId.set(
          stack.getLogicalId(construct.node.defaultChild as CfnResource),
          construct.folder,
        );
      }
    }

    const template = app.synth().getStackArtifact(stack.artifactId).template as {
      Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
    };
    const stateMachines = Object.values(template.Resources).filter(
      (resource) => resource.Type === 'AWS::StepFunctions::StateMachine',
    );
    if (stateMachines.length !== 1) {
      throw new Error(`expected one AWS::StepFunctions::StateMachine, found ${stateMachines.length}`);
    }

    const resolver = new IntrinsicResolver({ region, accountId, folderByLogicalId });
    const definitionString = resolver.resolve(stateMachines[0]?.Properties?.DefinitionString);
    if (typeof definitionString !== 'string') throw new Error('DefinitionString did not resolve to a string');
    const definition = JSON.parse(definitionString) as StateMachineDefinition;

    const functionArns: Partial<Record<FunctionFolder, string>> = {};
    const folderByArn = new Map<string, FunctionFolder>();
    for (const folder of folderByLogicalId.values()) {
      const arn = placeholderFunctionArn(folder, region, accountId);
      folderByArn.set(arn, folder);
      if (definitionString.includes(arn)) functionArns[folder] = arn;
    }
    const taskStates: Record<string, FunctionFolder> = {};
    collectTaskStates(definition.States, folderByArn, taskStates);
    return { definition, taskStates, functionArns };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Walks States (and the nested ones of Parallel and Map) for Tasks that invoke one of our functions. */
function collectTaskStates(
  states: Record<string, Record<string, unknown>>,
  folderByArn: ReadonlyMap<string, FunctionFolder>,
  out: Record<string, FunctionFolder>,
): void {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Task') {
      const parameters = state.Parameters as Record<string, unknown> | undefined;
      const target = typeof parameters?.FunctionName === 'string' ? parameters.FunctionName : state.Resource;
      const folder = typeof target === 'string' ? folderByArn.get(target) : undefined;
      if (folder) out[name] = folder;
    }
    const nested = [
      ...((state.Branches as { States: Record<string, Record<string, unknown>> }[] | undefined) ?? []),
      ...[state.Iterator, state.ItemProcessor].filter((x) => x !== undefined),
    ] as { States: Record<string, Record<string, unknown>> }[];
    for (const machine of nested) collectTaskStates(machine.States, folderByArn, out);
  }
}

interface ResolverContext {
  readonly region: string;
  readonly accountId: string;
  readonly folderByLogicalId: ReadonlyMap<string, FunctionFolder>;
}

/** Resolves the few intrinsics a synthesized definition uses; anything else is an error, not a guess. */
class IntrinsicResolver {
  constructor(private readonly context: ResolverContext) {}

  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((item) => this.resolve(item));
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value);
    const [first] = entries;
    if (entries.length === 1 && first && (first[0] === 'Ref' || first[0].startsWith('Fn::'))) {
      return this.intrinsic(first[0], first[1]);
    }
    return Object.fromEntries(entries.map(([key, item]) => [key, this.resolve(item)]));
  }

  private intrinsic(name: string, argument: unknown): unknown {
    switch (name) {
      case 'Ref':
        return this.ref(String(argument));
      case 'Fn::GetAtt': {
        const [logicalId, attribute] = Array.isArray(argument) ? argument : String(argument).split('.');
        return this.getAtt(String(logicalId), String(attribute));
      }
      case 'Fn::Join': {
        const [separator, parts] = argument as [string, unknown[]];
        return parts.map((part) => String(this.resolve(part))).join(separator);
      }
      case 'Fn::Sub': {
        const [text, variables] = (Array.isArray(argument) ? argument : [argument, {}]) as [
          string,
          Record<string, unknown>,
        ];
        return text.replace(/\$\{([^}!]+)\}/g, (_match, reference: string) => {
          if (reference in variables) return String(this.resolve(variables[reference]));
          const [logicalId, attribute] = reference.split('.');
          return attribute ? this.getAtt(logicalId ?? '', attribute) : this.ref(reference);
        });
      }
      default:
        throw new Error(`cannot resolve ${name} in the state machine definition`);
    }
  }

  private ref(name: string): string {
    switch (name) {
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::Region':
        return this.context.region;
      case 'AWS::AccountId':
        return this.context.accountId;
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
    }
    // A function's Ref is its name, which the placeholder ARN makes the folder name.
    const folder = this.context.folderByLogicalId.get(name);
    if (folder) return folder;
    throw new Error(`cannot resolve Ref ${name} in the state machine definition`);
  }

  private getAtt(logicalId: string, attribute: string): string {
    const folder = this.context.folderByLogicalId.get(logicalId);
    if (folder && attribute === 'Arn') {
      return placeholderFunctionArn(folder, this.context.region, this.context.accountId);
    }
    throw new Error(`cannot resolve Fn::GetAtt ${logicalId}.${attribute} in the state machine definition`);
  }
}
