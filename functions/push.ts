// PUT /_matrix/app/v1/transactions/{txnId} (legacy PUT /transactions/{txnId})
import { endpoint, ok, pathId } from '../lib/appservice/http.js';
import { getBridge } from '../lib/bridge/runtime.js';
import { handleTransaction } from '../lib/bridge/transaction.js';

export const handler = endpoint(
  async (event, { deps: bridge, deadline, hardStop }) => {
    await handleTransaction(bridge, pathId(event.rawPath, 'transactions'), event.json, { deadline, hardStop });
    return ok();
  },
  { auth: 'hs', json: true, maxMs: 26_000, deps: getBridge },
);
