// /_matrix/provision/v1/{rooms/{roomId}[/links], links}: the provisioning API (lib/bridge/provisioning.ts), for integration managers and admin tools.
import { endpoint, jsonObjectOf, queryValues } from '../lib/appservice/http.js';
import { presentedToken } from '../lib/appservice/auth.js';
import { getProvisioningDeps, provision } from '../lib/bridge/provisioning.js';

export const handler = endpoint(
  async (event, { deps, deadline }) => {
    const query = queryValues(event);
    const method = event.requestContext.http.method;
    return provision(
      deps,
      { method, path: event.rawPath, token: presentedToken(event), userId: query.user_id?.[0], from: query.from?.[0], json: () => jsonObjectOf(event) },
      deadline,
    );
  },
  { auth: 'none', maxMs: 20_000, deps: getProvisioningDeps },
);
