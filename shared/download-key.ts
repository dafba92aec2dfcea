import { BadRequestError } from './errors.ts';

/** A validated download key: path segments only, safe to append to the upstream base URL. */
export interface DownloadKey {
  /** Decoded segments, none empty, none `.` or `..`. */
  segments: readonly string[];
  /** The decoded key, segments joined with `/`. */
  path: string;
  /** Last segment: the file name offered to the client. */
  fileName: string;
}

const MAX_KEY_LENGTH = 1024;
// The key as sent in a URL path: printable ASCII, everything else percent-encoded. A raw non-ASCII
// character was never percent-encoded, so which bytes it stands for is a guess.
const WIRE_FORM = /^[\x21-\x7e]+$/;
// C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
// `scheme:` at the start, e.g. `http:`, `file:`, `javascript:`.
const SCHEME = /^[a-z][a-z0-9+.-]*:/i;
// What is left percent-encoded after one decoding: `%2e`, `%2f`, `%5c` smuggle traversal past
// a server that decodes twice.
const ENCODED_SEPARATOR_OR_DOT = /%(2e|2f|5c|00)/i;

function invalid(message: string): never {
  throw new BadRequestError('InvalidKey', message);
}

/**
 * Validates a download key as it arrives in the request path (still percent-encoded).
 * Refuses anything that is not valid percent-encoding of UTF-8 text (`%zz`, a lone `%`, overlong or
 * truncated sequences, raw non-ASCII characters), decodes it once, then refuses traversal, empty
 * segments, backslashes, schemes and hosts, control characters and double-encoded separators.
 */
export function parseDownloadKey(raw: string | undefined): DownloadKey {
  if (raw === undefined || raw === '')
    invalid('A file key is required after the route, e.g. /stream/reports/2024.csv');
  if (raw.length > MAX_KEY_LENGTH * 3) invalid(`The key is longer than ${MAX_KEY_LENGTH} characters`);
  if (!WIRE_FORM.test(raw)) invalid('The key must be percent-encoded: printable ASCII only');
  let decoded: string;
  try {
    // Throws on a `%` not followed by two hex digits and on bytes that are not valid UTF-8
    // (overlong forms such as `%c0%ae`, surrogates, truncated sequences).
    decoded = decodeURIComponent(raw);
  } catch {
    invalid('The key is not valid percent-encoding of UTF-8 text');
  }
  if (decoded.length > MAX_KEY_LENGTH) invalid(`The key is longer than ${MAX_KEY_LENGTH} characters`);
  if (CONTROL_CHARACTERS.test(decoded)) invalid('The key contains control characters');
  if (decoded.includes('\\')) invalid('The key contains a backslash');
  if (SCHEME.test(decoded)) invalid('The key must be a path, not a URL');
  if (decoded.startsWith('/')) invalid('The key must not start with "/" (no hosts or absolute paths)');
  if (ENCODED_SEPARATOR_OR_DOT.test(decoded)) invalid('The key contains a double-encoded dot or separator');
  const segments = decoded.split('/');
  for (const segment of segments) {
    if (segment === '') invalid('The key contains an empty path segment');
    if (segment === '.' || segment === '..') invalid('The key contains a "." or ".." segment');
  }
  return { segments, path: decoded, fileName: segments[segments.length - 1] as string };
}

/** Builds the upstream URL for a key: base URL + encoded segments + forwarded query. */
export function toUpstreamUrl(baseUrl: URL, key: DownloadKey, query?: URLSearchParams): URL {
  const target = new URL(key.segments.map(encodeURIComponent).join('/'), baseUrl);
  // `new URL` with a relative path cannot escape the base: segments are encoded and never `..`.
  if (query) target.search = query.toString();
  return target;
}
