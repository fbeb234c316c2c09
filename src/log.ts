import winston from 'winston';

export type Logger = winston.Logger;

const LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'];

/** The level named by LOG_LEVEL, or `info` when it is unset or not a winston level. */
export function levelFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const wanted = (env.LOG_LEVEL ?? '').trim().toLowerCase();
  return LEVELS.includes(wanted) ? wanted : 'info';
}

/**
 * Structured JSON logs, one object per line. The plugin logs to stdout (dockerd collects it);
 * other callers may pass another stream (the runtime wrapper never uses stdout).
 */
export function createLogger(
  options: { level?: string; stream?: NodeJS.WritableStream; silent?: boolean } = {},
): Logger {
  return winston.createLogger({
    level: options.level ?? levelFromEnv(),
    silent: options.silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream: options.stream ?? process.stdout })],
  });
}
