/**
 * What the Lambda bundles have in place of `postcss` (the esbuild alias in serverless.yml).
 * sanitize-html imports it to filter `style` attributes, and calls it for nothing else; the
 * sanitiser here (lib/bridge/formatting.ts) allows no `style` attribute, as the Matrix spec
 * allows none, so it is never called. Bundled, postcss and its source-map support were ~90 KB
 * of every function that posts a message (network-inbound, room-query's scrollback replay).
 */
export const parse = (): never => {
  throw new Error('postcss is left out of this bundle (serverless.yml, esbuild alias): no style attribute is allowed in formatted_body');
};

export default { parse };
