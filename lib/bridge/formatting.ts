/**
 * Formatted text, Matrix → network: a Matrix client's HTML (`org.matrix.custom.html`) goes to
 * the network as it is, beside the plain body, with the reply fallback taken out of both (the
 * network gets the reply as a reference instead) and the mentions listed with the network's own
 * ids. The other way, the network's HTML is sanitised where it comes in (sanitize.ts).
 */
import type { Namespaces } from '../matrix/namespaces.js';
import type { Mention } from './network.js';

export const HTML_FORMAT = 'org.matrix.custom.html';

/**
 * The reply fallback a client put before a reply's text (spec: "Fallbacks for rich replies"):
 * `> <@alice:hs> quoted` lines and the blank line after them in `body`, `<mx-reply>…</mx-reply>`
 * in `formatted_body`. Only a reply's: other messages may start with a quote of their own.
 */
export function stripReplyFallback(body: string, formattedBody: string | undefined): { body: string; formattedBody?: string } {
  const lines = body.split('\n');
  let i = 0;
  while (i < lines.length && lines[i]!.startsWith('>')) i++;
  const plain = i > 0 && i < lines.length && lines[i] === '' ? lines.slice(i + 1).join('\n') : body;
  const html = formattedBody?.replace(/^\s*<mx-reply>[\s\S]*?<\/mx-reply>/i, '');
  return html === undefined ? { body: plain } : { body: plain, formattedBody: html };
}

const PILL = /href=["']https:\/\/matrix\.to\/#\/([^"'?]+)/g;
const USER_ID = /^@[^:]+:.+$/;

/**
 * Who a Matrix message mentions: `m.mentions.user_ids` (spec v1.7), and for older clients the
 * user pills (`https://matrix.to/#/@user:hs` links) in its HTML. Network users get their id.
 */
export function mentionsOf(ns: Namespaces, content: Record<string, unknown>): Mention[] | undefined {
  const ids = new Set<string>();
  const declared = (content['m.mentions'] as { user_ids?: unknown } | undefined)?.user_ids;
  if (Array.isArray(declared)) for (const u of declared) if (typeof u === 'string') ids.add(u);
  if (typeof content.formatted_body === 'string') {
    for (const m of content.formatted_body.matchAll(PILL)) {
      try {
        const id = decodeURIComponent(m[1]!);
        if (USER_ID.test(id)) ids.add(id);
      } catch {
        // a pill with a broken escape names nobody
      }
    }
  }
  if (ids.size === 0) return undefined;
  return [...ids].slice(0, 100).map((userId) => {
    const id = ns.isVirtualUser(userId) ? ns.remoteUserOf(userId) : undefined;
    return id === undefined ? { userId } : { userId, id };
  });
}
