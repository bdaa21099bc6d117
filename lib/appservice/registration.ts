/** The registration file the homeserver reads to learn about this AS. */
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { namespaces } from '../matrix/namespaces.js';
import type { NamespaceConfig } from '../matrix/namespaces.js';

export interface RegistrationInput extends NamespaceConfig {
  asId: string;
  asUrl: string;
  asToken: string;
  hsToken: string;
  /** The third-party protocol the AS provides (PROTOCOL): the homeserver asks the AS's /thirdparty/… about it. */
  protocol: string;
}

export function registration(r: RegistrationInput) {
  const ns = namespaces(r);
  return {
    id: r.asId,
    url: r.asUrl,
    as_token: r.asToken,
    hs_token: r.hsToken,
    sender_localpart: r.senderLocalpart,
    rate_limited: false,
    // The homeserver forwards its clients' /thirdparty/… about these protocols to the AS.
    protocols: [r.protocol],
    namespaces: {
      users: [{ exclusive: true, regex: ns.userRegex }],
      aliases: [{ exclusive: true, regex: ns.aliasRegex }],
      rooms: [],
    },
  };
}

export const registrationYaml = (r: RegistrationInput) =>
  `# Application service registration for ${r.asId}. Give this file to the homeserver\n` +
  `# (Synapse: app_service_config_files in homeserver.yaml) and keep it secret: it holds both tokens.\n` +
  stringify(registration(r));

/** A token as long and random as Synapse's own. */
export const newToken = () => randomBytes(32).toString('base64url');
