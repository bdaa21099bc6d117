// POST /network/{messages,edits,deletions,reactions}: the 3P network's messages and changes to them, signed with NETWORK_SECRET.
import { endpoint, ok, pathId } from '../lib/appservice/http.js';
import { getBridge } from '../lib/bridge/runtime.js';
import { handleFromNetwork } from '../lib/bridge/from-network.js';

export const handler = endpoint(
  async (event, { deps: bridge, deadline }) => {
    const outcome = await handleFromNetwork(bridge, pathId(event.rawPath, 'network'), event.json, deadline);
    return outcome.kind === 'sent' ? ok({ event_id: outcome.eventId }) : ok({ kept: true }, 202);
  },
  { auth: 'network', json: true, maxMs: 20_000, deps: getBridge },
);
