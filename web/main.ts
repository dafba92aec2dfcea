import {
  ASYNC_REASONS,
  apiBaseOf,
  askRouter,
  type DownloadKey,
  type DownloadMode,
  ProblemError,
  parseDownloadKey,
  routerUrl,
  saveThroughBrowser,
  startDownload,
} from './api.ts';
import { watchCopy } from './copy-watch.ts';
import { DownloadRow } from './download-row.ts';
import { formatBytes } from './format.ts';

function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const api = apiBaseOf(window.location);
const form = byId<HTMLFormElement>('download-form');
const keyInput = byId<HTMLInputElement>('key');
const keyError = byId<HTMLParagraphElement>('key-error');
const modeSelect = byId<HTMLSelectElement>('mode');
const list = byId<HTMLOListElement>('downloads');
const empty = byId<HTMLParagraphElement>('empty');
byId('api-base').textContent = api.href;

const running = new Map<DownloadRow, AbortController>();

function updateEmpty(): void {
  empty.hidden = list.children.length > 0;
}

function removeRow(row: DownloadRow): void {
  running.get(row)?.abort(new DOMException('removed from the list', 'AbortError'));
  running.delete(row);
  const next = (row.element.nextElementSibling ?? row.element.previousElementSibling) as HTMLElement | null;
  row.element.remove();
  updateEmpty();
  // Keep keyboard users in the list (or send them back to the form).
  (next?.querySelector<HTMLButtonElement>('.remove') ?? keyInput).focus();
}

function streamReason(mode: DownloadMode, size: number | undefined): string {
  if (mode === 'stream') return 'Streaming was asked for: straight from upstream through the API.';
  return size === undefined
    ? 'Streamed straight from upstream through the API.'
    : `${formatBytes(size)} fits the streaming limit: straight from upstream through the API.`;
}

/** One download, start to end: ask the router, then let the browser stream it or follow the copy. */
async function run(row: DownloadRow, key: DownloadKey, mode: DownloadMode, signal: AbortSignal) {
  const url = routerUrl(api, key, mode);
  try {
    const answer = await askRouter(url, signal);
    if (answer.path === 'stream') {
      row.streamed(answer.size, streamReason(mode, answer.size));
      saveThroughBrowser(url.href, answer.fileName ?? key.fileName);
      return;
    }
    // Async, or an error whose problem document only a GET carries.
    const started = await startDownload(url, signal);
    if ('streamed' in started) {
      row.streamed(undefined, streamReason(mode, undefined));
      saveThroughBrowser(url.href, key.fileName);
      return;
    }
    const { accepted } = started;
    const reason = accepted.reason ? (ASYNC_REASONS[accepted.reason] ?? accepted.reason) : 'asynchronous';
    const size = accepted.size === undefined ? '' : `${formatBytes(accepted.size)}: `;
    row.accepted(accepted.downloadId, accepted.size, `${size}${reason}.`);
    const ready = await watchCopy({
      webSocketUrl: accepted.webSocketUrl,
      statusUrl: accepted.statusUrl,
      signal,
      onProgress: (bytes, total) => row.progress(bytes, total),
      onChannel: (channel, note) => row.channel(channel, note),
    });
    row.ready(ready, key.fileName);
    saveThroughBrowser(ready.url);
  } catch (error) {
    if (signal.aborted) return;
    row.failed(
      error instanceof ProblemError
        ? error.problem
        : { title: 'Something went wrong in the page', detail: String(error) },
    );
  } finally {
    running.delete(row);
  }
}

function start(raw: string): boolean {
  const key = parseDownloadKey(raw);
  if (!key) {
    keyInput.setAttribute('aria-invalid', 'true');
    keyError.hidden = false;
    keyInput.focus();
    return false;
  }
  keyInput.removeAttribute('aria-invalid');
  keyError.hidden = true;
  const mode = modeSelect.value as DownloadMode;
  const row = new DownloadRow(mode === 'auto' ? key.raw : `${key.raw} (${mode})`, removeRow);
  const controller = new AbortController();
  running.set(row, controller);
  list.prepend(row.element);
  updateEmpty();
  void run(row, key, mode, controller.signal);
  return true;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (start(keyInput.value)) keyInput.select();
});

for (const preset of document.querySelectorAll<HTMLButtonElement>('button[data-key]')) {
  preset.addEventListener('click', () => {
    const key = preset.dataset.key ?? '';
    keyInput.value = key;
    start(key);
  });
}

keyInput.addEventListener('input', () => {
  if (keyInput.value.trim() !== '') {
    keyInput.removeAttribute('aria-invalid');
    keyError.hidden = true;
  }
});

updateEmpty();
