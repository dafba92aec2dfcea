import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { PAGE_CONTENT_SECURITY_POLICY, PAGE_HTML } from '../../dist/page/page.js';

/**
 * The headers of the page: only its own inline script and style run (hashes in the policy), it
 * cannot be framed, and it sends no Referer (the URLs it follows carry download tokens).
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': PAGE_CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/**
 * `GET|HEAD /`: the browser page (web/, bundled by scripts/build-page.mjs into one document). It
 * holds no secret and reads no configuration: it calls the API it was served from.
 */
export async function handler(_event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  return {
    statusCode: 200,
    headers: { ...PAGE_HEADERS },
    // API Gateway (and the local gateway) send no body for HEAD, but keep its Content-Length.
    body: PAGE_HTML,
  };
}
