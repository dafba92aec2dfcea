import { detailedLog, type LocalLog } from './lambda-service.ts';

/** An event as EventBridge delivers it (`source`, `detail-type`, `detail`, …). */
export type LocalEvent = object;

/**
 * An EventBridge event pattern in its JSON form: every field names the values the event's field may
 * have (an array of exact values), or is itself a pattern for a nested object. The content filters
 * (`prefix`, `anything-but`, `numeric`, …) are left out: no rule of the stack uses them.
 */
export interface LocalEventPattern {
  readonly [field: string]: readonly unknown[] | LocalEventPattern;
}

/** One rule of the bus: events matching `pattern` go to `target`. */
export interface LocalEventRule {
  name: string;
  pattern: LocalEventPattern;
  /** Delivers one event; EventBridge invokes Lambda targets asynchronously, so should this. */
  target: (event: LocalEvent) => Promise<void>;
}

export interface LocalEventBus {
  /** Puts an event on the bus: every matching rule's target gets it, in the background. */
  put(event: LocalEvent): void;
  /** Resolves once every delivery handed to a target so far has been handed over. */
  idle(): Promise<void>;
}

/** True when `event` has every field `pattern` names, each with one of the values it lists. */
export function matchesEventPattern(pattern: LocalEventPattern, event: unknown): boolean {
  if (typeof event !== 'object' || event === null) return false;
  const fields = event as Record<string, unknown>;
  return Object.entries(pattern).every(([field, expected]) => {
    const actual = fields[field];
    if (!Array.isArray(expected)) return matchesEventPattern(expected as LocalEventPattern, actual);
    // A pattern's array matches a scalar equal to one of its values, or an array sharing one.
    return Array.isArray(actual)
      ? actual.some((value) => expected.includes(value))
      : expected.includes(actual);
  });
}

/**
 * A minimal local EventBridge default bus: rules with exact-value patterns, targets called in the
 * background (a target's failure is logged; retries are the target's business, as Lambda's async
 * invocation retries are).
 */
export function createEventBus(options: { rules: LocalEventRule[]; log?: LocalLog }): LocalEventBus {
  const log = detailedLog(options.log);
  const pending = new Set<Promise<void>>();
  return {
    put(event) {
      for (const rule of options.rules) {
        if (!matchesEventPattern(rule.pattern, event)) continue;
        log('events: delivering', { rule: rule.name });
        const delivery = rule
          .target(event)
          .catch((error: unknown) =>
            log('events: delivery failed', { rule: rule.name, error: String(error) }),
          )
          .finally(() => pending.delete(delivery));
        pending.add(delivery);
      }
    },
    async idle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
