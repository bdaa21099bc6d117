/** The network the configuration names (NETWORK): the embedded `open` one, or a webhook network. */
import type { Config } from '../../config.js';
import type { Logger } from '../../log.js';
import type { NetworkPort } from '../network.js';
import { openNetwork } from './open.js';
import { webhookNetwork } from './webhook.js';

export function networkFor(settings: Config['network'], log: Logger): NetworkPort {
  return settings.kind === 'webhook' ? webhookNetwork(settings) : openNetwork(log);
}
