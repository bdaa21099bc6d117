/** The network's routes, as serverless.yml must have them (test/package.test.ts holds it to these; test/routes.test.ts checks each answers). */
export const NETWORK_INBOUND_ROUTES = [
  'POST /network/messages',
  'POST /network/edits',
  'POST /network/deletions',
  'POST /network/reactions',
  'POST /network/members',
  'POST /network/profile',
  'POST /network/rooms/{remoteRoomId+}',
];
export const NETWORK_MEDIA_ROUTES = ['POST /network/media', 'GET /network/media/{server}/{mediaId}'];
