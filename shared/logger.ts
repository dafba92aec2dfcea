import { Logger } from '@aws-lambda-powertools/logger';

/**
 * Structured JSON logger (Powertools). Level from `POWERTOOLS_LOG_LEVEL` (default INFO); one
 * logger per function, created at module scope.
 */
export function createLogger(serviceName: string): Logger {
  return new Logger({ serviceName, persistentKeys: { app: 'large-downloads' } });
}

export type { Logger };
