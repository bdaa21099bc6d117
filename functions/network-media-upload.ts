// POST /network/media?sender=&filename=: the network uploads a medium (raw bytes, signed) as its user; answers its mxc:// URI.
import { endpoint, ok, rawBody } from '../lib/appservice/http.js';
import { getBridge } from '../lib/bridge/runtime.js';
import { parseMediaUpload, uploadMedia } from '../lib/bridge/media.js';

export const handler = endpoint(
  async (event, { deps: bridge, deadline }) => {
    const upload = parseMediaUpload(event.queryStringParameters ?? {}, event.headers?.['content-type'], rawBody(event));
    return ok({ contentUri: await uploadMedia(bridge, upload, deadline) });
  },
  { auth: 'network', maxMs: 20_000, deps: getBridge },
);
