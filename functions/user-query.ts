// GET /_matrix/app/v1/users/{userId} (legacy GET /users/{userId})
import { endpoint, ok, pathId } from '../lib/appservice/http.js';
import { getBridge } from '../lib/bridge/runtime.js';
import { provisionUser } from '../lib/bridge/provision-user.js';

export const handler = endpoint(
  async (event, { deps: bridge, deadline }) => {
    await provisionUser(bridge, pathId(event.rawPath, 'users'), deadline);
    return ok();
  },
  { auth: 'hs', maxMs: 20_000, deps: getBridge },
);
