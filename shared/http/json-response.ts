import type { APIGatewayProxyResult } from 'aws-lambda';
import { PROBLEM_CONTENT_TYPE, toProblem } from '../errors.ts';
import type { Logger } from '../logger.ts';

/** A buffered JSON answer for a REST proxy integration. */
export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  };
}

/** A buffered problem document for any thrown value; logs it first. */
export function problemResponse(error: unknown, logger: Logger): APIGatewayProxyResult {
  const problem = toProblem(error);
  if (problem.status >= 500) logger.error('request failed', { problem, error: error as Error });
  else logger.warn('request refused', { problem });
  return {
    statusCode: problem.status,
    headers: { 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store' },
    body: JSON.stringify(problem),
  };
}
