// POST /network/{messages,edits,deletions,reactions,members,profile} and /network/rooms/{id}: what the 3P network sends, signed with NETWORK_SECRET.
import { endpoint, ok, pathId } from '../lib/appservice/http.js';
import { getBridge } from '../lib/bridge/runtime.js';
import { handleFromNetwork } from '../lib/bridge/from-network.js';

export const handler = endpoint(
  async (event, { deps: bridge, deadline }) => {
    const outcome = await handleFromNetwork(bridge, pathId(event.rawPath, 'network'), event.json, deadline);
    if (outcome.kind === 'sent') return ok({ event_id: outcome.eventId });
    return outcome.kind === 'kept' ? ok({ kept: true }, 202) : ok(outcome.answer);
  },
  { auth: 'network', json: true, maxMs: 20_000, deps: getBridge },
);
