/**
 * The fake network's side of linking a Matrix room to a network room (test/support/fake-network.ts):
 * `POST /links` (may the link be made?) and `POST /unlinks` (told after an unlink), signed with
 * X-Signature as the deliveries are, over real HTTP.
 */
import { after, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeNetwork } from './support/fake-network.js';
import type { FakeNetwork } from './support/fake-network.js';

// Independent of docs/network-api.yaml, which may not describe /links and /unlinks yet.
const net = await startFakeNetwork({ checkSpec: false });
after(() => net.close());
beforeEach(() => {
  net.acceptedLinks.length = 0;
  net.acceptedUnlinks.length = 0;
  net.received.length = 0;
  net.clearLinkRefusals();
  delete net.onLink;
});

const LINK = { room: '#matrix', matrixRoomId: '!abc:example.org', requestedBy: '@alice:example.org' };

async function post(path: string, body: unknown, o: { on?: FakeNetwork; signature?: string | null; signal?: AbortSignal } = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const on = o.on ?? net;
  const text = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const signature = o.signature === undefined ? on.sign(text) : o.signature;
  if (signature !== null) headers['x-signature'] = signature;
  const init: RequestInit = { method: 'POST', headers, body: text };
  if (o.signal) init.signal = o.signal;
  const res = await fetch(on.url + path, init);
  return { status: res.status, json: await res.json(), headers: res.headers };
}

describe('fake network: POST /links and POST /unlinks', () => {
  it('approves both by default (200 {}), recording {room, matrixRoomId, requestedBy} and the request', async () => {
    const r = await post('/links', { ...LINK, extra: 'ignored' });
    assert.deepEqual([r.status, r.json], [200, {}]);
    assert.deepEqual(net.acceptedLinks, [LINK]);
    const u = await post('/unlinks', LINK);
    assert.deepEqual([u.status, u.json], [200, {}]);
    assert.deepEqual(net.acceptedUnlinks, [LINK]);
    assert.deepEqual(net.received.map((rec) => [rec.method, rec.path, rec.link, rec.kind, rec.status]), [
      ['POST', '/links', 'links', undefined, 200],
      ['POST', '/unlinks', 'unlinks', undefined, 200],
    ]);
  });

  it('refuseLinks: only that network room, or every one with *, with the status and {"error": reason}; clearLinkRefusals', async () => {
    net.refuseLinks('#matrix', 403, 'Only channel operators may link #matrix');
    const refused = await post('/links', LINK);
    assert.deepEqual([refused.status, refused.json], [403, { error: 'Only channel operators may link #matrix' }]);
    assert.equal((await post('/links', { ...LINK, room: '#other' })).status, 200);
    net.refuseLinks('*', 409, 'Linking is closed');
    assert.deepEqual((await post('/links', { ...LINK, room: '#third' })).json, { error: 'Linking is closed' });
    assert.deepEqual((await post('/links', LINK)).json, { error: 'Only channel operators may link #matrix' }, "a room's own refusal wins");
    assert.equal((await post('/unlinks', LINK)).status, 200, 'unlinks are never refused');
    net.clearLinkRefusals();
    assert.equal((await post('/links', LINK)).status, 200);
    assert.deepEqual(net.acceptedLinks.map((l) => l.room), ['#other', '#matrix']);
    assert.throws(() => net.refuseLinks('#matrix', 500, 'x'), /4xx/);
  });

  it('checks the signature as for deliveries: none 401, a wrong one 403, nothing recorded', async () => {
    assert.equal((await post('/links', LINK, { signature: null })).status, 401);
    assert.equal((await post('/links', LINK, { signature: net.sign('{"other":"body"}') })).status, 403);
    assert.equal((await post('/unlinks', LINK, { signature: null })).status, 401);
    assert.deepEqual([net.acceptedLinks, net.acceptedUnlinks], [[], []]);
  });

  it('onLink: failures on demand (503 with Retry-After, then approved on the second attempt; a hang)', async () => {
    // attempts count per kind, network room and Matrix room, for the fake's life: a room of its own
    const retried = { ...LINK, room: '#retried' };
    net.onLink = (_body, attempt, kind) => (kind === 'links' && attempt === 1 ? { status: 503, retryAfter: 2 } : undefined);
    const first = await post('/links', retried);
    assert.deepEqual([first.status, first.headers.get('retry-after')], [503, '2']);
    assert.deepEqual(net.acceptedLinks, []);
    assert.equal((await post('/links', retried)).status, 200);
    assert.deepEqual(net.acceptedLinks, [retried]);
    net.onLink = (_body, _attempt, kind) => (kind === 'unlinks' ? { hang: true } : undefined);
    await assert.rejects(post('/unlinks', LINK, { signal: AbortSignal.timeout(100) }));
    assert.deepEqual(net.acceptedUnlinks, []);
  });

  it('a malformed body is 400 {"error"}, and a problem in specErrors when checking', async () => {
    const checking = await startFakeNetwork();
    try {
      const r = await post('/links', { room: '#matrix', matrixRoomId: '#alias:example.org' }, { on: checking });
      assert.equal(r.status, 400);
      assert.match(r.json.error, /matrixRoomId must be a Matrix room ID.*requestedBy must be a Matrix user ID/);
      assert.deepEqual(checking.acceptedLinks, []);
      const mine = checking.specErrors.filter((e) => e.startsWith('POST /links: ') && /must be/.test(e));
      assert.deepEqual(mine, ['POST /links: matrixRoomId must be a Matrix room ID (!…)', 'POST /links: requestedBy must be a Matrix user ID (@user:server)']);
    } finally {
      await checking.close();
    }
  });
});
