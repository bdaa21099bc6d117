/**
 * The spec's reversible mapping of third-party names into Matrix localparts
 * (https://spec.matrix.org/v1.11/appendices/#mapping-from-other-character-sets):
 * upper case X → _x, _ → __, every other byte outside a-z 0-9 . - / → =xx (lower-case hex).
 */

const PLAIN = /[a-z0-9.\-/]/;

export function escapeLocalpart(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const ch = String.fromCharCode(byte);
    if (byte < 0x80 && PLAIN.test(ch)) out += ch;
    else if (ch === '_') out += '__';
    else if (byte >= 0x41 && byte <= 0x5a) out += '_' + ch.toLowerCase();
    else out += '=' + byte.toString(16).padStart(2, '0');
  }
  return out;
}

/** The inverse of escapeLocalpart; undefined when the text is not something it could have produced. */
export function unescapeLocalpart(localpart: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < localpart.length; i++) {
    const ch = localpart[i] as string;
    if (PLAIN.test(ch)) bytes.push(ch.charCodeAt(0));
    else if (ch === '_') {
      const next = localpart[i + 1];
      if (next === '_') bytes.push(0x5f);
      else if (next !== undefined && next >= 'a' && next <= 'z') bytes.push(next.toUpperCase().charCodeAt(0));
      else return undefined;
      i++;
    } else if (ch === '=') {
      const hex = localpart.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else return undefined;
  }
  const text = Buffer.from(bytes).toString('utf8');
  // Invalid UTF-8 decodes with U+FFFD and would not map back to the same localpart.
  return escapeLocalpart(text) === localpart ? text : undefined;
}

/**
 * Room alias localparts may hold any character but `:` and NUL (spec: identifier grammar), so a
 * network room name keeps its own spelling there: `#matrix` is the alias `#<prefix>#matrix`. Only
 * what the homeserver refuses or a reader cannot see is escaped, byte by byte as `=xx`: `:`,
 * white space and control or format characters; `=` too, so that the mapping stays reversible.
 */
const ALIAS_ESCAPED = /[:=\s\p{C}]/u;

export function escapeAliasLocalpart(name: string): string {
  let out = '';
  for (const ch of name) {
    if (!ALIAS_ESCAPED.test(ch)) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += '=' + byte.toString(16).padStart(2, '0');
  }
  return out;
}

/** The inverse of escapeAliasLocalpart; undefined when the text is not something it could have produced. */
export function unescapeAliasLocalpart(localpart: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < localpart.length; i++) {
    if (localpart[i] === '=') {
      const hex = localpart.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      const cp = localpart.codePointAt(i) as number;
      const ch = String.fromCodePoint(cp);
      bytes.push(...Buffer.from(ch, 'utf8'));
      i += ch.length - 1;
    }
  }
  const text = Buffer.from(bytes).toString('utf8');
  return escapeAliasLocalpart(text) === localpart ? text : undefined;
}
