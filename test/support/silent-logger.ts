import { createLogger } from '../../src/log.js';

export const silentLogger = () => createLogger({ silent: true });
