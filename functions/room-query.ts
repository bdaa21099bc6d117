// GET /_matrix/app/v1/rooms/{roomAlias} (legacy GET /rooms/{roomAlias})
import { endpoint, ok, pathId } from '../lib/appservice/http.js';
import { getBridge } from '../lib/bridge/runtime.js';
import { provisionRoom } from '../lib/bridge/provision-room.js';

export const handler = endpoint(
  async (event, { deps: bridge, deadline }) => {
    await provisionRoom(bridge, pathId(event.rawPath, 'rooms'), deadline);
    return ok();
  },
  { auth: 'hs', maxMs: 20_000, deps: getBridge },
);
