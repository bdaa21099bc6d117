/**
 * Media through the AS, both ways, within Lambda's limits. The AS never fetches a URL it was
 * handed: the network uploads bytes (POST /network/media), and fetches Matrix media through
 * the AS's own pre-signed link (GET /network/media/{server}/{mediaId}), which downloads from the
 * homeserver with the as_token (spec v1.11 authenticated media; the legacy path where the
 * homeserver has no such endpoint).
 */
import { MESSAGES } from '../defaults.js';
import { ErrCode, MatrixError, forbidden, invalidParam, notFound, tooLarge } from '../matrix/errors.js';
import { signLink, verifyLink } from '../signature.js';
import type { Bridge } from './runtime.js';
import { ensureVirtualUser } from './provision-user.js';
import type { OutboundAvatar, OutboundMedia } from './network.js';

const MXC = /^mxc:\/\/([A-Za-z0-9.:\-[\]]+)\/([A-Za-z0-9_-]+)$/;

/** `mxc://server/mediaId`, or undefined for anything else (the spec's grammar for both parts). */
export function parseMxc(uri: unknown): { server: string; mediaId: string } | undefined {
  const m = typeof uri === 'string' ? MXC.exec(uri) : null;
  return m ? { server: m[1]!, mediaId: m[2]! } : undefined;
}

const resourceOf = (server: string, mediaId: string) => `${server}/${mediaId}`;

/** `type/subtype` and parameters, in printable ASCII: what an HTTP header may carry on. */
const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;[\x20-\x7e]*)?$/;

/** Both parts of an mxc URI by the spec's grammar; `.` and `..` would walk the homeserver's paths. */
const isMediaResource = (server: string, mediaId: string) => parseMxc(`mxc://${server}/${mediaId}`) !== undefined && !/^\.+$/.test(server);

/** What the link settings need: the AS's public URL and the secret to sign with. */
type LinkSettings = { asUrl?: string; secret?: string; linkHours: number };

export const linkSettings = (b: Pick<Bridge, 'config'>): LinkSettings => ({
  asUrl: b.config.asUrl,
  secret: b.config.network.secret,
  linkHours: b.config.messages.mediaLinkHours,
});

/** The pre-signed link through which the network fetches a Matrix medium; undefined without a public URL or a secret. */
export function mediaLink(s: LinkSettings, server: string, mediaId: string, now: number): string | undefined {
  if (!s.asUrl || !s.secret) return undefined;
  const expires = Math.floor(now / 1000) + s.linkHours * 3600;
  const sig = signLink(s.secret, resourceOf(server, mediaId), expires);
  return `${s.asUrl}/network/media/${encodeURIComponent(server)}/${encodeURIComponent(mediaId)}?expires=${expires}&sig=${sig}`;
}

/** A Matrix user's avatar (`avatar_url` of their member event), as the network gets it; undefined for none or a broken URI. */
export function outboundAvatar(s: LinkSettings, avatarUrl: unknown, now: number): OutboundAvatar | undefined {
  const mxc = parseMxc(avatarUrl);
  if (!mxc) return undefined;
  const url = mediaLink(s, mxc.server, mxc.mediaId, now);
  return { mxc: avatarUrl as string, ...(url ? { url } : {}) };
}

const num = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v.slice(0, 255) : undefined);

/** A Matrix event's medium (`url` and `info`), as the network gets it; undefined when there is none (an encrypted `file`, a broken URL). */
export function outboundMedia(s: LinkSettings, content: Record<string, unknown>, now: number): OutboundMedia | undefined {
  const mxc = parseMxc(content.url);
  if (!mxc) return undefined;
  const info = (typeof content.info === 'object' && content.info !== null ? content.info : {}) as Record<string, unknown>;
  const size = num(info.size);
  const tooBig = size !== undefined && size > MESSAGES.MEDIA_MAX_BYTES;
  const url = tooBig ? undefined : mediaLink(s, mxc.server, mxc.mediaId, now);
  const media: OutboundMedia = { mxc: content.url as string };
  const fields: Partial<OutboundMedia> = {
    url,
    filename: str(content.filename) ?? str(content.body),
    mimetype: str(info.mimetype),
    size,
    width: num(info.w),
    height: num(info.h),
    duration: num(info.duration),
  };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) (media as unknown as Record<string, unknown>)[k] = v;
  if (tooBig) media.tooLarge = true;
  return media;
}

