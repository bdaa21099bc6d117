/**
 * A Matrix event as the network gets it: which delivery (message, edit, deletion, reaction) and
 * its body. References to other messages carry the Matrix event ID only here; the deliver
 * function adds the network's own id when it sends them (deliver.ts), since the message they
 * refer to may only just have been delivered itself, in the same room's order.
 */
import type { BridgedRoom } from '../store/index.js';
import type { Namespaces } from '../matrix/namespaces.js';
import { HTML_FORMAT, mentionsOf, stripReplyFallback } from './formatting.js';
import { outboundAvatar, outboundMedia } from './media.js';
import type { linkSettings } from './media.js';
import type { Delivery, MessageText, OutboundMessage, OutboundMembership, OutboundUser, Where } from './network.js';
import type { RoomEvent } from './events/types.js';

/** What turning events into deliveries needs: the namespaces (mentions), the media link settings, the time. */
export interface OutboundContext {
  ns: Namespaces;
  links: ReturnType<typeof linkSettings>;
  now: number;
}

const MEDIA_MSGTYPES = new Set(['m.image', 'm.file', 'm.audio', 'm.video']);

const relatesTo = (content: Record<string, unknown>) =>
  (typeof content['m.relates_to'] === 'object' && content['m.relates_to'] !== null ? content['m.relates_to'] : {}) as Record<string, unknown>;

/** Where the room is on the network: a network room, or the private conversation of a direct chat. */
export const whereOf = (room: BridgedRoom): Where => (room.kind === 'direct' ? { direct: { with: room.remoteUser } } : { room: room.remoteRoom });

const base = (e: RoomEvent, room: BridgedRoom) => ({ id: e.event_id, ...whereOf(room), sender: { userId: e.sender }, ts: e.origin_server_ts });

/** The event a message replies to, if it is a reply. */
export function replyTarget(content: Record<string, unknown>): string | undefined {
  const id = (relatesTo(content)['m.in_reply_to'] as { event_id?: unknown } | undefined)?.event_id;
  return typeof id === 'string' ? id : undefined;
}

/** The text of a message's content; undefined when it has no plain body. */
function textOf(ns: Namespaces, content: Record<string, unknown>, msgtype: string, isReply: boolean): MessageText | undefined {
  if (typeof content.body !== 'string') return undefined;
  const html = content.format === HTML_FORMAT && typeof content.formatted_body === 'string' ? content.formatted_body : undefined;
  const { body, formattedBody } = isReply ? stripReplyFallback(content.body, html) : { body: content.body, formattedBody: html };
  const text: MessageText = { msgtype, body };
  if (formattedBody !== undefined) text.formattedBody = formattedBody;
  const mentions = mentionsOf(ns, content);
  if (mentions) text.mentions = mentions;
  return text;
}

/** The delivery an event makes, or undefined when it makes none (a malformed or unknown shape). */
export function deliveryOf(c: OutboundContext, e: RoomEvent, room: BridgedRoom): Delivery | undefined {
  const rel = relatesTo(e.content);
  switch (e.type) {
    case 'm.room.message': {
      if (rel.rel_type === 'm.replace' && typeof rel.event_id === 'string') {
        // An edit: the new content is `m.new_content` (the top-level body is the "* …" fallback).
        const next = e.content['m.new_content'] as Record<string, unknown> | undefined;
        if (!next || typeof next !== 'object' || typeof next.msgtype !== 'string') return undefined;
        const text = textOf(c.ns, next, next.msgtype, false);
        return text && { kind: 'edits', body: { ...base(e, room), target: { eventId: rel.event_id }, ...text } };
      }
      if (typeof e.content.msgtype !== 'string') return undefined;
      return messageOf(c, e, room, e.content.msgtype);
    }
    case 'm.sticker':
      return messageOf(c, e, room, 'm.sticker');
    case 'm.reaction': {
      if (rel.rel_type !== 'm.annotation' || typeof rel.event_id !== 'string' || typeof rel.key !== 'string') return undefined;
      return { kind: 'reactions', body: { ...base(e, room), target: { eventId: rel.event_id }, key: rel.key } };
    }
    case 'm.room.redaction': {
      // Room versions up to 10 put `redacts` on the event, version 11 in its content.
      const target = e.redacts ?? e.content.redacts;
      if (typeof target !== 'string') return undefined;
      const reason = typeof e.content.reason === 'string' ? e.content.reason : undefined;
      return { kind: 'deletions', body: { ...base(e, room), target: { eventId: target }, ...(reason ? { reason } : {}) } };
    }
    case 'm.room.member':
      return membershipOf(c, e, room);
  }
  return undefined;
}

const stringOr = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

/** The user a member event is about, with the profile it gives them: display name and avatar. */
function userOf(c: OutboundContext, userId: string, content: Record<string, unknown>): OutboundUser {
  const displayName = stringOr(content.displayname);
  const avatar = outboundAvatar(c.links, content.avatar_url, c.now);
  return { userId, ...(displayName ? { displayName } : {}), ...(avatar ? { avatar } : {}) };
}

/**
 * A Matrix user's membership in a network room, as the network sees people come and go: joins,
 * leaves, kicks and bans (not invites, knocks, or their withdrawal), and profile changes: a new
 * display name or avatar (a join over a join, told apart by the homeserver's
 * `unsigned.prev_content`). Direct chats have no network room: their Matrix side ends them
 * (member.ts) instead.
 */
function membershipOf(c: OutboundContext, e: RoomEvent, room: BridgedRoom): Delivery | undefined {
  if (room.kind === 'direct' || e.state_key === undefined) return undefined;
  const membership = e.content.membership;
  const before = e.unsigned?.prev_content;
  const was = typeof before?.membership === 'string' ? before.membership : undefined;
  if (membership === 'join' && was === 'join') {
    const previousDisplayName = stringOr(before?.displayname);
    const unchanged = stringOr(e.content.displayname) === previousDisplayName && stringOr(e.content.avatar_url) === stringOr(before?.avatar_url);
    // The same profile again, or a moderator's change of someone else's member event: nothing the network shows.
    if (unchanged || e.sender !== e.state_key) return undefined;
    return { kind: 'profile', body: { ...base(e, room), sender: userOf(c, e.sender, e.content), ...(previousDisplayName ? { previousDisplayName } : {}) } };
  }
  // Leaving from an invite or a knock (a rejection, a withdrawal) or from a ban (an unban): never there.
  if (membership === 'leave' && (was === 'invite' || was === 'knock' || was === 'ban' || was === 'leave')) return undefined;
  if (membership !== 'join' && membership !== 'leave' && membership !== 'ban') return undefined;
  const user = membership === 'join' ? userOf(c, e.state_key, e.content) : { userId: e.state_key };
  const body: OutboundMembership = { ...base(e, room), user, membership };
  const reason = stringOr(e.content.reason);
  if (reason && membership !== 'join') body.reason = reason;
  return { kind: 'members', body };
}

function messageOf(c: OutboundContext, e: RoomEvent, room: BridgedRoom, msgtype: string): Delivery | undefined {
  const replyTo = replyTarget(e.content);
  const text = textOf(c.ns, e.content, msgtype, replyTo !== undefined);
  if (!text) return undefined;
  const body: OutboundMessage = { ...base(e, room), ...text };
  if (replyTo) body.replyTo = { eventId: replyTo };
  if (MEDIA_MSGTYPES.has(msgtype) || msgtype === 'm.sticker') {
    const media = outboundMedia(c.links, e.content, c.now);
    if (media) body.media = media;
  }
  return { kind: 'messages', body };
}
