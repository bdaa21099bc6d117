// EventBridge, every 5 minutes: the homeserver pings us through its appservice ping endpoint; the ping alarm watches the result.
import { scheduled } from '../lib/appservice/scheduled.js';
import { pingHomeserver } from '../lib/bridge/ping.js';

export const handler = scheduled(({ config, log, deadline, now }) => pingHomeserver(config, { log, deadline, now }));
