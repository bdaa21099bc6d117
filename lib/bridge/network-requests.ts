/**
 * What the network sends the AS (POST /network/messages, /edits, /deletions, /reactions, /members,
 * /profile, /rooms/{id}),
 * checked field by field, naming the first bad one (400 M_BAD_JSON), HTML sanitised. Fields the
 * contract does not name are ignored, so a network written for a later contract still gets through.
 */
import { badJson } from '../matrix/errors.js';
import { isUserId } from '../matrix/ids.js';
import type { UserId } from '../matrix/ids.js';
import type { InboundMedia, InboundMembership, InboundMessage } from '../store/index.js';
import { parseMxc } from './media.js';
import { sanitizeFormattedBody } from './sanitize.js';

/**
 * A Matrix event may be at most 64 KiB of JSON (Synapse answers a bigger send with 413
 * M_TOO_LARGE), measured in UTF-8 bytes of the whole event. The content may take 60,000 of
 * them: the rest is headroom for what the homeserver adds around it (event, room and sender
 * IDs, hashes, signatures, prev and auth events).
 */
export const MAX_CONTENT_BYTES = 60_000;
const MAX_MENTIONS = 100;

export const TEXT_MSGTYPES = ['m.text', 'm.notice', 'm.emote'] as const;
export const MEDIA_MSGTYPES = ['m.image', 'm.file', 'm.audio', 'm.video'] as const;
const MSGTYPES = new Set<string>([...TEXT_MSGTYPES, ...MEDIA_MSGTYPES]);

const field = (name: string, problem: string) => badJson(`${name} ${problem}`);
const nonEmptyString = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function id(j: Record<string, unknown>, name: string): string {
  const v = j[name];
  if (!nonEmptyString(v, 255)) throw field(name, 'must be a string of 1 to 255 characters');
  return v;
}

function optionalId(j: Record<string, unknown>, name: string): string | undefined {
  return j[name] === undefined ? undefined : id(j, name);
}

/** A network user as the network names it in a request: its id, and its profile when it says. */
export interface NetworkUser {
  id: string;
  displayName?: string;
  /** An `mxc://` URI the network uploaded the picture to (POST /network/media). */
  avatarUrl?: string;
}

/** id, where (a room, or `to` a Matrix user privately), sender and ts: what every request of the network carries. */
export interface NetworkEnvelope {
  id: string;
  /** Exactly one of `room` (a network room) and `to` (a Matrix user, for a direct chat). */
  room?: string;
  to?: UserId;
  sender: NetworkUser;
  ts: number;
}

/** `{id, displayName?, avatarUrl?}`, checked, under its name in the request. */
export function networkUser(v: unknown, name: string): NetworkUser {
  if (!isObject(v)) throw field(name, 'must be an object {id, displayName?, avatarUrl?}');
  if (!nonEmptyString(v.id, 255)) throw field(`${name}.id`, 'must be a string of 1 to 255 characters');
  const user: NetworkUser = { id: v.id };
  if (v.displayName !== undefined) {
    if (!nonEmptyString(v.displayName, 255)) throw field(`${name}.displayName`, 'must be a string of 1 to 255 characters when given');
    user.displayName = v.displayName;
  }
  if (v.avatarUrl !== undefined) {
    // The AS never fetches a URL it is handed: the network uploads the picture's bytes itself.
    if (!parseMxc(v.avatarUrl)) throw field(`${name}.avatarUrl`, 'must be an mxc:// URI, as POST /network/media answered it (upload the picture\'s bytes there; the AS fetches no URL)');
    user.avatarUrl = v.avatarUrl as string;
  }
  return user;
}

/** `room` (a network room) or `to` (a Matrix user ID, privately): exactly one. */
function where(j: Record<string, unknown>): Pick<NetworkEnvelope, 'room' | 'to'> {
  if ((j.room === undefined) === (j.to === undefined)) throw field('room', 'or to must be given, not both: room for a network room, to (a Matrix user ID) for a private message');
  if (j.room !== undefined) return { room: id(j, 'room') };
  if (typeof j.to !== 'string' || !isUserId(j.to)) throw field('to', 'must be a Matrix user ID (@user:server)');
  return { to: j.to };
}