export interface MediaAnswer {
  bytes: Buffer;
  contentType: string;
  contentDisposition?: string;
}

/** Serves a pre-signed link: the medium's bytes from the homeserver, or a Matrix error saying why not. */
export async function serveMediaLink(
  b: Bridge,
  link: { server: string; mediaId: string; expires?: string; sig?: string },
  deadline: number,
): Promise<MediaAnswer> {
  const secrets = b.config.network.acceptedSecrets;
  if (secrets.length === 0) throw forbidden('media links are disabled: NETWORK_SECRET is not configured');
  const check = verifyLink(resourceOf(link.server, link.mediaId), link.expires, link.sig, secrets, b.now());
  if (!check.ok) throw forbidden(check.reason);
  // Signed, yet not a medium's name (only a holder of the secret could make such a link).
  if (!isMediaResource(link.server, link.mediaId)) throw notFound(`${link.server}/${link.mediaId} is not an mxc:// medium`);
  const got = await b.cs.downloadMedia(link.server, link.mediaId, { deadline, maxBytes: MESSAGES.MEDIA_MAX_BYTES });
  if (got.kind === 'ok') return got;
  if (got.kind === 'tooLarge') {
    const size = got.exact ? `${got.size} bytes` : `over ${MESSAGES.MEDIA_MAX_BYTES} bytes`;
    throw new MatrixError(413, ErrCode.TooLarge, `the medium is ${size}; the AS passes at most ${MESSAGES.MEDIA_MAX_BYTES} (Lambda's response limit)`, {
      size: got.size,
      limit: MESSAGES.MEDIA_MAX_BYTES,
    });
  }
  if (got.status === 404) throw notFound(`the homeserver has no medium ${link.server}/${link.mediaId}`);
  b.log.warn('the homeserver did not give a medium', { server: link.server, mediaId: link.mediaId, status: got.status, errcode: got.errcode, error: got.error });
  throw new MatrixError(502, ErrCode.Unknown, `the homeserver answered ${got.status || 'nothing'} (${got.errcode}): ${got.error}`);
}

export interface MediaUpload {
  /** The network user it comes from: uploaded as that virtual user. */
  sender: string;
  filename?: string;
  contentType: string;
  bytes: Buffer;
}

/** Checks an upload's query and size, naming what is wrong. */
export function parseMediaUpload(query: Record<string, string | undefined>, contentType: string | undefined, bytes: Buffer): MediaUpload {
  const sender = query.sender;
  if (!sender || sender.length > 255) throw invalidParam('sender (query) must be your user id, 1 to 255 characters');
  const filename = query.filename;
  if (filename !== undefined && (filename.length === 0 || filename.length > 255)) throw invalidParam('filename (query) must be 1 to 255 characters when given');
  if (bytes.length === 0) throw invalidParam('the body must hold the medium\'s bytes');
  if (bytes.length > MESSAGES.MEDIA_MAX_BYTES) throw tooLarge(`the medium is ${bytes.length} bytes; the AS takes at most ${MESSAGES.MEDIA_MAX_BYTES}`);
  // It goes on to the homeserver as a header: a value no header may hold would fail there, every time.
  if (contentType && !MEDIA_TYPE.test(contentType)) throw invalidParam('content-type must be a media type (type/subtype, printable ASCII)');
  return { sender, filename, contentType: contentType || 'application/octet-stream', bytes };
}

/** Uploads a network user's medium to the homeserver as their virtual user: its mxc URI. */
export async function uploadMedia(b: Bridge, u: MediaUpload, deadline: number): Promise<string> {
  let userId;
  try {
    userId = b.ns.userIdFor(u.sender);
  } catch (e) {
    if (e instanceof RangeError) throw invalidParam(`sender makes a Matrix ID over 255 bytes: ${e.message}`);
    throw e;
  }
  // Registered once, with the name it has; an upload does not rename anyone.
  if (!b.knownUsers.has(userId) && !(await b.store.getUser(userId))) await ensureVirtualUser(b, userId, { displayName: u.sender }, deadline);
  const { content_uri } = await b.cs.uploadMedia(u.bytes, u.contentType, u.filename, { deadline, asUser: userId });
  return content_uri;
}
