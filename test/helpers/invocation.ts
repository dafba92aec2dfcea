import type { StreamingInvocation } from '../../local/runtime-response.ts';

/** What the Runtime API received for one streaming invocation, read to its end as a gateway would. */
export interface ReadInvocation {
  contentType: string | undefined;
  bytes: Buffer;
  bodyError: Error | undefined;
  outcome: Awaited<StreamingInvocation['outcome']>;
}

/** Reads the posted body to its end, then takes the outcome. */
export async function readInvocation(invocation: StreamingInvocation): Promise<ReadInvocation> {
  const response = await invocation.response;
  const chunks: Buffer[] = [];
  let bodyError: Error | undefined;
  if (response) {
    try {
      for await (const chunk of response.body) chunks.push(chunk as Buffer);
    } catch (error) {
      bodyError = error as Error;
    }
  }
  return {
    contentType: response?.contentType,
    bytes: Buffer.concat(chunks),
    bodyError,
    outcome: await invocation.outcome,
  };
}
