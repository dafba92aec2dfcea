import type { APIGatewayProxyEvent, LambdaFunctionURLEvent } from 'aws-lambda';

/** The parts of an HTTP request the functions use, whatever event shape carried it. */
export interface HttpRequest {
  /** Upper-case method. */
  method: string;
  /**
   * Path parameters, percent-encoded as they were on the wire (`key` holds the download key), not
   * yet validated: whoever reads one decodes it once and refuses invalid percent-encoding.
   */
  pathParameters: Readonly<Record<string, string>>;
  query: URLSearchParams;
  /** Lower-case names. */
  headers: Readonly<Record<string, string>>;
  requestId: string;
  /** `https://host/stage` the client called, to build absolute links; no trailing slash. */
  baseUrl: string;
}

/** Either event shape that reaches the HTTP functions. */
export type HttpEvent = APIGatewayProxyEvent | LambdaFunctionURLEvent;

/** True for a Function URL (payload v2) event. */
export function isFunctionUrlEvent(event: HttpEvent): event is LambdaFunctionURLEvent {
  return (event as LambdaFunctionURLEvent).version === '2.0';
}

function lowerCaseHeaders(
  headers: Record<string, string | undefined> | null | undefined,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value !== undefined) result[name.toLowerCase()] = value;
  }
  return result;
}

function originOf(headers: Record<string, string>, domainName: string | undefined): string {
  const proto = headers['x-forwarded-proto']?.split(',')[0]?.trim() || 'https';
  const host = headers.host ?? domainName ?? 'localhost';
  return `${proto}://${host}`;
}

function fromRestEvent(event: APIGatewayProxyEvent): HttpRequest {
  const headers = lowerCaseHeaders(event.headers);
  for (const [name, values] of Object.entries(event.multiValueHeaders ?? {})) {
    if (values && values.length > 1) headers[name.toLowerCase()] = values.join(', ');
  }
  const query = new URLSearchParams();
  const multi = event.multiValueQueryStringParameters;
  if (multi) {
    for (const [name, values] of Object.entries(multi))
      for (const value of values ?? []) query.append(name, value);
  } else {
    for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
      if (value !== undefined) query.append(name, value);
    }
  }
  // REST APIs hand over path parameters as the client sent them, still percent-encoded (like
  // `path`; HTTP APIs are the ones that decode): taken as they are, both event shapes reach the key
  // parser in wire form, and an invalid escape such as `%zz` reaches it too, to be refused. Encoding
  // them again would turn `%zz` into a valid `%25zz` and `%20` into a literal `%20`.
  const pathParameters: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.pathParameters ?? {})) {
    if (value !== undefined) pathParameters[name] = value;
  }
  // requestContext.path carries the stage (or custom-domain base path); event.path does not.
  const fullPath = event.requestContext.path ?? event.path;
  const basePath = fullPath.endsWith(event.path)
    ? fullPath.slice(0, fullPath.length - event.path.length)
    : '';
  return {
    method: event.httpMethod.toUpperCase(),
    pathParameters,
    query,
    headers,
    requestId: event.requestContext.requestId,
    baseUrl: `${originOf(headers, event.requestContext.domainName)}${basePath}`,
  };
}

function fromFunctionUrlEvent(event: LambdaFunctionURLEvent): HttpRequest {
  const headers = lowerCaseHeaders(event.headers);
  const rawPath = event.rawPath || '/';
  return {
    method: event.requestContext.http.method.toUpperCase(),
    // A Function URL has no routes: the whole path is the key, as `/{key+}` would be.
    pathParameters: rawPath.length > 1 ? { key: rawPath.slice(1) } : {},
    query: new URLSearchParams(event.rawQueryString ?? ''),
    headers,
    requestId: event.requestContext.requestId,
    baseUrl: originOf(headers, event.requestContext.domainName),
  };
}

/** Converts a REST proxy (v1) or Function URL (v2) event into an `HttpRequest`. */
export function toHttpRequest(event: HttpEvent): HttpRequest {
  return isFunctionUrlEvent(event) ? fromFunctionUrlEvent(event) : fromRestEvent(event);
}
