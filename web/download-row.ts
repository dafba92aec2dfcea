import type { Problem } from './api.ts';
import type { ReadyFile, WatchChannel } from './copy-watch.ts';
import { formatBytes, formatDuration, formatRate, RateMeter } from './format.ts';

/** Where a download stands; also the row's `data-state`, which the styles and tests read. */
export type RowState = 'checking' | 'streamed' | 'copying' | 'ready' | 'failed';

const BADGES: Record<'stream' | 'async' | 'pending' | 'refused', string> = {
  stream: 'Streamed',
  async: 'Copy to S3',
  pending: 'Routing',
  refused: 'Refused',
};

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** One download in the list: what the router chose, the copy's progress, the outcome. */
export class DownloadRow {
  readonly element: HTMLLIElement;
  readonly #badge: HTMLSpanElement;
  readonly #route: HTMLParagraphElement;
  readonly #meter: HTMLDivElement;
  readonly #progress: HTMLProgressElement;
  readonly #percent: HTMLSpanElement;
  readonly #figures: HTMLParagraphElement;
  readonly #status: HTMLParagraphElement;
  readonly #problem: HTMLDivElement;
  readonly #actions: HTMLDivElement;
  readonly #rate = new RateMeter();
  readonly #label: string;

  constructor(label: string, onRemove: (row: DownloadRow) => void) {
    this.#label = label;
    const item = element('li', 'download');
    item.setAttribute('aria-label', label);
    const head = element('div', 'download-head');
    this.#badge = element('span', 'badge', BADGES.pending);
    this.#badge.dataset.path = 'pending';
    const title = element('h3', 'download-key', label);
    const remove = element('button', 'icon-button remove', '×');
    remove.type = 'button';
    remove.setAttribute('aria-label', `Remove ${label} from the list`);
    remove.title = 'Remove from the list (stops following the copy)';
    remove.addEventListener('click', () => onRemove(this));
    head.append(title, this.#badge, remove);

    this.#route = element('p', 'route');
    this.#meter = element('div', 'meter');
    this.#progress = element('progress', 'bar');
    this.#progress.setAttribute('aria-label', `Copy of ${label} to S3`);
    this.#percent = element('span', 'percent', '');
    this.#percent.setAttribute('aria-hidden', 'true');
    this.#meter.append(this.#progress, this.#percent);
    this.#meter.hidden = true;
    this.#figures = element('p', 'figures');
    this.#status = element('p', 'status');
    this.#status.setAttribute('role', 'status');
    this.#status.setAttribute('aria-live', 'polite');
    this.#problem = element('div', 'problem');
    this.#problem.setAttribute('role', 'alert');
    this.#problem.hidden = true;
    this.#actions = element('div', 'actions');
    item.append(head, this.#route, this.#meter, this.#figures, this.#status, this.#problem, this.#actions);
    this.element = item;
    this.#setState('checking', 'Asking the router…');
  }

  get state(): RowState {
    return this.element.dataset.state as RowState;
  }

  #setState(state: RowState, status: string): void {
    this.element.dataset.state = state;
    this.#status.textContent = status;
  }

  #setPath(path: 'stream' | 'async' | 'refused', why: string): void {
    this.#badge.dataset.path = path;
    this.#badge.textContent = BADGES[path];
    this.#route.textContent = why;
  }

  /** The router streams it: the browser's download manager fetches it from the API. */
  streamed(size: number | undefined, why: string): void {
    this.#setPath('stream', why);
    this.#figures.textContent = size === undefined ? 'Size not announced' : formatBytes(size);
    this.#setState('streamed', 'Handed to your browser: it shows in the browser’s downloads.');
  }

  /** The router started an async download (202). */
  accepted(downloadId: string, size: number | undefined, why: string): void {
    this.#setPath('async', why);
    this.element.dataset.downloadId = downloadId;
    this.#meter.hidden = false;
    this.#progress.max = size ?? 1;
    if (size === undefined) this.#progress.removeAttribute('value');
    else this.#progress.value = 0;
    this.#percent.textContent = size === undefined ? '' : '0%';
    this.#figures.textContent =
      size === undefined ? 'Waiting for the copy to start' : `0 B of ${formatBytes(size)}`;
    this.#setState('copying', 'Copying to S3…');
  }

  /** How the page follows the copy (WebSocket, reconnecting, polling). */
  channel(channel: WatchChannel, note: string): void {
    this.element.dataset.channel = channel;
    this.#setState('copying', `Copying to S3: ${note}.`);
  }

  progress(bytes: number, totalBytes: number | undefined): void {
    this.#rate.add(bytes);
    const total = totalBytes ?? (this.#progress.max > 1 ? this.#progress.max : undefined);
    const rate = this.#rate.rate;
    const parts: string[] = [];
    if (total !== undefined && total > 0) {
      const percent = Math.min(100, Math.floor((bytes / total) * 100));
      this.#progress.max = total;
      this.#progress.value = Math.min(bytes, total);
      this.#progress.setAttribute(
        'aria-valuetext',
        `${percent}%, ${formatBytes(bytes)} of ${formatBytes(total)}`,
      );
      this.#percent.textContent = `${percent}%`;
      parts.push(`${formatBytes(bytes)} of ${formatBytes(total)}`);
      if (rate && rate > 0 && bytes < total)
        parts.push(`about ${formatDuration((total - bytes) / rate)} left`);
    } else {
      parts.push(formatBytes(bytes));
    }
    if (rate !== undefined) parts.splice(1, 0, formatRate(rate));
    this.#figures.textContent = parts.join(' · ');
  }

  /** The copy is in S3; the browser is fetching the presigned URL. */
  ready(file: ReadyFile, fileName: string): void {
    const size = file.size ?? (this.#progress.max > 1 ? this.#progress.max : undefined);
    if (size !== undefined) {
      this.#progress.max = size;
      this.#progress.value = size;
      this.#progress.setAttribute('aria-valuetext', `100%, ${formatBytes(size)}`);
      this.#percent.textContent = '100%';
      this.#figures.textContent = `${formatBytes(size)} copied`;
    }
    const until = file.expiresAt ? new Date(file.expiresAt) : undefined;
    const link = element('a', 'button-link', 'Save again');
    link.href = file.url;
    link.rel = 'noopener noreferrer';
    link.setAttribute('aria-label', `Save ${this.#label} again from S3`);
    if (until) link.title = `The link works until ${until.toLocaleTimeString()}`;
    this.#actions.replaceChildren(link);
    this.#setState(
      'ready',
      `Ready: your browser is saving ${fileName} from S3${until ? ` (link valid until ${until.toLocaleTimeString()})` : ''}.`,
    );
  }

  failed(problem: Problem): void {
    const title = element('strong', 'problem-title', problem.title);
    const meta = [problem.status, problem.code].filter((part) => part !== undefined).join(' ');
    const nodes: Node[] = [title];
    if (meta) nodes.push(element('span', 'problem-code', meta));
    if (problem.detail) nodes.push(element('p', 'problem-detail', problem.detail));
    this.#problem.replaceChildren(...nodes);
    this.#problem.hidden = false;
    // Refused before any path was taken (a bad key, upstream 404): say so in the badge too.
    const refused = this.#badge.dataset.path === 'pending';
    if (refused) this.#setPath('refused', '');
    this.#setState('failed', refused ? 'The API refused it:' : 'The download failed:');
  }
}
