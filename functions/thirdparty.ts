// GET /_matrix/app/v1/thirdparty/{protocol/{protocol},location[/{protocol}],user[/{protocol}]} (legacy /_matrix/app/unstable/thirdparty/…)
import { endpoint, ok, queryValues, thirdPartyPath } from '../lib/appservice/http.js';
import { getThirdPartyDeps, thirdPartyLookup } from '../lib/bridge/thirdparty.js';

export const handler = endpoint(
  async (event, { deps }) => ok(await thirdPartyLookup(deps, { ...thirdPartyPath(event.rawPath), query: queryValues(event) })),
  { auth: 'hs', maxMs: 20_000, deps: getThirdPartyDeps },
);
