// GET /network/media/{server}/{mediaId}?expires=&sig=: a pre-signed link to a Matrix medium, served from the homeserver.
import { bytesReply, endpoint, mediaPath } from '../lib/appservice/http.js';
import { getBridge } from '../lib/bridge/runtime.js';
import { serveMediaLink } from '../lib/bridge/media.js';

export const handler = endpoint(
  async (event, { deps: bridge, deadline }) => {
    const { expires, sig } = event.queryStringParameters ?? {};
    const medium = await serveMediaLink(bridge, { ...mediaPath(event.rawPath), expires, sig }, deadline);
    return bytesReply(medium.bytes, {
      'content-type': medium.contentType,
      ...(medium.contentDisposition ? { 'content-disposition': medium.contentDisposition } : {}),
      'cache-control': 'private, max-age=3600',
    });
  },
  { auth: 'none', maxMs: 25_000, deps: getBridge },
);
