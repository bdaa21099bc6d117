// POST /_matrix/app/v1/ping: the HS's liveness check. Stateless, so any copy can answer.
import { endpoint, ok } from '../lib/appservice/http.js';

export const handler = endpoint(async () => ok(), { auth: 'hs' });
