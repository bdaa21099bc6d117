// Every route no other function serves: 404 M_UNRECOGNIZED, or 405 for a known path.
import { endpoint } from '../lib/appservice/http.js';
import { unrecognized } from '../lib/appservice/routes.js';

export const handler = endpoint(async (event) => unrecognized(event.requestContext.http.method, event.rawPath), { auth: 'none' });
