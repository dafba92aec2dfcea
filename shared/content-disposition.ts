/** Builds `attachment; filename="…"; filename*=UTF-8''…` so browsers save the right name. */
export function attachmentDisposition(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  const encoded = encodeURIComponent(fileName).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** The file name a `Content-Disposition` header names, if any (prefers `filename*`). */
export function fileNameFromDisposition(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const extended = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
  if (extended?.[1]) {
    try {
      return sanitizeFileName(decodeURIComponent(extended[1].trim()));
    } catch {
      // fall through to the plain parameter
    }
  }
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))/.exec(header);
  const value = plain?.[1] ?? plain?.[2];
  return value ? sanitizeFileName(value.replace(/\\(.)/g, '$1').trim()) : undefined;
}

/** Keeps a file name to one safe path segment. */
export function sanitizeFileName(name: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point.
  const cleaned = name.replace(/[\u0000-\u001f\u007f/\\]/g, '_').trim();
  if (!cleaned || cleaned === '.' || cleaned === '..') return undefined;
  return cleaned.slice(0, 255);
}

/**
 * The name a download is saved under: the one upstream's `Content-Disposition` names, sanitised
 * (whether upstream said `inline` or `attachment`), else the key's last segment.
 */
export function toDownloadFileName(upstreamDisposition: string | undefined, keyFileName: string): string {
  return fileNameFromDisposition(upstreamDisposition) ?? keyFileName;
}
