/**
 * The network's HTML, made safe for `formatted_body`: sanitised to the tags, attributes and URL
 * schemes the Matrix spec allows (CS API, m.room.message "HTML"), with sanitize-html, the
 * library Element uses for the same purpose. Nothing the network sends can script a Matrix
 * client or make it fetch from elsewhere. Done where a request comes in (network-requests.ts),
 * so what is kept (scrollback) is clean already and only the network-inbound bundle carries it.
 */
import sanitizeHtml from 'sanitize-html';

/** The spec's list (v1.11, m.room.message "HTML"): tags, attributes per tag, URL schemes. */
const SPEC_HTML: sanitizeHtml.IOptions = {
  allowedTags: [
    'font', 'del', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'p', 'a', 'ul', 'ol', 'sup', 'sub', 'li', 'b', 'i', 'u',
    'strong', 'em', 's', 'code', 'hr', 'br', 'div', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'caption', 'pre', 'span',
    'img', 'details', 'summary',
  ],
  allowedAttributes: {
    font: ['data-mx-bg-color', 'data-mx-color', 'color'],
    span: ['data-mx-bg-color', 'data-mx-color', 'data-mx-spoiler', 'data-mx-maths'],
    div: ['data-mx-maths'],
    a: ['name', 'target', 'href'],
    img: ['width', 'height', 'alt', 'title', 'src'],
    ol: ['start'],
    code: ['class'],
  },
  allowedSchemes: ['https', 'http', 'ftp', 'mailto', 'magnet'],
  // Images only from the homeserver's media repository: an http(s) src would make every
  // client that shows the message fetch from wherever the network pointed.
  allowedSchemesByTag: { img: ['mxc'] },
  // An image whose source was taken out is nothing to show.
  exclusiveFilter: (frame) => frame.tag === 'img' && !frame.attribs.src,
  allowProtocolRelative: false,
  allowedClasses: { code: [/^language-[\w+#.-]+$/] },
  // Matrix clients show what is left of a dropped tag's text; scripts and styles go entirely.
  disallowedTagsMode: 'discard',
  nonTextTags: ['style', 'script', 'textarea', 'option', 'noscript', 'mx-reply'],
  // No `style` is allowed anywhere: nothing for the CSS parser (left out of the bundles) to do.
  parseStyleAttributes: false,
};

/** The network's HTML, made safe for `formatted_body`. */
export const sanitizeFormattedBody = (html: string): string => sanitizeHtml(html, SPEC_HTML);