function envelope(json: unknown): NetworkEnvelope & { j: Record<string, unknown> } {
  if (!isObject(json)) throw badJson('body must be a JSON object');
  const j = json;
  const env = { id: id(j, 'id'), ...where(j), sender: networkUser(j.sender, 'sender'), ts: 0, j };
  if (typeof j.ts !== 'number' || !Number.isSafeInteger(j.ts) || j.ts <= 0) throw field('ts', 'must be a positive whole number of milliseconds since 1970');
  env.ts = j.ts;
  return env;
}

type Text = Pick<InboundMessage, 'msgtype' | 'body' | 'formattedBody' | 'mentions'>;

function text(j: Record<string, unknown>, msgtypes: ReadonlySet<string>): Text {
  const msgtype = j.msgtype ?? 'm.text';
  if (typeof msgtype !== 'string' || !msgtypes.has(msgtype)) throw field('msgtype', `must be one of ${[...msgtypes].join(', ')}`);
  if (typeof j.body !== 'string' || j.body.length === 0) throw field('body', 'must be a non-empty string');
  const t: Text = { msgtype, body: j.body };
  if (j.formattedBody !== undefined) {
    if (typeof j.formattedBody !== 'string' || j.formattedBody.length === 0) throw field('formattedBody', 'must be a non-empty string (HTML) when given');
    // Made safe here, once: what scrollback keeps is clean, and nothing later needs the sanitiser.
    const clean = sanitizeFormattedBody(j.formattedBody);
    // Nothing left that Matrix may show (a script only, say): the plain body alone.
    if (clean.trim()) t.formattedBody = clean;
  }
  if (j.mentions !== undefined) {
    if (!Array.isArray(j.mentions) || j.mentions.length > MAX_MENTIONS) throw field('mentions', `must be an array of at most ${MAX_MENTIONS} {id} or {userId}`);
    t.mentions = j.mentions.map((m: unknown, i) => {
      if (isObject(m) && nonEmptyString(m.id, 255)) return { id: m.id };
      if (isObject(m) && typeof m.userId === 'string' && isUserId(m.userId)) return { userId: m.userId };
      throw field(`mentions[${i}]`, 'must be {"id": "<your user id>"} or {"userId": "@user:server"}');
    });
  }
  return t;
}

const wholeNumber = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function media(j: Record<string, unknown>): InboundMedia {
  const m = j.media;
  if (!isObject(m)) throw field('media', 'must be an object {contentUri, filename?, mimetype?, size?, width?, height?, duration?}');
  if (!parseMxc(m.contentUri)) throw field('media.contentUri', 'must be an mxc:// URI, as POST /network/media answered it');
  const out: InboundMedia = { contentUri: m.contentUri as string };
  for (const k of ['filename', 'mimetype'] as const) {
    if (m[k] === undefined) continue;
    if (!nonEmptyString(m[k], 255)) throw field(`media.${k}`, 'must be a string of 1 to 255 characters when given');
    out[k] = m[k] as string;
  }
  for (const k of ['size', 'width', 'height', 'duration'] as const) {
    if (m[k] === undefined) continue;
    if (!wholeNumber(m[k])) throw field(`media.${k}`, 'must be a whole number when given');
    out[k] = m[k] as number;
  }
  return out;
}

function checkSize(name: string, content: unknown): void {
  const bytes = Buffer.byteLength(JSON.stringify(content), 'utf8');
  if (bytes > MAX_CONTENT_BYTES) {
    throw field(name, `is ${bytes} bytes as Matrix event content (UTF-8 JSON); a Matrix event holds at most ${MAX_CONTENT_BYTES}`);
  }
}

/** POST /network/messages */
export function parseInbound(json: unknown): InboundMessage {
  const { j, ...env } = envelope(json);
  const t = text(j, MSGTYPES);
  const isMedia = (MEDIA_MSGTYPES as readonly string[]).includes(t.msgtype);
  if (isMedia && j.media === undefined) throw field('media', `is required with msgtype ${t.msgtype} (upload with POST /network/media first)`);
  if (!isMedia && j.media !== undefined) throw field('msgtype', `must be one of ${MEDIA_MSGTYPES.join(', ')} when media is given`);
  const m: InboundMessage = { ...env, ...t };
  const replyTo = optionalId(j, 'replyTo');
  if (replyTo !== undefined) m.replyTo = replyTo;
  if (isMedia) m.media = media(j);
  checkSize('body', { msgtype: m.msgtype, body: m.body, formatted_body: m.formattedBody, mentions: m.mentions, media: m.media });
  return m;
}

