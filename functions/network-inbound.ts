// POST /network/messages: the 3P network's messages into Matrix, signed with NETWORK_SECRET.
import { endpoint, ok } from '../lib/appservice/http.js';
import { getBridge } from '../lib/bridge/runtime.js';
import { handleInbound, parseInbound } from '../lib/bridge/inbound.js';

export const handler = endpoint(
  async (event, { deps: bridge, deadline }) => {
    const outcome = await handleInbound(bridge, parseInbound(event.json), deadline);
    return outcome.kind === 'sent' ? ok({ event_id: outcome.eventId }) : ok({ kept: true }, 202);
  },
  { auth: 'network', json: true, maxMs: 20_000, deps: getBridge },
);