/** An edit, deletion or reaction: what it is about (`target`, a network message id). */
export interface InboundChange extends NetworkEnvelope {
  target: string;
}

export interface InboundEdit extends InboundChange, Text {}
export interface InboundDeletion extends InboundChange {
  reason?: string;
}
export interface InboundReaction extends InboundChange {
  key: string;
}

/** POST /network/edits: the new text of an earlier message (text msgtypes only). */
export function parseEdit(json: unknown): InboundEdit {
  const { j, ...env } = envelope(json);
  const edit: InboundEdit = { ...env, target: id(j, 'target'), ...text(j, new Set(TEXT_MSGTYPES)) };
  // Sent twice in the event: the "* …" fallback and m.new_content.
  checkSize('body', { body: edit.body, formatted_body: edit.formattedBody, mentions: edit.mentions, again: [edit.body, edit.formattedBody] });
  return edit;
}

/** POST /network/deletions */
export function parseDeletion(json: unknown): InboundDeletion {
  const { j, ...env } = envelope(json);
  const d: InboundDeletion = { ...env, target: id(j, 'target') };
  if (j.reason !== undefined) {
    if (typeof j.reason !== 'string' || j.reason.length > 1000) throw field('reason', 'must be a string of at most 1000 characters when given');
    if (j.reason) d.reason = j.reason;
  }
  return d;
}

/** POST /network/reactions */
export function parseReaction(json: unknown): InboundReaction {
  const { j, ...env } = envelope(json);
  const key = j.key;
  if (!nonEmptyString(key, 255)) throw field('key', 'must be a string of 1 to 255 characters (an emoji, usually)');
  return { ...env, target: id(j, 'target'), key };
}

/**
 * POST /network/members: a network user joined or left a network room. `id` and `ts` are
 * optional (a join or leave is idempotent): they order it among kept messages when the room does
 * not exist yet; the AS gives it the time it came and an id of its own when they are missing.
 */
export function parseMembership(json: unknown, now: number): InboundMembership {
  if (!isObject(json)) throw badJson('body must be a JSON object');
  const j = json;
  const user = networkUser(j.user, 'user');
  const membership = j.membership;
  if (membership !== 'join' && membership !== 'leave') throw field('membership', 'must be "join" or "leave"');
  if (j.ts !== undefined && (typeof j.ts !== 'number' || !Number.isSafeInteger(j.ts) || j.ts <= 0)) throw field('ts', 'must be a positive whole number of milliseconds since 1970 when given');
  const ts = (j.ts as number | undefined) ?? now;
  const m: InboundMembership = { id: optionalId(j, 'id') ?? `${membership}:${ts}:${user.id}`.slice(0, 255), room: id(j, 'room'), user, membership, ts };
  if (j.reason !== undefined) {
    if (typeof j.reason !== 'string' || j.reason.length > 1000) throw field('reason', 'must be a string of at most 1000 characters when given');
    if (j.reason) m.reason = j.reason;
  }
  return m;
}

/** POST /network/profile: a network user's new display name or avatar (at least one). */
export function parseProfile(json: unknown): NetworkUser {
  if (!isObject(json)) throw badJson('body must be a JSON object');
  const user = networkUser(json.user, 'user');
  if (user.displayName === undefined && user.avatarUrl === undefined) throw field('user', 'must give displayName or avatarUrl (or both): what changed');
  return user;
}

/** A network room's name and topic (POST /network/rooms/{id}); an empty string removes it. */
export interface RoomDetails {
  name?: string;
  topic?: string;
}

export function parseRoomDetails(json: unknown): RoomDetails {
  if (!isObject(json)) throw badJson('body must be a JSON object');
  const d: RoomDetails = {};
  if (json.name !== undefined) {
    if (typeof json.name !== 'string' || json.name.length > 255) throw field('name', 'must be a string of at most 255 characters when given ("" removes the name)');
    d.name = json.name;
  }
  if (json.topic !== undefined) {
    if (typeof json.topic !== 'string' || json.topic.length > 4000) throw field('topic', 'must be a string of at most 4000 characters when given ("" removes the topic)');
    d.topic = json.topic;
  }
  if (d.name === undefined && d.topic === undefined) throw badJson('name or topic (or both) must be given: what changed');
  return d;
}
